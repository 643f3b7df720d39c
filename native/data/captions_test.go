package data

import (
	"bytes"
	"errors"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// The fixtures under testdata/pipeline are written by
//
//	go run testdata/pipeline/gen.go
//
// run from the repository root.
const pipelineDir = "../../testdata/pipeline"

func TestOpenCaptionsJSONL(t *testing.T) {
	path := filepath.Join(pipelineDir, "captions.jsonl")
	src, err := OpenCaptions(path, CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind    Kind
		caption string
		label   int
		line    string
		image   string
	}{
		{Paired, "a red square", 1, ":1", "red.png"},
		{Paired, "a colour gradient", NoLabel, ":2", "gradient.png"},
		{ImageOnly, "", NoLabel, ":4", "ghost.png"},
		{TextOnly, "a caption without an image", NoLabel, ":5", ""},
		{Paired, "a small photo", NoLabel, ":6", "photo.jpg"},
	}
	if src.Len() != len(want) {
		t.Fatalf("OpenCaptions(%s).Len() = %d, want %d", path, src.Len(), len(want))
	}
	for i, w := range want {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatalf("Example(%d): %v", i, err)
		}
		if ex.Kind != w.kind || ex.Caption != w.caption || ex.Label != w.label {
			t.Errorf("Example(%d) = (%v, %q, label %d), want (%v, %q, label %d)", i, ex.Kind, ex.Caption, ex.Label, w.kind, w.caption, w.label)
		}
		if ex.Origin != path+w.line {
			t.Errorf("Example(%d).Origin = %q, want %q", i, ex.Origin, path+w.line)
		}
		var wantData []byte
		if w.image != "" {
			wantData = readFixture(t, filepath.Join("images", w.image))
		}
		if !bytes.Equal(ex.ImageData, wantData) {
			t.Errorf("Example(%d).ImageData has %d bytes, want the %d bytes of %q", i, len(ex.ImageData), len(wantData), w.image)
		}
	}
}

func TestOpenCaptionsCSV(t *testing.T) {
	path := filepath.Join(pipelineDir, "captions.csv")
	src, err := OpenCaptions(path, CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind    Kind
		caption string
		label   int
		line    string
	}{
		{Paired, "a red square", 1, ":2"},
		{Paired, "a gradient, in colour", NoLabel, ":3"},
		{ImageOnly, "", NoLabel, ":4"},
		{TextOnly, "a caption without an image", NoLabel, ":5"},
	}
	if src.Len() != len(want) {
		t.Fatalf("OpenCaptions(%s).Len() = %d, want %d", path, src.Len(), len(want))
	}
	for i, w := range want {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatalf("Example(%d): %v", i, err)
		}
		if ex.Kind != w.kind || ex.Caption != w.caption || ex.Label != w.label || ex.Origin != path+w.line {
			t.Errorf("Example(%d) = (%v, %q, %d, %s), want (%v, %q, %d, %s)",
				i, ex.Kind, ex.Caption, ex.Label, ex.Origin, w.kind, w.caption, w.label, path+w.line)
		}
	}
}

// TestDecodeComposites checks that a half-transparent image decodes to
// opaque white where it was transparent, whatever colour those pixels held.
func TestDecodeComposites(t *testing.T) {
	src, err := OpenCaptions(filepath.Join(pipelineDir, "captions.jsonl"), CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := src.Example(2) // ghost.png: blue left half, transparent right half
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Decode(); err != nil {
		t.Fatal(err)
	}
	img, ok := ex.Image.(*image.RGBA)
	if !ok || ex.ImageData != nil {
		t.Fatalf("after Decode, Image is %T and ImageData has %d bytes, want *image.RGBA and none", ex.Image, len(ex.ImageData))
	}
	for _, p := range []struct {
		x, y int
		want [4]uint8
	}{
		{0, 0, [4]uint8{20, 40, 220, 255}},
		{3, 7, [4]uint8{20, 40, 220, 255}},
		{4, 0, [4]uint8{255, 255, 255, 255}},
		{7, 7, [4]uint8{255, 255, 255, 255}},
	} {
		got := [4]uint8(img.Pix[img.PixOffset(p.x, p.y):][:4])
		if got != p.want {
			t.Errorf("decoded ghost.png pixel (%d, %d) = %v, want %v", p.x, p.y, got, p.want)
		}
	}
	// A second Decode leaves the image as it is.
	before := img.Pix[0]
	if err := ex.Decode(); err != nil || ex.Image.(*image.RGBA).Pix[0] != before {
		t.Errorf("second Decode() = %v or changed the pixels, want no change", err)
	}
}

func TestOpenCaptionsBadLines(t *testing.T) {
	tests := []struct {
		name, file, content string
		wantInError         []string
	}{
		{"invalid JSON", "c.jsonl", "{\"image\": \"ok.png\", \"caption\": \"fine\"}\n{\"caption\": }\n",
			[]string{"c.jsonl:2:", "invalid JSON"}},
		{"missing image", "c.jsonl", "{\"image\": \"nope.png\", \"caption\": \"x\"}\n",
			[]string{"c.jsonl:1:", `image "nope.png"`, "no such file", "relative to the captions file"}},
		{"image is a folder", "c.jsonl", "{\"image\": \"sub\", \"caption\": \"x\"}\n",
			[]string{"c.jsonl:1:", "not a regular file"}},
		{"empty line object", "c.jsonl", "\n\n{\"tags\": [\"a\"]}\n",
			[]string{"c.jsonl:3:", "neither an image nor a caption"}},
		{"negative label", "c.jsonl", "{\"caption\": \"x\", \"label\": -3}\n",
			[]string{"c.jsonl:1:", "label -3 is negative"}},
		{"fractional label", "c.jsonl", "{\"caption\": \"x\", \"label\": 1.5}\n",
			[]string{"c.jsonl:1:", "invalid JSON"}},
		{"two objects", "c.jsonl", "{\"caption\": \"x\"} {\"caption\": \"y\"}\n",
			[]string{"c.jsonl:1:", "text after the JSON object"}},
		{"caption not a string", "c.jsonl", "{\"caption\": 5}\n",
			[]string{"c.jsonl:1:", "invalid JSON"}},
		{"CSV header", "c.csv", "image,text\nok.png,x\n",
			[]string{"c.csv:1:", "want the columns image and caption"}},
		{"CSV field count", "c.csv", "image,caption\nok.png,x\nok.png,x,extra\n",
			[]string{"c.csv:3:", "invalid CSV row"}},
		{"CSV label", "c.csv", "image,caption,label\nok.png,x,cat\n",
			[]string{"c.csv:2:", `label "cat" is not an integer`}},
		{"unknown extension", "c.txt", "ok.png,x\n",
			[]string{"c.txt", "unknown format"}},
		{"no lines", "c.jsonl", "\n  \n",
			[]string{"c.jsonl", "no usable lines"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "ok.png"), readFixture(t, "images/red.png"))
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			writeFile(t, path, []byte(tt.content))
			_, err := OpenCaptions(path, CaptionsOptions{})
			if err == nil {
				t.Fatalf("OpenCaptions(%q) = nil error, want one containing %q", tt.content, tt.wantInError)
			}
			for _, want := range tt.wantInError {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("OpenCaptions(%q) error = %q, want it to contain %q", tt.content, err, want)
				}
			}
		})
	}
}

func TestOpenCaptionsSkipBad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.png"), readFixture(t, "images/red.png"))
	path := filepath.Join(dir, "c.jsonl")
	writeFile(t, path, []byte(strings.Join([]string{
		`{"image": "ok.png", "caption": "good"}`,
		`{"image": "missing.png", "caption": "bad"}`,
		`not json`,
		`{"caption": "also good"}`,
		`{}`,
	}, "\n")))
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	src, err := OpenCaptions(path, CaptionsOptions{SkipBad: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 2 || src.Skipped() != 3 {
		t.Errorf("OpenCaptions(SkipBad) kept %d and skipped %d lines, want 2 and 3", src.Len(), src.Skipped())
	}
	for _, want := range []string{"c.jsonl:2:", "c.jsonl:3:", "c.jsonl:5:", "skipped=3"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("OpenCaptions(SkipBad) log does not contain %q:\n%s", want, logs.String())
		}
	}
}

func TestDecodeUnreadableImage(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"))
	path := filepath.Join(dir, "c.jsonl")
	writeFile(t, path, []byte(`{"image": "broken.png", "caption": "x"}`))
	src, err := OpenCaptions(path, CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := src.Example(0)
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Decode()
	if !errors.Is(err, ErrInvalidData) || !errors.Is(err, core.ErrInvalidImage) {
		t.Fatalf("Decode(broken.png) = %v, want an error wrapping ErrInvalidData and core.ErrInvalidImage", err)
	}
	if !strings.Contains(err.Error(), "c.jsonl:1") {
		t.Errorf("Decode(broken.png) error = %q, want it to name c.jsonl:1", err)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pipelineDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
