package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOpenTextLines(t *testing.T) {
	// Written by: go run testdata/pipeline/gen.go
	path := filepath.Join(pipelineDir, "glosses.txt")
	src, err := OpenTextLines(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ caption, origin string }{
		{"a domesticated carnivorous mammal", path + ":1"},
		{"a large body of salt water", path + ":3"},
		{"the fruit of an apple tree", path + ":4"},
	}
	if src.Len() != len(want) {
		t.Fatalf("OpenTextLines(%s).Len() = %d, want %d", path, src.Len(), len(want))
	}
	for i, w := range want {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Kind != TextOnly || ex.Caption != w.caption || ex.Origin != w.origin || ex.Label != NoLabel {
			t.Errorf("Example(%d) = (%v, %q, %s, %d), want (text-only, %q, %s, -1)", i, ex.Kind, ex.Caption, ex.Origin, ex.Label, w.caption, w.origin)
		}
	}
	if _, err := src.Example(3); err == nil {
		t.Errorf("Example(3) of 3 lines = nil error, want out of range")
	}
}

func TestOpenTextLinesEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.txt")
	writeFile(t, path, []byte("\n \n\t\n"))
	if _, err := OpenTextLines(path); !errors.Is(err, ErrInvalidData) {
		t.Errorf("OpenTextLines(blank lines) = %v, want ErrInvalidData", err)
	}
}

func TestOpenImageFolder(t *testing.T) {
	dir := t.TempDir()
	png := readFixture(t, "images/red.png")
	for _, name := range []string{"cat/b.png", "cat/a.PNG", "dog/x.jpg", "dog/notes.txt"} {
		writeFile(t, filepath.Join(dir, name), png)
	}
	src, err := OpenImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Classes(); !slices.Equal(got, []string{"cat", "dog"}) {
		t.Errorf("Classes() = %q, want [cat dog]", got)
	}
	want := []struct {
		name  string
		label int
	}{{"cat/a.PNG", 0}, {"cat/b.png", 0}, {"dog/x.jpg", 1}}
	if src.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", src.Len(), len(want))
	}
	for i, w := range want {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Kind != ImageOnly || ex.Label != w.label || !strings.HasSuffix(ex.Origin, w.name) {
			t.Errorf("Example(%d) = (%v, %d, %s), want (image-only, %d, .../%s)", i, ex.Kind, ex.Label, ex.Origin, w.label, w.name)
		}
	}

	// An image outside a class folder means the folder has no classes.
	writeFile(t, filepath.Join(dir, "loose.png"), png)
	src, err = OpenImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := src.Example(0)
	if src.Classes() != nil || ex.Label != NoLabel {
		t.Errorf("with a loose image, Classes() = %q and label %d, want nil and -1", src.Classes(), ex.Label)
	}
}

func TestOpenIDX(t *testing.T) {
	// Written by: go run testdata/pipeline/gen.go
	src, err := OpenIDX(
		filepath.Join(pipelineDir, "fashion", "train-images-idx3-ubyte.gz"),
		filepath.Join(pipelineDir, "fashion", "train-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", src.Len())
	}
	for n, wantLabel := range []int{9, 0, 3} {
		ex, err := src.Example(n)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Kind != ImageOnly || ex.Label != wantLabel {
			t.Errorf("Example(%d) = (%v, label %d), want (image-only, %d)", n, ex.Kind, ex.Label, wantLabel)
		}
		if b := ex.Image.Bounds(); b.Dx() != 28 || b.Dy() != 28 {
			t.Errorf("Example(%d) image is %dx%d, want 28x28", n, b.Dx(), b.Dy())
		}
		for _, p := range [][2]int{{0, 0}, {5, 3}, {27, 27}} {
			x, y := p[0], p[1]
			want := uint8((n*40 + y*8 + x) % 256)
			if got := src.Images().Image(n).GrayAt(x, y).Y; got != want {
				t.Errorf("image %d pixel (%d, %d) = %d, want %d", n, x, y, got, want)
			}
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	header := func(magic []byte, dims ...uint32) []byte {
		out := append([]byte{}, magic...)
		for _, d := range dims {
			out = binary.BigEndian.AppendUint32(out, d)
		}
		return out
	}
	tests := []struct {
		name        string
		data        []byte
		wantInError string
	}{
		{"short header", []byte{0, 0, 8}, "header is truncated"},
		{"wrong type", header([]byte{0, 0, 0x0d, 3}, 1, 1, 1), "IDX magic 00 00 0d 03"},
		{"wrong rank", header([]byte{0, 0, 8, 1}, 4), "IDX magic 00 00 08 01"},
		{"truncated data", append(header([]byte{0, 0, 8, 3}, 2, 2, 2), 1, 2, 3), "has 3 bytes, want 8"},
		{"trailing data", append(header([]byte{0, 0, 8, 3}, 1, 1, 1), 1, 2), "longer than the 1 bytes"},
		{"zero images", header([]byte{0, 0, 8, 3}, 0, 28, 28), "describe no values"},
		{"huge", header([]byte{0, 0, 8, 3}, 1<<20, 1<<10, 1<<10), "describe more than"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, "gzip header"},
	}
	for _, tt := range tests {
		_, err := ReadIDXImages(bytes.NewReader(tt.data))
		if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("ReadIDXImages(%s) = %v, want ErrInvalidData containing %q", tt.name, err, tt.wantInError)
		}
	}

	// The same checks apply through gzip.
	var compressed bytes.Buffer
	gz := gzip.NewWriter(&compressed)
	gz.Write(append(header([]byte{0, 0, 8, 1}, 3), 1, 2))
	gz.Close()
	if _, err := ReadIDXLabels(&compressed); err == nil || !strings.Contains(err.Error(), "has 2 bytes, want 3") {
		t.Errorf("ReadIDXLabels(truncated gzip) = %v, want a truncation error", err)
	}
}

func TestOpenIDXCountMismatch(t *testing.T) {
	_, err := OpenIDX(
		filepath.Join(pipelineDir, "fashion", "train-images-idx3-ubyte.gz"),
		filepath.Join(pipelineDir, "fashion", "t10k-labels-idx1-ubyte.gz"))
	if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), "has 2 labels but") {
		t.Errorf("OpenIDX(3 images, 2 labels) = %v, want a count mismatch", err)
	}
}
