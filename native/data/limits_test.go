package data

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// longCaption is a caption of about 100 KB: over core.MaxInputBytes, which
// the tokenizer reads, and under maxTextLineBytes, which a line may have.
var longCaption = strings.Repeat("a red apple ", 100_000/12)

// TestLongCaptionIsTruncatedNotRejected reads a caption longer than the
// tokenizer reads from each reader. Every reader must keep it whole, and
// the tokenizer must give the ids of its first core.MaxInputBytes bytes.
func TestLongCaptionIsTruncatedNotRejected(t *testing.T) {
	if len(longCaption) <= core.MaxInputBytes || len(longCaption) >= maxTextLineBytes {
		t.Fatalf("longCaption has %d bytes, want between %d and %d", len(longCaption), core.MaxInputBytes, maxTextLineBytes)
	}
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "long.jsonl")
	writeFile(t, jsonl, []byte(fmt.Sprintf("{\"caption\": %q}\n", longCaption)))
	csvPath := filepath.Join(dir, "long.csv")
	writeFile(t, csvPath, []byte("image,caption\n,"+longCaption+"\n"))
	shard := filepath.Join(dir, "long.tar")
	writeFile(t, shard, makeTar(t, "a.txt", []byte(longCaption)))

	jsonlSource, err := OpenCaptions(jsonl, CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csvSource, err := OpenCaptions(csvPath, CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shardSource, err := OpenShards([]string{shard}, ShardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenizer, err := core.NewTokenizer(bertvocab.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	want := tokenizer.EncodeNoPad(longCaption[:core.MaxInputBytes])
	for name, src := range map[string]Source{"jsonl": jsonlSource, "csv": csvSource, "shard": shardSource} {
		ex, err := src.Example(0)
		if err != nil {
			t.Errorf("%s: Example(0) error = %v", name, err)
			continue
		}
		if ex.Caption != strings.TrimSpace(longCaption) {
			t.Errorf("%s: caption has %d bytes, want the whole %d", name, len(ex.Caption), len(strings.TrimSpace(longCaption)))
		}
		if got := tokenizer.EncodeNoPad(ex.Caption); !slices.Equal(got, want) {
			t.Errorf("%s: the tokenizer gave %d ids, want the %d of the first %d bytes", name, len(got), len(want), core.MaxInputBytes)
		}
	}
}

// TestCaptionsLineLimit reads captions files with a line over
// maxTextLineBytes: both formats must fail, with or without SkipBad, with
// an error that names the line and the limit.
func TestCaptionsLineLimit(t *testing.T) {
	dir := t.TempDir()
	huge := strings.Repeat("x", maxTextLineBytes)
	files := map[string]string{
		"huge.jsonl":    "{\"caption\": \"ok\"}\n{\"caption\": \"" + huge + "\"}\n",
		"huge.csv":      "image,caption\n," + huge + "x\n",
		"endless.jsonl": "{\"caption\": \"" + huge + huge, // no newline at all
	}
	wantLine := map[string]int{"huge.jsonl": 2, "huge.csv": 2, "endless.jsonl": 1}
	for name, content := range files {
		path := filepath.Join(dir, name)
		writeFile(t, path, []byte(content))
		for _, skipBad := range []bool{false, true} {
			_, err := OpenCaptions(path, CaptionsOptions{SkipBad: skipBad})
			want := fmt.Sprintf("line %d is over %d bytes", wantLine[name], maxTextLineBytes)
			if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), want) {
				t.Errorf("OpenCaptions(%s, SkipBad %v) error = %v, want ErrInvalidData containing %q", name, skipBad, err, want)
			}
		}
	}
}

// TestShardCaptionLimit reads a shard whose caption entry is one byte over
// maxMetadataBytes: the sample must fail when read, naming the limit, and
// its header alone must not make OpenShards read the entry.
func TestShardCaptionLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.tar")
	writeFile(t, path, makeTar(t, "a.txt", []byte(strings.Repeat("y", maxMetadataBytes+1)), "b.txt", []byte("fine")))
	src, err := OpenShards([]string{path}, ShardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Example(0)
	if want := "caption (.txt) entry is 1048577 bytes, over the limit of 1048576"; !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), want) {
		t.Errorf("Example(0) error = %v, want ErrInvalidData containing %q", err, want)
	}
	if ex, err := src.Example(1); err != nil || ex.Caption != "fine" {
		t.Errorf("Example(1) = %q, %v, want \"fine\"", ex.Caption, err)
	}
}
