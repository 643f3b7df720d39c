package core

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header keys. metadataKey is the safetensors key of the string-to-string
// metadata object, and the others are the keys this format puts in it.
const (
	metadataKey       = "__metadata__"
	metaFormat        = "format"
	metaFormatVersion = "format_version"
	metaConfig        = "config"
	metaVocab         = "vocab"
	metaImageNorm     = "image_norm"
	metaQuantization  = "quantization"
)

// lengthPrefixSize is the size of the little-endian uint64 header length
// that starts every safetensors file.
const lengthPrefixSize = 8

// maxTensorRank bounds the dims of one header shape. Every tensor of the
// model has at most 3 dims, so the bound only keeps a hostile shape short.
const maxTensorRank = 8

// headerEntry is one tensor as the header describes it. Offsets are
// relative to the start of the data section.
type headerEntry struct {
	name        string
	dtype       DType
	shape       []uint64
	begin, end  uint64
	numElements uint64
}

// header is the parsed JSON header of a model file.
type header struct {
	metadata map[string]string
	// tensors lists the entries in header order.
	tensors []headerEntry
}

// ReadModelFile decodes a model file held in data and validates all of it:
//   - the safetensors layout: header length, JSON syntax, duplicate keys,
//     dtypes, shapes, and data_offsets that tile the data section;
//   - the metadata: format name and version, quantization, config,
//     vocabulary and image normalization;
//   - the tensor set, which must be exactly the config's parameters as the
//     quantization scheme stores them;
//   - every float32 value, which must be finite, every int8 scale, which
//     must be positive, and every int8 value, which must not be -128.
//
// Every error wraps ErrInvalidModelFile and names the tensor or metadata key
// at fault. The tensors are decoded into new slices, one per tensor, so the
// caller may reuse data after the call. docs/FORMAT.md is the full spec.
func ReadModelFile(data []byte) (*ModelFile, error) {
	mf, err := readModelFile(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModelFile, err)
	}
	return mf, nil
}

func readModelFile(data []byte) (*ModelFile, error) {
	// Container: the length prefix, the JSON header and the byte ranges.
	headerBytes, dataSection, err := splitFile(data)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(headerBytes)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(h.tensors, uint64(len(dataSection))); err != nil {
		return nil, err
	}

	// Model: the metadata, then the tensor set the config calls for.
	mf, err := decodeMetadata(h.metadata)
	if err != nil {
		return nil, err
	}
	specs, err := expectedTensors(mf.Config, mf.Quantization, len(h.tensors))
	if err != nil {
		return nil, err
	}
	stored := make(map[string]storedTensor, len(h.tensors))
	for _, e := range h.tensors {
		stored[e.name] = storedTensor{dtype: e.dtype, shape: e.shape}
	}
	if err := matchTensors(specs, stored); err != nil {
		return nil, err
	}

	// Values: one new slice per tensor, then the int8 scheme's value rules.
	mf.Tensors = make(map[string]*Tensor, len(h.tensors))
	for _, e := range h.tensors {
		t, err := decodeTensor(e, dataSection)
		if err != nil {
			return nil, err
		}
		mf.Tensors[e.name] = t
	}
	if err := checkInt8Values(specs, mf.Tensors); err != nil {
		return nil, err
	}
	return mf, nil
}

// splitFile checks the length prefix and returns the header bytes and the
// data section.
func splitFile(data []byte) (headerBytes, dataSection []byte, err error) {
	size := uint64(len(data))
	switch {
	case size == 0:
		return nil, nil, errors.New("file is empty")
	case size < lengthPrefixSize:
		return nil, nil, fmt.Errorf("file is %d bytes, shorter than the %d-byte header length", size, lengthPrefixSize)
	case size > MaxModelFileSize:
		return nil, nil, fmt.Errorf("file is %d bytes, over the limit of %d", size, MaxModelFileSize)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header length %d is over the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > size-lengthPrefixSize {
		return nil, nil, fmt.Errorf("header length %d runs past the end of the file, which has %d bytes after the length",
			n, size-lengthPrefixSize)
	}
	end := lengthPrefixSize + int(n)
	return data[lengthPrefixSize:end], data[end:], nil
}

// parseHeader parses the JSON header with a token walk, because
// encoding/json keeps the last of two duplicate keys without an error and
// safetensors forbids duplicates. The walk accepts only the header's
// schema, so any other nesting is an error at its first token.
func parseHeader(raw []byte) (*header, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("header is not valid UTF-8")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("header does not start with '{': a safetensors header is a JSON object")
	}
	p := newTokenWalker(raw)
	if err := p.expectDelim('{', "header"); err != nil {
		return nil, err
	}
	h := &header{}
	seen := make(map[string]bool)
	for p.more() {
		key, err := p.readString("header key")
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("header key %q appears twice: duplicate keys are not allowed", key)
		}
		seen[key] = true
		if key == metadataKey {
			if h.metadata, err = p.readMetadata(); err != nil {
				return nil, err
			}
			continue
		}
		entry, err := p.readTensorEntry(key)
		if err != nil {
			return nil, err
		}
		h.tensors = append(h.tensors, entry)
	}
	if err := p.finish("header"); err != nil {
		return nil, err
	}
	if h.metadata == nil {
		return nil, fmt.Errorf("header has no %q object", metadataKey)
	}
	return h, nil
}

// tokenWalker reads one JSON value token by token, numbers as json.Number.
type tokenWalker struct {
	raw []byte
	dec *json.Decoder
}

func newTokenWalker(raw []byte) *tokenWalker {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return &tokenWalker{raw: raw, dec: dec}
}

// jsonSpace is the set of JSON whitespace characters.
const jsonSpace = " \t\r\n"

// more reports whether the current object or array has another element.
// It is false when only JSON whitespace is left, as json.Decoder.More is
// under Go 1.26. The encoding/json of Go 1.27 reports true there, and its
// next Token then fails with a syntax error instead of io.EOF.
func (p *tokenWalker) more() bool {
	if len(bytes.TrimLeft(p.raw[p.dec.InputOffset():], jsonSpace)) == 0 {
		return false
	}
	return p.dec.More()
}

// next returns the next token. The where argument names the value being
// read, for error messages. Input cut short is reported as such under
// every toolchain. Go 1.26 and 1.27 both give io.EOF for input that ends
// between tokens and io.ErrUnexpectedEOF for input that ends inside one.
// For input that ends right after a ',' Go 1.27 gives a syntax error where
// Go 1.26 gives io.EOF, so the walker also checks what was left to read.
func (p *tokenWalker) next(where string) (json.Token, error) {
	start := p.dec.InputOffset()
	tok, err := p.dec.Token()
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || endsAfterSeparator(p.raw[start:])) {
		return nil, fmt.Errorf("%s: JSON ends early", where)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", where, err)
	}
	return tok, nil
}

// endsAfterSeparator reports whether rest, the input after the last token
// read, is JSON whitespace and at most one ',' or ':', so that the input
// ends where a value or key must follow.
func endsAfterSeparator(rest []byte) bool {
	rest = bytes.Trim(rest, jsonSpace)
	return len(rest) == 0 || (len(rest) == 1 && (rest[0] == ',' || rest[0] == ':'))
}

func (p *tokenWalker) expectDelim(want json.Delim, where string) error {
	tok, err := p.next(where)
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("%s: got %s, want '%v'", where, describeToken(tok), want)
	}
	return nil
}

func (p *tokenWalker) readString(where string) (string, error) {
	tok, err := p.next(where)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%s: got %s, want a JSON string", where, describeToken(tok))
	}
	return s, nil
}

// finish reads the closing '}' of the top-level object and checks that
// only JSON whitespace follows it. safetensors writers pad the header with
// spaces to a multiple of 8 bytes.
func (p *tokenWalker) finish(where string) error {
	if err := p.expectDelim('}', where); err != nil {
		return err
	}
	rest := p.raw[p.dec.InputOffset():]
	if len(bytes.TrimLeft(rest, jsonSpace)) != 0 {
		return fmt.Errorf("%s: unexpected data after the JSON object: only trailing spaces are allowed", where)
	}
	return nil
}

// readUints reads a JSON array of at most maxLen non-negative integers.
func (p *tokenWalker) readUints(where string, maxLen int) ([]uint64, error) {
	if err := p.expectDelim('[', where); err != nil {
		return nil, err
	}
	values := []uint64{}
	for p.more() {
		if len(values) == maxLen {
			return nil, fmt.Errorf("%s: more than %d elements", where, maxLen)
		}
		tok, err := p.next(where)
		if err != nil {
			return nil, err
		}
		number, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: got %s, want a non-negative integer", where, len(values), describeToken(tok))
		}
		v, err := strconv.ParseUint(string(number), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] = %s, want a non-negative integer below 2^64", where, len(values), number)
		}
		values = append(values, v)
	}
	return values, p.expectDelim(']', where)
}

// readMetadata reads the "__metadata__" object, whose values must all be
// strings, as safetensors requires.
func (p *tokenWalker) readMetadata() (map[string]string, error) {
	where := strconv.Quote(metadataKey)
	if err := p.expectDelim('{', where); err != nil {
		return nil, err
	}
	metadata := make(map[string]string)
	for p.more() {
		key, err := p.readString(where + " key")
		if err != nil {
			return nil, err
		}
		if _, dup := metadata[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice: duplicate keys are not allowed", key)
		}
		value, err := p.readString(fmt.Sprintf("metadata %q", key))
		if err != nil {
			return nil, err
		}
		metadata[key] = value
	}
	return metadata, p.expectDelim('}', where)
}

// readTensorEntry reads {"dtype": ..., "shape": [...], "data_offsets":
// [begin, end]}, each key exactly once and no other key.
func (p *tokenWalker) readTensorEntry(name string) (headerEntry, error) {
	where := fmt.Sprintf("tensor %q", name)
	entry := headerEntry{name: name}
	if err := p.expectDelim('{', where); err != nil {
		return entry, err
	}
	seen := make(map[string]bool, 3)
	for p.more() {
		key, err := p.readString(where + " key")
		if err != nil {
			return entry, err
		}
		if seen[key] {
			return entry, fmt.Errorf("%s: key %q appears twice: duplicate keys are not allowed", where, key)
		}
		seen[key] = true
		if err := p.readEntryField(&entry, key, where); err != nil {
			return entry, err
		}
	}
	if err := p.expectDelim('}', where); err != nil {
		return entry, err
	}
	for _, key := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[key] {
			return entry, fmt.Errorf("%s: missing %q", where, key)
		}
	}
	return entry, nil
}

func (p *tokenWalker) readEntryField(entry *headerEntry, key, where string) error {
	switch key {
	case "dtype":
		dtype, err := p.readString(where + " dtype")
		if err != nil {
			return err
		}
		entry.dtype = DType(dtype)
		if entry.dtype.Size() == 0 {
			return fmt.Errorf("%s: dtype %q is not supported: want %s or %s", where, dtype, F32, I8)
		}
	case "shape":
		shape, err := p.readUints(where+" shape", maxTensorRank)
		if err != nil {
			return err
		}
		entry.shape = shape
	case "data_offsets":
		offsets, err := p.readUints(where+" data_offsets", 2)
		if err != nil {
			return err
		}
		if len(offsets) != 2 {
			return fmt.Errorf("%s: data_offsets has %d elements, want [begin, end]", where, len(offsets))
		}
		entry.begin, entry.end = offsets[0], offsets[1]
	default:
		return fmt.Errorf("%s: unknown key %q: want dtype, shape and data_offsets", where, key)
	}
	return nil
}

// describeToken names a JSON token for an error message.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("'%v'", v)
	case string:
		return fmt.Sprintf("string %q", v)
	case json.Number:
		return "number " + string(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(tok)
}

// checkLayout checks every entry's size and data_offsets against the data
// section of dataLen bytes and sets numElements. As the reference
// safetensors reader requires, the regions sorted by offset must tile the
// data section exactly: the first begins at 0, each begins where the
// previous ends, and the last ends at dataLen.
func checkLayout(entries []headerEntry, dataLen uint64) error {
	for i := range entries {
		if err := checkEntrySize(&entries[i], dataLen); err != nil {
			return err
		}
	}
	sorted := make([]*headerEntry, len(entries))
	for i := range entries {
		sorted[i] = &entries[i]
	}
	slices.SortStableFunc(sorted, func(a, b *headerEntry) int {
		if a.begin != b.begin {
			return cmp.Compare(a.begin, b.begin)
		}
		return cmp.Compare(a.end, b.end)
	})
	var covered uint64
	var previous *headerEntry
	for _, e := range sorted {
		if e.begin < covered {
			return fmt.Errorf("tensor %q: data_offsets [%d %d] overlap tensor %q [%d %d]",
				e.name, e.begin, e.end, previous.name, previous.begin, previous.end)
		}
		if e.begin > covered {
			return fmt.Errorf("tensor %q: data_offsets begin at %d, but bytes %d to %d belong to no tensor: the data section must have no gaps",
				e.name, e.begin, covered, e.begin)
		}
		covered, previous = e.end, e
	}
	if covered != dataLen {
		return fmt.Errorf("data section is %d bytes, but the tensors cover only %d: trailing bytes are not allowed",
			dataLen, covered)
	}
	return nil
}

// checkEntrySize checks one entry's element count and that its
// data_offsets lie inside the data section and hold exactly its bytes.
func checkEntrySize(e *headerEntry, dataLen uint64) error {
	numElements, ok := shapeElements(e.shape)
	if !ok {
		return fmt.Errorf("tensor %q: shape %v is over the limit of %d elements, which also bounds each dim",
			e.name, e.shape, MaxTensorElements)
	}
	e.numElements = numElements
	if e.begin > e.end {
		return fmt.Errorf("tensor %q: data_offsets [%d %d] begin after they end", e.name, e.begin, e.end)
	}
	if e.end > dataLen {
		return fmt.Errorf("tensor %q: data_offsets [%d %d] run past the end of the %d-byte data section; the file may be truncated",
			e.name, e.begin, e.end, dataLen)
	}
	// numElements <= MaxInt32 and Size() <= 4, so the product fits.
	want := numElements * uint64(e.dtype.Size())
	if e.end-e.begin != want {
		return fmt.Errorf("tensor %q: data_offsets [%d %d] hold %d bytes, want %d for shape %v of %s",
			e.name, e.begin, e.end, e.end-e.begin, want, e.shape, e.dtype)
	}
	return nil
}

// decodeMetadata reads and checks the metadata values. The tensors are
// left for the caller.
func decodeMetadata(metadata map[string]string) (*ModelFile, error) {
	get := func(key string) (string, error) {
		value, ok := metadata[key]
		if !ok {
			return "", fmt.Errorf("metadata has no %q key", key)
		}
		return value, nil
	}
	if err := checkFormat(get); err != nil {
		return nil, err
	}

	mf := &ModelFile{}
	var err error
	if mf.Quantization, err = get(metaQuantization); err != nil {
		return nil, err
	}
	if err := checkQuantization(mf.Quantization); err != nil {
		return nil, err
	}

	configJSON, err := get(metaConfig)
	if err != nil {
		return nil, err
	}
	if mf.Config, err = decodeConfig(configJSON); err != nil {
		return nil, fmt.Errorf("metadata %q: %w", metaConfig, err)
	}

	vocab, err := get(metaVocab)
	if err != nil {
		return nil, err
	}
	if mf.Vocab, err = decodeVocab(vocab, mf.Config.VocabSize); err != nil {
		return nil, err
	}

	normJSON, err := get(metaImageNorm)
	if err != nil {
		return nil, err
	}
	if mf.Norm, err = decodeImageNorm(normJSON); err != nil {
		return nil, err
	}
	return mf, nil
}

func checkFormat(get func(string) (string, error)) error {
	format, err := get(metaFormat)
	if err != nil {
		return err
	}
	if format != FormatName {
		return fmt.Errorf("metadata %q = %q, want %q", metaFormat, format, FormatName)
	}
	version, err := get(metaFormatVersion)
	if err != nil {
		return err
	}
	if version != strconv.Itoa(FormatVersion) {
		return fmt.Errorf("metadata %q = %q is not supported: this version reads format version %d",
			metaFormatVersion, version, FormatVersion)
	}
	return nil
}

// decodeConfig decodes the config JSON. Every field of Config must appear
// exactly once under its exact json tag, because encoding/json would match
// keys case-insensitively and keep the last of two duplicates.
func decodeConfig(configJSON string) (Config, error) {
	if err := checkObjectKeys(configJSON, jsonFieldNames(reflect.TypeFor[Config]())); err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := json.Unmarshal([]byte(configJSON), &cfg); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeVocab splits the newline-joined tokens. It counts them before
// splitting, so a wrong count costs no allocation.
func decodeVocab(vocab string, size int) ([]string, error) {
	if count := strings.Count(vocab, "\n") + 1; count != size {
		return nil, fmt.Errorf("metadata %q: %d tokens, want vocab_size %d", metaVocab, count, size)
	}
	tokens := strings.Split(vocab, "\n")
	return tokens, checkVocab(tokens, size)
}

// decodeImageNorm decodes {"mean":[r,g,b],"std":[r,g,b]}. Numbers are
// parsed straight to float32 so that the shortest float32 spelling the
// writer uses gives back the same bits.
func decodeImageNorm(normJSON string) (ImageNorm, error) {
	var norm ImageNorm
	if err := checkObjectKeys(normJSON, []string{"mean", "std"}); err != nil {
		return norm, fmt.Errorf("metadata %q: %w", metaImageNorm, err)
	}
	var raw struct {
		Mean []json.Number `json:"mean"`
		Std  []json.Number `json:"std"`
	}
	if err := json.Unmarshal([]byte(normJSON), &raw); err != nil {
		return norm, fmt.Errorf("metadata %q: invalid JSON: %w", metaImageNorm, err)
	}
	if err := parseChannels(&norm.Mean, raw.Mean, "mean"); err != nil {
		return norm, err
	}
	if err := parseChannels(&norm.Std, raw.Std, "std"); err != nil {
		return norm, err
	}
	return norm, checkImageNorm(norm)
}

func parseChannels(dst *[Channels]float32, numbers []json.Number, field string) error {
	if len(numbers) != Channels {
		return fmt.Errorf("metadata %q: %s has %d values, want %d (R, G, B)", metaImageNorm, field, len(numbers), Channels)
	}
	for c, number := range numbers {
		v, err := strconv.ParseFloat(string(number), 32)
		if err != nil {
			return fmt.Errorf("metadata %q: %s[%d] = %s, want a finite float32", metaImageNorm, field, c, number)
		}
		dst[c] = float32(v)
	}
	return nil
}

// checkObjectKeys checks that s is a JSON object whose keys are exactly
// want, each once, and whose values are numbers or arrays of numbers.
func checkObjectKeys(s string, want []string) error {
	if len(s) == 0 || s[0] != '{' {
		return errors.New("not a JSON object")
	}
	p := newTokenWalker([]byte(s))
	if err := p.expectDelim('{', "object"); err != nil {
		return err
	}
	seen := make(map[string]bool, len(want))
	for p.more() {
		key, err := p.readString("object key")
		if err != nil {
			return err
		}
		if !slices.Contains(want, key) {
			return fmt.Errorf("unknown key %q: want %s", key, strings.Join(want, ", "))
		}
		if seen[key] {
			return fmt.Errorf("key %q appears twice: duplicate keys are not allowed", key)
		}
		seen[key] = true
		if err := p.skipNumbers(key); err != nil {
			return err
		}
	}
	if err := p.finish("object"); err != nil {
		return err
	}
	for _, key := range want {
		if !seen[key] {
			return fmt.Errorf("missing key %q", key)
		}
	}
	return nil
}

// skipNumbers reads a number or a flat array of numbers.
func (p *tokenWalker) skipNumbers(key string) error {
	tok, err := p.next(key)
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Number); ok {
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("%q: got %s, want a number or an array of numbers", key, describeToken(tok))
	}
	for p.more() {
		tok, err := p.next(key)
		if err != nil {
			return err
		}
		if _, ok := tok.(json.Number); !ok {
			return fmt.Errorf("%q: array contains %s, want numbers", key, describeToken(tok))
		}
	}
	return p.expectDelim(']', key)
}

// jsonFieldNames returns the json tag names of a struct's fields.
func jsonFieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, tag)
	}
	return names
}

// decodeTensor copies one tensor out of the data section into a new slice,
// decoding little-endian values explicitly so that every target reads the
// same bits. checkLayout has already bounded e.begin and e.end by the data
// section's length, so they fit in an int.
func decodeTensor(e headerEntry, dataSection []byte) (*Tensor, error) {
	raw := dataSection[int(e.begin):int(e.end)]
	shape := make([]int, len(e.shape))
	for i, d := range e.shape {
		shape[i] = int(d)
	}
	t := &Tensor{Name: e.name, DType: e.dtype, Shape: shape}
	switch e.dtype {
	case F32:
		t.F32 = make([]float32, e.numElements)
		for i := range t.F32 {
			bits := binary.LittleEndian.Uint32(raw[4*i:])
			if !isFinite32(bits) {
				return nil, fmt.Errorf("tensor %q: element %d is %v, want a finite number",
					e.name, i, math.Float32frombits(bits))
			}
			t.F32[i] = math.Float32frombits(bits)
		}
	case I8:
		t.I8 = make([]int8, e.numElements)
		for i, b := range raw {
			t.I8[i] = int8(b)
		}
	}
	return t, nil
}
