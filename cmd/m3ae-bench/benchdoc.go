// This file rewrites one generated section of a Markdown file, such as
// docs/BENCHMARKS.md, and leaves the rest of the file as it is. Each
// benchmark group owns the section it writes, so `make bench` can run the
// groups one after another and the hand-written reading around the tables
// stays put.
//
// A section is the text between two HTML comments, which Markdown
// renderers do not show:
//
//	<!-- begin generated: NAME -->
//	...
//	<!-- end generated: NAME -->

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// sectionName limits names to what fits in the markers without escaping.
var sectionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Markers returns the begin and end lines of the named section.
func Markers(name string) (begin, end string) {
	return "<!-- begin generated: " + name + " -->", "<!-- end generated: " + name + " -->"
}

// Replace sets the body of the named section of doc to body and returns
// the new document. When doc has no such section, the section is added at
// the end, after a blank line. A section whose markers are out of order or
// repeated is an error, so a hand edit that broke them is reported rather
// than overwritten.
func Replace(doc []byte, name string, body string) ([]byte, error) {
	if !sectionName.MatchString(name) {
		return nil, fmt.Errorf("section name %q: use lower-case letters, digits and dashes", name)
	}

	begin, end := Markers(name)
	text := string(doc)
	if n := strings.Count(text, begin); n > 1 {
		return nil, fmt.Errorf("section %q: found %d begin markers: keep one", name, n)
	}
	if n := strings.Count(text, end); n > 1 {
		return nil, fmt.Errorf("section %q: found %d end markers: keep one", name, n)
	}

	body = strings.TrimRight(body, "\n") + "\n"
	i, j := strings.Index(text, begin), strings.Index(text, end)
	switch {
	case i < 0 && j < 0:
		var b bytes.Buffer
		b.WriteString(strings.TrimRight(text, "\n"))
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(begin + "\n" + body + end + "\n")
		return b.Bytes(), nil
	case i < 0 || j < 0 || j < i:
		return nil, fmt.Errorf("section %q: begin and end markers are missing or out of order: fix them by hand", name)
	}

	var b bytes.Buffer
	b.WriteString(text[:i])
	b.WriteString(begin + "\n" + body)
	b.WriteString(text[j:])
	return b.Bytes(), nil
}

// checkDocWritable returns an error unless path is a regular file that can
// be opened for writing, or does not exist in an existing folder.
func checkDocWritable(path string) error {
	info, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
		folder, statErr := os.Stat(filepath.Dir(path))
		if statErr != nil || !folder.IsDir() {
			return fmt.Errorf("-doc %s: folder %s not found: create it or pass another -doc", path, filepath.Dir(path))
		}
		return nil
	case err != nil:
		return fmt.Errorf("-doc %s: %w", path, err)
	case !info.Mode().IsRegular():
		return fmt.Errorf("-doc %s is not a regular file: pass a Markdown file", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("-doc %s is not writable (%w): fix its permissions or pass -doc '' to print the sections", path, err)
	}
	return f.Close()
}

// ReplaceFile applies Replace to the file at path, creating the file when
// it does not exist, and writes it back through a temporary file in the
// same folder so that a failed write leaves the old file whole.
func ReplaceFile(path, name, body string) error {
	// A link is followed, so the file it names is rewritten and the link
	// stays.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	mode := os.FileMode(0o644)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}

	doc, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	out, err := Replace(doc, name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchdoc-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
