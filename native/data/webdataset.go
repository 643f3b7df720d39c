package data

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// maxMetadataBytes bounds a caption (.txt), metadata (.json) or label
// (.cls) entry of a shard. The tokenizer reads at most core.MaxInputBytes of
// a caption, and img2dataset's JSON records are a few hundred bytes.
const maxMetadataBytes = 1 << 20

// ShardOptions configures OpenShards.
type ShardOptions struct {
	// SkipBad makes OpenShards skip samples it cannot use (no image and no
	// caption entry, a repeated entry) instead of failing. A shard that is
	// not a readable tar file fails either way.
	SkipBad bool
	// Logger receives warnings about skipped samples and ignored entries.
	// Nil discards them.
	Logger *slog.Logger
}

// ShardSource reads WebDataset tar shards as img2dataset writes them.
// Consecutive entries that share a key form one sample: key.jpg, key.jpeg
// or key.png is the image, key.txt the caption, key.json a JSON object
// whose "caption" field is the caption when there is no key.txt, and
// key.cls a decimal class label. The key is the entry name up to the first
// dot of its last path element, so "shard/000123.jpg" has key
// "shard/000123". Other entries are ignored.
//
// OpenShards reads only the tar headers and keeps each entry's offset, so
// Example reads just the bytes of one sample and runs in parallel.
type ShardSource struct {
	shards  []string
	samples []shardSample
	skipped int
}

// shardSample locates the entries of one sample inside its shard.
type shardSample struct {
	shard                      int
	key                        string
	image, text, metadata, cls entryRef
}

// entryRef is the data of one tar entry: size bytes from offset. A zero
// entryRef with size 0 and offset 0 means the entry is absent, because an
// entry's data never starts at offset 0 (a header comes first).
type entryRef struct {
	offset, size int64
}

func (r entryRef) present() bool { return r.offset > 0 }

// OpenShards indexes the tar shards named by patterns. Each pattern is a
// path or a brace pattern such as "shards/{00000..00009}.tar" (see
// ExpandBraces). Errors wrap ErrInvalidData and name the shard and key.
func OpenShards(patterns []string, opts ShardOptions) (*ShardSource, error) {
	logger := loggerOrDiscard(opts.Logger)
	s := &ShardSource{}
	for _, pattern := range patterns {
		paths, err := ExpandBraces(pattern)
		if err != nil {
			return nil, err
		}
		s.shards = append(s.shards, paths...)
	}
	if len(s.shards) == 0 {
		return nil, fmt.Errorf("no shards given: pass tar paths or a pattern such as shards/{00000..00009}.tar")
	}
	for i, shard := range s.shards {
		if err := s.indexShard(i, shard, opts.SkipBad, logger); err != nil {
			return nil, err
		}
	}
	if s.skipped > 0 {
		logger.Warn("skipped bad samples", "shards", len(s.shards), "skipped", s.skipped, "kept", len(s.samples))
	}
	if len(s.samples) == 0 {
		return nil, fmt.Errorf("%w: shards %s contain no samples: each sample needs key.jpg, key.png or key.txt",
			ErrInvalidData, strings.Join(s.shards, ", "))
	}
	return s, nil
}

// Len returns the number of samples.
func (s *ShardSource) Len() int { return len(s.samples) }

// Skipped returns the number of samples OpenShards skipped.
func (s *ShardSource) Skipped() int { return s.skipped }

// indexShard reads the headers of one shard and appends its samples.
func (s *ShardSource) indexShard(shardIndex int, shardPath string, skipBad bool, logger *slog.Logger) error {
	f, err := os.Open(shardPath)
	if err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	defer f.Close()

	// current is the sample being collected; currentBad marks one that
	// already failed and was counted, so its remaining entries are dropped.
	var current *shardSample
	currentBad := false
	flush := func() error {
		if current == nil {
			return nil
		}
		sample := *current
		current = nil
		if currentBad {
			return nil
		}
		if !sample.image.present() && !sample.text.present() && !sample.metadata.present() {
			err := fmt.Errorf("%w: %s: sample %q has no image, .txt or .json entry", ErrInvalidData, shardPath, sample.key)
			return s.handleBadSample(err, skipBad, logger)
		}
		s.samples = append(s.samples, sample)
		return nil
	}

	// archive/tar reads each header with exact reads and skips entry data
	// with Seek, so after Next the file offset is where the data starts.
	reader := tar.NewReader(f)
	lastName := "(start of file)"
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: reading the tar entry after %q: %w: check that the shard is a complete tar file",
				ErrInvalidData, shardPath, lastName, err)
		}
		lastName = header.Name
		if header.Typeflag != tar.TypeReg {
			continue
		}
		key, ext, ok := splitSampleName(header.Name)
		if !ok {
			logger.Debug("ignoring tar entry without an extension", "shard", shardPath, "entry", header.Name)
			continue
		}
		offset, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("shard %s: %w", shardPath, err)
		}
		if current == nil || current.key != key {
			if err := flush(); err != nil {
				return err
			}
			current, currentBad = &shardSample{shard: shardIndex, key: key}, false
		}
		if currentBad {
			continue
		}
		ref := entryRef{offset: offset, size: header.Size}
		if err := current.setEntry(ext, ref); err != nil {
			if err := s.handleBadSample(fmt.Errorf("%w: %s: %w", ErrInvalidData, shardPath, err), skipBad, logger); err != nil {
				return err
			}
			currentBad = true
		}
	}
	return flush()
}

// handleBadSample returns err, or counts and logs it when skipBad is set.
func (s *ShardSource) handleBadSample(err error, skipBad bool, logger *slog.Logger) error {
	if !skipBad {
		return err
	}
	s.skipped++
	if s.skipped <= maxLoggedSkips {
		logger.Warn("skipping bad sample", "error", err)
	}
	return nil
}

// splitSampleName splits a tar entry name into the WebDataset key and the
// lowercased extension after the first dot of the last path element.
func splitSampleName(name string) (key, ext string, ok bool) {
	dir, base := path.Split(name)
	dot := strings.IndexByte(base, '.')
	if dot <= 0 || dot == len(base)-1 {
		return "", "", false
	}
	return dir + base[:dot], strings.ToLower(base[dot+1:]), true
}

// setEntry records an entry of the sample by its extension.
func (sample *shardSample) setEntry(ext string, ref entryRef) error {
	var slot *entryRef
	var entryKind string
	switch ext {
	case "jpg", "jpeg", "png", "webp":
		slot, entryKind = &sample.image, "image"
	case "txt":
		slot, entryKind = &sample.text, ".txt"
	case "json":
		slot, entryKind = &sample.metadata, ".json"
	case "cls":
		slot, entryKind = &sample.cls, ".cls"
	default:
		return nil
	}
	if slot.present() {
		return fmt.Errorf("sample %q has two %s entries: give each sample at most one", sample.key, entryKind)
	}
	*slot = ref
	return nil
}

// Example reads sample i. The image stays encoded until Decode.
func (s *ShardSource) Example(i int) (Example, error) {
	if err := checkIndex("shards", i, len(s.samples)); err != nil {
		return Example{}, err
	}
	sample := s.samples[i]
	shardPath := s.shards[sample.shard]
	ex := Example{Label: NoLabel, Origin: shardPath + ":" + sample.key}
	fail := func(err error) (Example, error) {
		return Example{}, fmt.Errorf("%w: %s: %w", ErrInvalidData, ex.Origin, err)
	}

	f, err := os.Open(shardPath)
	if err != nil {
		return fail(err)
	}
	defer f.Close()

	if sample.text.present() {
		text, err := readEntry(f, sample.text, maxMetadataBytes, "caption (.txt)")
		if err != nil {
			return fail(err)
		}
		ex.Caption = strings.TrimSpace(string(text))
	} else if sample.metadata.present() {
		caption, err := readJSONCaption(f, sample.metadata)
		if err != nil {
			return fail(err)
		}
		ex.Caption = caption
	}
	if sample.cls.present() {
		text, err := readEntry(f, sample.cls, maxMetadataBytes, "label (.cls)")
		if err != nil {
			return fail(err)
		}
		label, err := strconv.Atoi(strings.TrimSpace(string(text)))
		if err != nil || label < 0 {
			return fail(fmt.Errorf("label (.cls) %q is not a non-negative integer", text))
		}
		ex.Label = label
	}

	switch {
	case sample.image.present():
		data, err := readEntry(f, sample.image, core.MaxImageBytes, "image")
		if err != nil {
			return fail(err)
		}
		ex.ImageData = data
		ex.Kind = Paired
		if ex.Caption == "" {
			ex.Kind = ImageOnly
		}
	case ex.Caption != "":
		ex.Kind = TextOnly
	default:
		return fail(errors.New("sample has no image and an empty caption"))
	}
	return ex, nil
}

// readEntry reads one entry's data, rejecting an entry over limit bytes.
func readEntry(f *os.File, ref entryRef, limit int64, entryKind string) ([]byte, error) {
	if ref.size > limit {
		return nil, fmt.Errorf("%s entry is %d bytes, over the limit of %d", entryKind, ref.size, limit)
	}
	data := make([]byte, ref.size)
	if _, err := f.ReadAt(data, ref.offset); err != nil {
		return nil, fmt.Errorf("reading the %s entry: %w", entryKind, err)
	}
	return data, nil
}

// readJSONCaption returns the "caption" field of a .json entry, or "" when
// the field is missing or null.
func readJSONCaption(f *os.File, ref entryRef) (string, error) {
	data, err := readEntry(f, ref, maxMetadataBytes, "metadata (.json)")
	if err != nil {
		return "", err
	}
	var metadata struct {
		Caption *string `json:"caption"`
	}
	if err := json.Unmarshal(data, &metadata); err != nil {
		return "", fmt.Errorf("metadata (.json) entry is not a JSON object with a string \"caption\": %w", err)
	}
	if metadata.Caption == nil {
		return "", nil
	}
	return strings.TrimSpace(*metadata.Caption), nil
}
