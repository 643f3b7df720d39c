// This file wraps the prose of generated sections, so that the Markdown
// source stays readable beside the hand-written parts of the document.

package main

import "strings"

// paragraphWidth is the widest line the writers here produce, unless one
// word is wider.
const paragraphWidth = 76

// writeParagraph writes text to b as wrapped lines, then a blank line.
func writeParagraph(b *strings.Builder, text string) {
	writeWrapped(b, text, "", "")
	b.WriteString("\n")
}

// writeListItem writes text to b as one Markdown list item, with its
// continuation lines indented under the text.
func writeListItem(b *strings.Builder, text string) {
	writeWrapped(b, text, "- ", "  ")
}

// writeWrapped writes text with first before its first line and indent
// before every other line, breaking at spaces so that lines stay within
// paragraphWidth. A word such as a long path is never split.
func writeWrapped(b *strings.Builder, text, first, indent string) {
	b.WriteString(first)
	line := len(first)
	start := true
	for _, word := range strings.Fields(text) {
		switch {
		case start:
			start = false
		case line+1+len(word) > paragraphWidth:
			b.WriteString("\n" + indent)
			line = len(indent)
		default:
			b.WriteString(" ")
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	b.WriteString("\n")
}
