package data

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// CaptionsOptions configures OpenCaptions.
type CaptionsOptions struct {
	// SkipBad makes OpenCaptions skip malformed lines and lines whose
	// image file is missing, counting them, instead of failing on the
	// first one.
	SkipBad bool
	// Logger receives a warning per skipped line (the first
	// maxLoggedSkips of them) and a summary. Nil discards them.
	Logger *slog.Logger
}

// maxLoggedSkips bounds how many skipped lines are logged one by one.
const maxLoggedSkips = 10

// CaptionsSource reads an image folder described by a captions file. Each
// line names an image, a caption, or both, and optionally a class label:
//
//	JSONL: {"image": "rel/path.png", "caption": "a red apple", "label": 3}
//	CSV:   a header with the columns image and caption (and optionally
//	       label), then one row per example
//
// Image paths are relative to the folder of the captions file unless they
// are absolute. A line with an image and a caption is a Paired example, one
// with only an image ImageOnly, one with only a caption TextOnly. Other JSON
// fields, such as "tags" or "class", are ignored. OpenCaptions parses every
// line and checks that each image file exists; images are read and decoded
// only when an example is requested.
type CaptionsSource struct {
	path    string
	records []captionRecord
	skipped int
}

// captionRecord is one parsed line of a captions file.
type captionRecord struct {
	line    int
	image   string // resolved path, "" for none
	caption string
	label   int
}

// jsonCaption is the JSON form of one line. Pointers tell a missing field
// from an empty one.
type jsonCaption struct {
	Image   *string `json:"image"`
	Caption *string `json:"caption"`
	Label   *int    `json:"label"`
}

// OpenCaptions reads the captions file at path: JSONL when its name ends in
// .jsonl, .ndjson or .json, CSV when it ends in .csv. Errors wrap
// ErrInvalidData and name the file and line.
func OpenCaptions(path string, opts CaptionsOptions) (*CaptionsSource, error) {
	logger := loggerOrDiscard(opts.Logger)
	var parse func(*CaptionsSource, io.Reader, func(error) error) error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		parse = (*CaptionsSource).parseJSONL
	case ".csv":
		parse = (*CaptionsSource).parseCSV
	default:
		return nil, fmt.Errorf("captions file %s: unknown format %q: name it .jsonl (one JSON object per line) or .csv (header image,caption)",
			path, filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("captions file: %w", err)
	}
	defer f.Close()

	s := &CaptionsSource{path: path}
	// handleBad returns err unless SkipBad is set, in which case it counts
	// and logs the line and lets parsing continue.
	handleBad := func(err error) error {
		if !opts.SkipBad {
			return err
		}
		s.skipped++
		if s.skipped <= maxLoggedSkips {
			logger.Warn("skipping bad line", "error", err)
		}
		return nil
	}
	lines := &lineLimitReader{r: f, limit: maxTextLineBytes}
	if err := parse(s, bufio.NewReader(lines), handleBad); err != nil {
		var tooLong *lineTooLongError
		if errors.As(err, &tooLong) {
			return nil, fmt.Errorf("%w: captions file %s: line %d is over %d bytes: split the file into one record per line, with captions under %d bytes",
				ErrInvalidData, path, tooLong.line, maxTextLineBytes, maxTextLineBytes)
		}
		return nil, err
	}
	if s.skipped > 0 {
		logger.Warn("skipped bad lines", "file", path, "skipped", s.skipped, "kept", len(s.records))
	}
	if len(s.records) == 0 {
		return nil, fmt.Errorf("%w: captions file %s has no usable lines: add lines such as {\"image\": \"a.png\", \"caption\": \"a cat\"}",
			ErrInvalidData, path)
	}
	return s, nil
}

// Len returns the number of examples.
func (s *CaptionsSource) Len() int { return len(s.records) }

// Skipped returns the number of lines OpenCaptions skipped.
func (s *CaptionsSource) Skipped() int { return s.skipped }

// Example returns example i with its image file read but not decoded.
func (s *CaptionsSource) Example(i int) (Example, error) {
	if err := checkIndex(s.path, i, len(s.records)); err != nil {
		return Example{}, err
	}
	r := s.records[i]
	ex := Example{Caption: r.caption, Label: r.label, Origin: fmt.Sprintf("%s:%d", s.path, r.line)}
	switch {
	case r.image == "":
		ex.Kind = TextOnly
		return ex, nil
	case r.caption == "":
		ex.Kind = ImageOnly
	default:
		ex.Kind = Paired
	}
	data, err := readImageFile(r.image)
	if err != nil {
		return Example{}, fmt.Errorf("%w: %s: %w", ErrInvalidData, ex.Origin, err)
	}
	ex.ImageData = data
	return ex, nil
}

// readImageFile reads an image file with core.ReadImageFile, which stops
// after core.MaxImageBytes+1 bytes even if the file became a device or a
// pipe after OpenCaptions checked it.
func readImageFile(path string) ([]byte, error) {
	return core.ReadImageFile(path)
}

// parseJSONL reads one JSON object per line; blank lines are ignored.
func (s *CaptionsSource) parseJSONL(r io.Reader, handleBad func(error) error) error {
	reader := bufio.NewReader(r)
	for line := 1; ; line++ {
		text, readErr := reader.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("captions file %s: line %d: %w", s.path, line, readErr)
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\ufeff"))
		}
		if trimmed := bytes.TrimSpace(text); len(trimmed) > 0 {
			if err := s.addJSONLine(line, trimmed); err != nil {
				if err := handleBad(err); err != nil {
					return err
				}
			}
		}
		if readErr != nil {
			return nil
		}
	}
}

// addJSONLine parses one non-blank JSONL line and appends its record.
func (s *CaptionsSource) addJSONLine(line int, text []byte) error {
	var v jsonCaption
	decoder := json.NewDecoder(bytes.NewReader(text))
	if err := decoder.Decode(&v); err != nil {
		return fmt.Errorf("%w: %s:%d: invalid JSON line (%v): want an object such as {\"image\": \"a.png\", \"caption\": \"a cat\"}",
			ErrInvalidData, s.path, line, err)
	}
	if decoder.More() {
		return fmt.Errorf("%w: %s:%d: text after the JSON object: put one object per line", ErrInvalidData, s.path, line)
	}
	var image, caption string
	if v.Image != nil {
		image = *v.Image
	}
	if v.Caption != nil {
		caption = *v.Caption
	}
	label := NoLabel
	if v.Label != nil {
		label = *v.Label
	}
	return s.addRecord(line, image, caption, label)
}

// parseCSV reads a header row with the columns image and caption, and
// optionally label, then one example per row.
func (s *CaptionsSource) parseCSV(r io.Reader, handleBad func(error) error) error {
	reader := csv.NewReader(r)
	reader.ReuseRecord = true
	header, err := reader.Read()
	if err != nil {
		return fmt.Errorf("%w: %s: reading the CSV header: %w", ErrInvalidData, s.path, err)
	}
	columns := map[string]int{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		columns[name] = i
	}
	imageCol, hasImage := columns["image"]
	captionCol, hasCaption := columns["caption"]
	labelCol, hasLabel := columns["label"]
	if !hasImage || !hasCaption {
		return fmt.Errorf("%w: %s:1: CSV header is %q: want the columns image and caption (and optionally label)",
			ErrInvalidData, s.path, strings.Join(header, ","))
	}

	for {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			bad := fmt.Errorf("%w: %s:%d: invalid CSV row: %v", ErrInvalidData, s.path, parseErr.StartLine, parseErr.Err)
			if err := handleBad(bad); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("captions file %s: %w", s.path, err)
		}
		line, _ := reader.FieldPos(0)
		label := NoLabel
		if hasLabel {
			if text := strings.TrimSpace(record[labelCol]); text != "" {
				parsed, parseErr := strconv.Atoi(text)
				if parseErr != nil {
					bad := fmt.Errorf("%w: %s:%d: label %q is not an integer", ErrInvalidData, s.path, line, text)
					if err := handleBad(bad); err != nil {
						return err
					}
					continue
				}
				label = parsed
			}
		}
		if err := s.addRecord(line, record[imageCol], record[captionCol], label); err != nil {
			if err := handleBad(err); err != nil {
				return err
			}
		}
	}
}

// addRecord checks one parsed line and appends it.
func (s *CaptionsSource) addRecord(line int, image, caption string, label int) error {
	image = strings.TrimSpace(image)
	caption = strings.TrimSpace(caption)
	if image == "" && caption == "" {
		return fmt.Errorf("%w: %s:%d: line has neither an image nor a caption", ErrInvalidData, s.path, line)
	}
	if label < NoLabel {
		return fmt.Errorf("%w: %s:%d: label %d is negative: use 0 or more, or leave it out", ErrInvalidData, s.path, line, label)
	}
	record := captionRecord{line: line, caption: caption, label: label}
	if image != "" {
		record.image = filepath.FromSlash(image)
		if !filepath.IsAbs(record.image) {
			record.image = filepath.Join(filepath.Dir(s.path), record.image)
		}
		info, err := os.Stat(record.image)
		if err != nil {
			return fmt.Errorf("%w: %s:%d: image %q: %w: check the path, which is relative to the captions file", ErrInvalidData, s.path, line, image, err)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%w: %s:%d: image %q is not a regular file", ErrInvalidData, s.path, line, image)
		}
	}
	s.records = append(s.records, record)
	return nil
}

// lineLimitReader passes r through and fails with a *lineTooLongError once
// a line runs past limit bytes, so that one endless line cannot make a
// reader buffer the whole file. Captions far shorter than the limit are
// already more than the tokenizer reads (core.MaxInputBytes).
type lineLimitReader struct {
	r     io.Reader
	limit int
	// line counts the newlines read so far, and run is the length of the
	// line being read.
	line, run int
}

// lineTooLongError reports the first line over the limit.
type lineTooLongError struct{ line int }

func (e *lineTooLongError) Error() string {
	return fmt.Sprintf("line %d is too long", e.line)
}

func (l *lineLimitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			l.line++
			l.run = 0
			continue
		}
		l.run++
		if l.run > l.limit {
			return i, &lineTooLongError{line: l.line + 1}
		}
	}
	return n, err
}
