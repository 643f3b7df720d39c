package main

import (
	"fmt"
	"strings"
)

// countNoun returns n followed by noun, a singular English noun, in the
// plural unless n is 1: "1 token", "0 tokens", "3 patches".
func countNoun[N ~int | ~int64](n N, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s", n, pluralNoun(noun))
}

// pluralNoun returns the plural of noun, which is regular: "es" after a
// sibilant (class, patch, box), "s" otherwise.
func pluralNoun(noun string) string {
	for _, ending := range []string{"s", "x", "z", "ch", "sh"} {
		if strings.HasSuffix(noun, ending) {
			return noun + "es"
		}
	}
	return noun + "s"
}
