package data

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// The fuzz targets here write the fuzzer's bytes to a file, open it the way
// train does and read every example. A file must either fail with an error
// that wraps ErrInvalidData or give examples that keep the contract of
// Source: a kind that matches the image and caption, a trimmed caption, a
// valid label, and the same example on a second call. Their seeds are the
// fixtures of testdata/pipeline, written by
//
//	go run testdata/pipeline/gen.go
//
// and the regression inputs under testdata/fuzz.

// FuzzOpenCaptionsJSONL fuzzes the JSONL captions reader. The file sits in
// a folder with images/red.png, so lines may name a real image.
func FuzzOpenCaptionsJSONL(f *testing.F) {
	f.Add(readFixture(f, "captions.jsonl"))
	for _, seed := range []string{
		"\ufeff{\"image\": \"images/red.png\", \"caption\": \"a\", \"label\": 0}\n",
		`{"image": "../images/red.png"}`,
		`{"image": "images"}`,
		`{"caption": "x", "label": -1}` + "\n" + `{"caption": "y", "label": -2}`,
		`{"caption": "x", "label": 9223372036854775808}`,
		`{"caption": null, "image": null}`,
		`{"caption": 5}`,
		`{"caption": "a"} {"caption": "b"}`,
		`[{"caption": "a"}]`,
		"{\"caption\": \"\\u0000\\ud800\"}",
		`{"caption": "   "}`,
	} {
		f.Add([]byte(seed))
	}
	files := &fuzzFiles{dir: fuzzCaptionsDir(f), name: "captions-%d.jsonl"}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCaptionsFile(t, files.write(t, data))
	})
}

// FuzzOpenCaptionsCSV fuzzes the CSV captions reader in the same folder.
func FuzzOpenCaptionsCSV(f *testing.F) {
	f.Add(readFixture(f, "captions.csv"))
	for _, seed := range []string{
		"image,caption\nimages/red.png,\"a \"\"quoted\"\" caption\"\n",
		"\ufeffIMAGE , Caption,label\n,x,1\n",
		"caption,image,label\nx,,not a number\ny,,3\n",
		"image,caption\n\"unterminated,x\n",
		"image,caption,label\nimages/red.png,a\n",
		"image\nimages/red.png\n",
		"image,caption\n\"images/red.png\",\"line one\nline two\"\n",
	} {
		f.Add([]byte(seed))
	}
	files := &fuzzFiles{dir: fuzzCaptionsDir(f), name: "captions-%d.csv"}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCaptionsFile(t, files.write(t, data))
	})
}

// FuzzOpenShards fuzzes the WebDataset tar reader. The fuzzer's bytes
// describe the entries, name NUL data NUL name NUL data..., which the
// target writes as a tar file and then flips one byte of it, at offset
// flipAt with the bits of flip. Fuzzing the tar bytes themselves was too
// slow: the fuzzer minimizes each new input, which takes time quadratic in
// its length, and every tar entry starts with a 512-byte header.
func FuzzOpenShards(f *testing.F) {
	png := readFixture(f, "images/red.png")
	spec := func(fields ...string) []byte { return []byte(strings.Join(fields, "\x00")) }
	f.Add(spec("000000.png", string(png), "000000.txt", " a red square ", "000000.cls", "3"), uint16(0), byte(0))
	f.Add(spec("a.json", `{"caption": "from json"}`, "b.cls", "-1", "b.txt", "x"), uint16(0), byte(0))
	f.Add(spec("dir/a.b.PNG", string(png), "dir/a.b.txt", "x", "noext", "y", ".hidden", "z"), uint16(0), byte(0))
	f.Add(spec("a.webp", "RIFF1234WEBP", "a.txt", "x", "a.txt", "twice"), uint16(0), byte(0))
	// Flips in the first header, of a size digit and of the type flag, which
	// also break the header's checksum.
	f.Add(spec("a.png", string(png), "a.txt", "x"), uint16(124), byte(0x40))
	f.Add(spec("a.txt", "x"), uint16(156), byte('2'^'0'))

	files := &fuzzFiles{dir: f.TempDir(), name: "shard-%d.tar"}
	f.Fuzz(func(t *testing.T, entries []byte, flipAt uint16, flip byte) {
		shard, ok := tarOfSpec(entries)
		if !ok {
			return
		}
		shard[int(flipAt)%len(shard)] ^= flip
		path := files.write(t, shard)
		src, err := OpenShards([]string{path}, ShardOptions{SkipBad: flipAt%2 == 0})
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("OpenShards error = %v, want it to wrap ErrInvalidData", err)
			}
			return
		}
		checkSource(t, src, path+":")
	})
}

// tarOfSpec writes the entries of spec, name NUL data NUL ..., as a tar
// file, and returns false for a name that archive/tar cannot write.
func tarOfSpec(spec []byte) ([]byte, bool) {
	fields := bytes.Split(spec, []byte{0})
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		name, data := string(fields[i]), fields[i+1]
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, false
		}
		if _, err := w.Write(data); err != nil {
			return nil, false
		}
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	return b.Bytes(), true
}

// checkCaptionsFile checks OpenCaptions on the file at path, with and
// without SkipBad.
func checkCaptionsFile(t *testing.T, path string) {
	for _, skipBad := range []bool{false, true} {
		src, err := OpenCaptions(path, CaptionsOptions{SkipBad: skipBad})
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("OpenCaptions(SkipBad %v) error = %v, want it to wrap ErrInvalidData", skipBad, err)
			}
			continue
		}
		if !skipBad && src.Skipped() != 0 {
			t.Fatalf("OpenCaptions(SkipBad false) skipped %d lines, want 0", src.Skipped())
		}
		checkSource(t, src, path+":")
	}
}

// checkSource reads every example of src twice and checks the Source
// contract. Every Origin must start with origin.
func checkSource(t *testing.T, src Source, origin string) {
	t.Helper()
	if src.Len() < 1 {
		t.Fatalf("source opened with %d examples, want an error for none", src.Len())
	}
	for i := range src.Len() {
		ex, err := src.Example(i)
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("Example(%d) error = %v, want it to wrap ErrInvalidData", i, err)
			}
			continue
		}
		again, err := src.Example(i)
		if err != nil || again.Kind != ex.Kind || again.Caption != ex.Caption || again.Label != ex.Label || !bytes.Equal(again.ImageData, ex.ImageData) {
			t.Fatalf("Example(%d) = %+v, then %+v, %v on a second call", i, ex, again, err)
		}
		if !strings.HasPrefix(ex.Origin, origin) {
			t.Fatalf("Example(%d).Origin = %q, want it to start with %q", i, ex.Origin, origin)
		}
		if ex.Caption != strings.TrimSpace(ex.Caption) {
			t.Fatalf("Example(%d).Caption = %q, want it trimmed", i, ex.Caption)
		}
		if ex.Label < NoLabel {
			t.Fatalf("Example(%d).Label = %d, want NoLabel or a class index", i, ex.Label)
		}
		if len(ex.ImageData) > core.MaxImageBytes {
			t.Fatalf("Example(%d) has %d image bytes, over core.MaxImageBytes", i, len(ex.ImageData))
		}
		if hasImage, hasText := ex.ImageData != nil, ex.Caption != ""; hasImage != ex.Kind.HasImage() || hasText != ex.Kind.HasText() {
			t.Fatalf("Example(%d) is %v with image %v and caption %q", i, ex.Kind, hasImage, ex.Caption)
		}
		if err := ex.Decode(); err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("Example(%d).Decode() error = %v, want it to wrap ErrInvalidData", i, err)
			}
			continue
		}
		if ex.Kind.HasImage() != (ex.Image != nil) {
			t.Fatalf("Example(%d) is %v, and after Decode its image is %v", i, ex.Kind, ex.Image)
		}
	}
}

// fuzzCaptionsDir returns a new folder with images/red.png in it.
func fuzzCaptionsDir(f *testing.F) string {
	dir := f.TempDir()
	png := readFixture(f, "images/red.png")
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "images", "red.png"), png, 0o644); err != nil {
		f.Fatal(err)
	}
	return dir
}

// fuzzFiles writes each fuzz input to a new file in dir, named by the
// format string name and a counter, and removes the one before. Rewriting
// one file in place truncates it, which took 2 to 3 ms per input on an
// ext4 file system mounted with discard, ten times the rest of the work.
type fuzzFiles struct {
	dir, name string
	count     int
	last      string
}

func (w *fuzzFiles) write(t *testing.T, data []byte) string {
	t.Helper()
	w.count++
	path := filepath.Join(w.dir, fmt.Sprintf(w.name, w.count))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if w.last != "" {
		if err := os.Remove(w.last); err != nil {
			t.Fatal(err)
		}
	}
	w.last = path
	return path
}
