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

func TestReplaceFileKeepsModeAndLink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "B.md")
	if err := os.WriteFile(path, []byte("# B\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.md")
	if err := os.Symlink(path, link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if err := ReplaceFile(link, "a", "one"); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced by a %v", info.Mode())
	}
	info, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestCheckDocWritableRejectsFolders(t *testing.T) {
	dir := t.TempDir()
	if err := checkDocWritable(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("folder: err = %v", err)
	}
	if err := checkDocWritable(filepath.Join(dir, "none", "B.md")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing folder: err = %v", err)
	}
	if err := checkDocWritable(filepath.Join(dir, "new.md")); err != nil {
		t.Errorf("new file: err = %v", err)
	}
}
