package data

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenShards(t *testing.T) {
	// Shards written by: go run testdata/pipeline/gen.go
	pattern := filepath.Join(pipelineDir, "shards", "shard-{00000..00001}.tar")
	src, err := OpenShards([]string{pattern}, ShardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shard0 := filepath.Join(pipelineDir, "shards", "shard-00000.tar")
	shard1 := filepath.Join(pipelineDir, "shards", "shard-00001.tar")
	want := []struct {
		origin  string
		kind    Kind
		caption string
		label   int
		image   string
	}{
		{shard0 + ":000000", Paired, "a red square", NoLabel, "red.png"},
		{shard0 + ":000001", Paired, "a photo from json", NoLabel, "photo.jpg"},
		{shard0 + ":000002", ImageOnly, "", NoLabel, "gradient.png"},
		{shard0 + ":000003", TextOnly, "text without an image", NoLabel, ""},
		{shard0 + ":000004", Paired, "a half transparent square", 7, "ghost.png"},
		{shard1 + ":000005", Paired, "a gradient in shard one", NoLabel, "gradient.png"},
		{shard1 + ":000006", Paired, "a jpeg from shard one", NoLabel, "photo.jpg"},
	}
	if src.Len() != len(want) {
		t.Fatalf("OpenShards(%s).Len() = %d, want %d", pattern, src.Len(), len(want))
	}
	for i, w := range want {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatalf("Example(%d): %v", i, err)
		}
		if ex.Origin != w.origin || ex.Kind != w.kind || ex.Caption != w.caption || ex.Label != w.label {
			t.Errorf("Example(%d) = (%s, %v, %q, %d), want (%s, %v, %q, %d)",
				i, ex.Origin, ex.Kind, ex.Caption, ex.Label, w.origin, w.kind, w.caption, w.label)
		}
		var wantData []byte
		if w.image != "" {
			wantData = readFixture(t, filepath.Join("images", w.image))
		}
		if !bytes.Equal(ex.ImageData, wantData) {
			t.Errorf("Example(%d).ImageData has %d bytes, want the %d bytes of %q", i, len(ex.ImageData), len(wantData), w.image)
		}
		if err := ex.Decode(); err != nil {
			t.Errorf("Example(%d).Decode() = %v", i, err)
		}
	}
}

func TestOpenShardsListOfPaths(t *testing.T) {
	paths := []string{
		filepath.Join(pipelineDir, "shards", "shard-00001.tar"),
		filepath.Join(pipelineDir, "shards", "shard-00000.tar"),
	}
	src, err := OpenShards(paths, ShardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := src.Example(0)
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 7 || ex.Caption != "a gradient in shard one" {
		t.Errorf("OpenShards(shard 1, shard 0) = %d samples starting with %q, want 7 starting with shard 1's", src.Len(), ex.Caption)
	}
}

func TestOpenShardsErrors(t *testing.T) {
	dir := t.TempDir()
	png := readFixture(t, "images/red.png")
	shard0 := readFixture(t, "shards/shard-00000.tar")
	tests := []struct {
		name        string
		data        []byte
		wantInError []string
	}{
		{"truncated", shard0[:1200], []string{"bad.tar", "complete tar file"}},
		{"not a tar", []byte(strings.Repeat("x", 1024)), []string{"bad.tar"}},
		{"two images", makeTar(t, "a.png", png, "a.jpg", png, "a.txt", []byte("x")),
			[]string{"bad.tar", `sample "a" has two image entries`}},
		{"two captions", makeTar(t, "a.png", png, "a.txt", []byte("x"), "a.txt", []byte("y")),
			[]string{"bad.tar", `sample "a" has two .txt entries`}},
		{"no usable entry", makeTar(t, "a.cls", []byte("1")),
			[]string{"bad.tar", `sample "a" has no image, .txt or .json entry`}},
		{"empty", makeTar(t), []string{"bad.tar", "contain no samples"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.tar")
			writeFile(t, path, tt.data)
			_, err := OpenShards([]string{path}, ShardOptions{})
			if err == nil {
				t.Fatalf("OpenShards(%s) = nil error, want one containing %q", tt.name, tt.wantInError)
			}
			for _, want := range tt.wantInError {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("OpenShards(%s) error = %q, want it to contain %q", tt.name, err, want)
				}
			}
		})
	}

	_, err := OpenShards([]string{filepath.Join(dir, "missing-{0..1}.tar")}, ShardOptions{})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing-0.tar") {
		t.Errorf("OpenShards(missing-{0..1}.tar) = %v, want a not-exist error naming missing-0.tar", err)
	}
}

func TestOpenShardsSkipBad(t *testing.T) {
	png := readFixture(t, "images/red.png")
	path := filepath.Join(t.TempDir(), "s.tar")
	writeFile(t, path, makeTar(t,
		"a.png", png, "a.txt", []byte("first"),
		"b.png", png, "b.png", png, "b.txt", []byte("duplicate image"),
		"c.cls", []byte("3"),
		"d.txt", []byte("last"),
	))
	src, err := OpenShards([]string{path}, ShardOptions{SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 2 || src.Skipped() != 2 {
		t.Fatalf("OpenShards(SkipBad) kept %d and skipped %d samples, want 2 and 2", src.Len(), src.Skipped())
	}
	last, err := src.Example(1)
	if err != nil || last.Caption != "last" || last.Kind != TextOnly {
		t.Errorf("Example(1) = (%q, %v, %v), want (\"last\", text-only, nil)", last.Caption, last.Kind, err)
	}
}

func TestShardExampleErrors(t *testing.T) {
	png := readFixture(t, "images/red.png")
	path := filepath.Join(t.TempDir(), "s.tar")
	writeFile(t, path, makeTar(t,
		"a.json", []byte(`{"url": "http://127.0.0.1/a"}`),
		"b.png", png, "b.json", []byte(`["not", "an", "object"]`),
		"c.png", png, "c.cls", []byte("dog"),
	))
	src, err := OpenShards([]string{path}, ShardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantInError := []string{
		"s.tar:a: sample has no image and an empty caption",
		`s.tar:b: metadata (.json) entry is not a JSON object with a string "caption"`,
		`s.tar:c: label (.cls) "dog" is not a non-negative integer`,
	}
	for i, want := range wantInError {
		_, err := src.Example(i)
		if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), want) {
			t.Errorf("Example(%d) = %v, want ErrInvalidData containing %q", i, err, want)
		}
	}
}

func TestSplitSampleName(t *testing.T) {
	tests := []struct {
		name, key, ext string
		ok             bool
	}{
		{"000123.jpg", "000123", "jpg", true},
		{"dir/000123.JSON", "dir/000123", "json", true},
		{"a.b/k.seg.png", "a.b/k", "seg.png", true},
		{"noext", "", "", false},
		{".hidden", "", "", false},
		{"trailing.", "", "", false},
	}
	for _, tt := range tests {
		key, ext, ok := splitSampleName(tt.name)
		if key != tt.key || ext != tt.ext || ok != tt.ok {
			t.Errorf("splitSampleName(%q) = (%q, %q, %v), want (%q, %q, %v)", tt.name, key, ext, ok, tt.key, tt.ext, tt.ok)
		}
	}
}

// makeTar returns a tar file of the given name, data, name, data, ...
// entries. A string data argument is written as bytes.
func makeTar(t testing.TB, entries ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for i := 0; i < len(entries); i += 2 {
		name, data := entries[i].(string), entries[i+1].([]byte)
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
