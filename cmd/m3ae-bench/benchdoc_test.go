package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceKeepsTheTextAround(t *testing.T) {
	doc := "# Benchmarks\n\nReading.\n\n<!-- begin generated: a -->\nold\n<!-- end generated: a -->\n\nAfter.\n"
	got, err := Replace([]byte(doc), "a", "| x |\n|---|\n| 1 |")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nReading.\n\n<!-- begin generated: a -->\n| x |\n|---|\n| 1 |\n<!-- end generated: a -->\n\nAfter.\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReplaceAppendsAMissingSection(t *testing.T) {
	got, err := Replace([]byte("# B\n"), "train-step", "body")
	if err != nil {
		t.Fatal(err)
	}
	want := "# B\n\n<!-- begin generated: train-step -->\nbody\n<!-- end generated: train-step -->\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReplaceRejectsBrokenMarkers(t *testing.T) {
	begin, end := Markers("a")
	for name, doc := range map[string]string{
		"end before begin": end + "\n" + begin + "\n",
		"begin only":       begin + "\n",
		"two begins":       begin + "\n" + begin + "\n" + end + "\n",
	} {
		if _, err := Replace([]byte(doc), "a", "x"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Replace(nil, "Bad Name", "x"); err == nil || !strings.Contains(err.Error(), "Bad Name") {
		t.Errorf("bad name: err = %v", err)
	}
}

func TestReplaceFileWritesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	if err := ReplaceFile(path, "a", "one"); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(path, "a", "two"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "one") || !strings.Contains(string(got), "two") {
		t.Errorf("file after two writes:\n%s", got)
	}
}
