package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// nanoConfig is smaller than every preset, so files built from it are a few
// kilobytes and malformed variants of them are cheap to build and fuzz.
var nanoConfig = Config{
	ImageSize: 8, PatchSize: 4, TextLength: 4, VocabSize: 8,
	EmbedDim: 8, Depth: 1, NumHeads: 2,
	DecoderEmbedDim: 8, DecoderDepth: 1, DecoderNumHeads: 2,
	MLPRatio: 2,
}

// testVocab returns size distinct tokens: [PAD], [UNK], then tok2, tok3...
func testVocab(size int) []string {
	vocab := make([]string, size)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("tok%d", i)
	}
	vocab[0], vocab[1] = "[PAD]", "[UNK]"
	return vocab
}

// randomModelFile builds a valid float32 model file for cfg with values
// drawn from a seeded normal distribution.
func randomModelFile(cfg Config, seed uint64) *ModelFile {
	rng := rand.New(rand.NewPCG(seed, 1))
	mf := &ModelFile{
		Config:       cfg,
		Vocab:        testVocab(cfg.VocabSize),
		Norm:         CC12MNorm,
		Quantization: QuantizationNone,
		Tensors:      make(map[string]*Tensor),
	}
	for _, p := range ParamSpecs(cfg) {
		values := make([]float32, p.NumElements())
		for i := range values {
			values[i] = float32(rng.NormFloat64() * 0.02)
		}
		mf.Tensors[p.Name] = &Tensor{Name: p.Name, DType: F32, Shape: slices.Clone(p.Shape), F32: values}
	}
	return mf
}

func encodeModelFile(t testing.TB, mf *ModelFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteModelFile(&buf, mf); err != nil {
		t.Fatalf("WriteModelFile: %v", err)
	}
	return buf.Bytes()
}

// diffModelFiles returns the first difference between a and b, comparing
// floats by their bits, or "" when they are equal.
func diffModelFiles(a, b *ModelFile) string {
	switch {
	case a.Config != b.Config:
		return fmt.Sprintf("config %+v, want %+v", a.Config, b.Config)
	case !slices.Equal(a.Vocab, b.Vocab):
		return fmt.Sprintf("vocab of %d tokens differs from the %d expected", len(a.Vocab), len(b.Vocab))
	case !normBitsEqual(a.Norm, b.Norm):
		return fmt.Sprintf("image norm %+v, want %+v", a.Norm, b.Norm)
	case a.Quantization != b.Quantization:
		return fmt.Sprintf("quantization %q, want %q", a.Quantization, b.Quantization)
	case len(a.Tensors) != len(b.Tensors):
		return fmt.Sprintf("%d tensors, want %d", len(a.Tensors), len(b.Tensors))
	}
	names := make([]string, 0, len(b.Tensors))
	for name := range b.Tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if diff := diffTensors(a.Tensors[name], b.Tensors[name]); diff != "" {
			return fmt.Sprintf("tensor %q: %s", name, diff)
		}
	}
	return ""
}

func diffTensors(got, want *Tensor) string {
	switch {
	case got == nil:
		return "missing"
	case got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape):
		return fmt.Sprintf("%s %s %v, want %s %s %v", got.Name, got.DType, got.Shape, want.Name, want.DType, want.Shape)
	case len(got.F32) != len(want.F32) || len(got.I8) != len(want.I8):
		return fmt.Sprintf("%d F32 and %d I8 values, want %d and %d", len(got.F32), len(got.I8), len(want.F32), len(want.I8))
	case !slices.Equal(got.I8, want.I8):
		return "I8 values differ"
	}
	for i := range want.F32 {
		if math.Float32bits(got.F32[i]) != math.Float32bits(want.F32[i]) {
			return fmt.Sprintf("element %d = %v, want %v", i, got.F32[i], want.F32[i])
		}
	}
	return ""
}

func normBitsEqual(a, b ImageNorm) bool {
	for c := range Channels {
		if math.Float32bits(a.Mean[c]) != math.Float32bits(b.Mean[c]) ||
			math.Float32bits(a.Std[c]) != math.Float32bits(b.Std[c]) {
			return false
		}
	}
	return true
}

func TestModelFileRoundTrip(t *testing.T) {
	cfg, err := Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	want := randomModelFile(cfg, 1)
	data := encodeModelFile(t, want)

	got, err := ReadModelFile(data)
	if err != nil {
		t.Fatalf("ReadModelFile(written micro file) error: %v", err)
	}
	if diff := diffModelFiles(got, want); diff != "" {
		t.Errorf("ReadModelFile(written micro file): %s", diff)
	}
	if again := encodeModelFile(t, want); !bytes.Equal(again, data) {
		t.Errorf("WriteModelFile(same model) twice gave different bytes")
	}
	if rewritten := encodeModelFile(t, got); !bytes.Equal(rewritten, data) {
		t.Errorf("WriteModelFile(read-back model) differs from the original file")
	}
}

func TestWriteModelFileLayout(t *testing.T) {
	data := encodeModelFile(t, randomModelFile(nanoConfig, 2))
	headerLen := binary.LittleEndian.Uint64(data)
	if headerLen%8 != 0 {
		t.Errorf("header length = %d, want a multiple of 8", headerLen)
	}
	header := data[8 : 8+headerLen]
	if !bytes.HasPrefix(header, []byte(`{"__metadata__":{"config":`)) {
		t.Errorf("header starts %q, want the sorted metadata first", header[:min(len(header), 40)])
	}
	var decoded map[string]any
	if err := json.Unmarshal(header, &decoded); err != nil {
		t.Errorf("json.Unmarshal(header) error: %v", err)
	}
	specs := ParamSpecs(nanoConfig)
	if len(decoded) != len(specs)+1 {
		t.Errorf("header has %d keys, want %d tensors and the metadata", len(decoded), len(specs))
	}
}

// pythonValue is the value that testdata/modelfile/write_nano.py stores at
// flat index i of the tensor called name.
func pythonValue(name string, i int) float32 {
	return float32((i*7+len(name))%13-6) / 8
}

func TestReadModelFilePythonFixture(t *testing.T) {
	// Regenerate from the repository root with:
	//   python3 testdata/modelfile/write_nano.py testdata/modelfile/nano_python.safetensors
	data, err := os.ReadFile("../testdata/modelfile/nano_python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := ReadModelFile(data)
	if err != nil {
		t.Fatalf("ReadModelFile(nano_python.safetensors) error: %v", err)
	}
	if mf.Config != nanoConfig {
		t.Errorf("config = %+v, want %+v", mf.Config, nanoConfig)
	}
	wantVocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s"}
	if !slices.Equal(mf.Vocab, wantVocab) {
		t.Errorf("vocab = %q, want %q", mf.Vocab, wantVocab)
	}
	if !normBitsEqual(mf.Norm, CC12MNorm) {
		t.Errorf("image norm = %+v, want %+v", mf.Norm, CC12MNorm)
	}
	for name, tensor := range mf.Tensors {
		for i, v := range tensor.F32 {
			if want := pythonValue(name, i); v != want {
				t.Fatalf("tensor %q element %d = %v, want %v", name, i, v, want)
			}
		}
	}
}

// TestFormatDocExampleMatchesScript checks that the Python blocks of
// docs/FORMAT.md are the code of the scripts that tests run: the whole of
// write_nano.py, and the quantization functions of quantize_int8.py.
func TestFormatDocExampleMatchesScript(t *testing.T) {
	doc, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(doc)
	for {
		_, block, found := strings.Cut(rest, "```python\n")
		if !found {
			break
		}
		block, rest, found = strings.Cut(block, "```")
		if !found {
			t.Fatal("docs/FORMAT.md has a ```python block that is not closed")
		}
		blocks = append(blocks, block)
	}
	scripts := []struct {
		path  string
		whole bool // the block is the whole script, not a part of it
	}{
		{"../testdata/modelfile/write_nano.py", true},
		{"../testdata/quantize/quantize_int8.py", false},
	}
	for _, script := range scripts {
		code, err := os.ReadFile(script.path)
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(blocks, func(block string) bool {
			if script.whole {
				return block == string(code)
			}
			return strings.Contains(string(code), block)
		})
		if !found {
			t.Errorf("no python block in docs/FORMAT.md matches %s; copy the script's code into the doc", script.path)
		}
	}
}

// partEntry is one tensor of a hand-built file. Unless offsets is set, the
// builder places data right after the previous entry's data.
type partEntry struct {
	name    string
	dtype   string
	shape   string
	data    []byte
	offsets []uint64
	// raw, when set, replaces the entry's whole JSON value.
	raw string
}

// fileParts is a model file in editable pieces, for building malformed
// files: the metadata values are raw JSON, the entries are in header order.
type fileParts struct {
	metaKeys []string
	meta     map[string]string
	noMeta   bool
	entries  []partEntry
	// gapAfter is the index of an entry whose data is followed by 4 unused
	// bytes, or -1 for none.
	gapAfter int
	trailing []byte
	truncate int
	// padding is added after the header JSON before the 8-byte alignment.
	padding string
}

func newFileParts(mf *ModelFile) *fileParts {
	configJSON, _ := json.Marshal(mf.Config)
	normJSON, _ := json.Marshal(mf.Norm)
	p := &fileParts{meta: make(map[string]string), gapAfter: -1}
	p.setMeta("format", FormatName)
	p.setMeta("format_version", "1")
	p.setMeta("config", string(configJSON))
	p.setMeta("vocab", strings.Join(mf.Vocab, "\n"))
	p.setMeta("image_norm", string(normJSON))
	p.setMeta("quantization", mf.Quantization)
	for _, spec := range tensorSpecs(ParamSpecs(mf.Config), mf.Quantization) {
		var data []byte
		t := mf.Tensors[spec.name]
		for _, v := range t.F32 {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		for _, v := range t.I8 {
			data = append(data, byte(v))
		}
		shape, _ := json.Marshal(spec.shape)
		p.entries = append(p.entries, partEntry{name: spec.name, dtype: string(spec.dtype), shape: string(shape), data: data})
	}
	return p
}

func nanoParts() *fileParts { return newFileParts(randomModelFile(nanoConfig, 3)) }

// setMeta sets a metadata key to a string value.
func (p *fileParts) setMeta(key, value string) {
	raw, _ := json.Marshal(value)
	p.setMetaRaw(key, string(raw))
}

func (p *fileParts) setMetaRaw(key, raw string) {
	if _, ok := p.meta[key]; !ok {
		p.metaKeys = append(p.metaKeys, key)
	}
	p.meta[key] = raw
}

func (p *fileParts) deleteMeta(key string) {
	delete(p.meta, key)
	p.metaKeys = slices.DeleteFunc(p.metaKeys, func(k string) bool { return k == key })
}

func (p *fileParts) entry(name string) *partEntry {
	for i := range p.entries {
		if p.entries[i].name == name {
			return &p.entries[i]
		}
	}
	panic("no entry " + name)
}

func (p *fileParts) removeEntry(name string) {
	p.entries = slices.DeleteFunc(p.entries, func(e partEntry) bool { return e.name == name })
}

// setFloat overwrites element i of a tensor's data.
func (p *fileParts) setFloat(name string, i int, v float32) {
	binary.LittleEndian.PutUint32(p.entry(name).data[4*i:], math.Float32bits(v))
}

// header returns the header JSON, unpadded, and the data section.
func (p *fileParts) header() (string, []byte) {
	var h strings.Builder
	h.WriteString("{")
	if !p.noMeta {
		h.WriteString(`"__metadata__":{`)
		for i, key := range p.metaKeys {
			if i > 0 {
				h.WriteString(",")
			}
			fmt.Fprintf(&h, "%q:%s", key, p.meta[key])
		}
		h.WriteString("}")
	}
	var data []byte
	for i, e := range p.entries {
		begin := uint64(len(data))
		data = append(data, e.data...)
		offsets := []uint64{begin, uint64(len(data))}
		if e.offsets != nil {
			offsets = e.offsets
		}
		if i == p.gapAfter {
			data = append(data, 0, 0, 0, 0)
		}
		value := e.raw
		if value == "" {
			value = fmt.Sprintf(`{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, e.dtype, e.shape, offsets[0], offsets[1])
		}
		if i > 0 || !p.noMeta {
			h.WriteString(",")
		}
		fmt.Fprintf(&h, "%q:%s", e.name, value)
	}
	h.WriteString("}")
	return h.String(), append(data, p.trailing...)
}

func (p *fileParts) bytes() []byte {
	header, data := p.header()
	file := assembleFile(header+p.padding, data)
	return file[:len(file)-p.truncate]
}

// assembleFile pads the header with spaces to a multiple of 8 and prepends
// its length.
func assembleFile(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	file = append(file, header...)
	return append(file, data...)
}

// qkvKernel is a tensor of the nano architecture with shape [8, 24].
const qkvKernel = "encoder.Block_0.Attention_0.Dense_0.kernel"

// editNano returns a builder of the nano file after edit.
func editNano(edit func(p *fileParts)) func() []byte {
	return func() []byte {
		p := nanoParts()
		edit(p)
		return p.bytes()
	}
}

// editConfigJSON returns a builder of the nano file whose config JSON is
// edited as text.
func editConfigJSON(edit func(string) string) func() []byte {
	return editNano(func(p *fileParts) {
		configJSON, _ := json.Marshal(nanoConfig)
		p.setMeta("config", edit(string(configJSON)))
	})
}

func withConfig(edit func(c *Config)) func() []byte {
	return editConfigJSON(func(string) string {
		cfg := nanoConfig
		edit(&cfg)
		configJSON, _ := json.Marshal(cfg)
		return string(configJSON)
	})
}

func rawFile(data []byte) func() []byte { return func() []byte { return data } }

func rawHeader(header string) func() []byte {
	return func() []byte { return assembleFile(header, nil) }
}

func lengthPrefixed(n uint64, rest string) func() []byte {
	return func() []byte { return append(binary.LittleEndian.AppendUint64(nil, n), rest...) }
}

func TestReadModelFileRejects(t *testing.T) {
	tests := []struct {
		name string
		file func() []byte
		want string
		// alsoIs is a second sentinel the error must wrap, or nil.
		alsoIs error
	}{
		// Length prefix and header bytes.
		{name: "empty file", file: rawFile(nil), want: "file is empty"},
		{name: "shorter than length prefix", file: rawFile([]byte{1, 2, 3}), want: "file is 3 bytes, shorter than the 8-byte header length"},
		{name: "header length past end", file: lengthPrefixed(1000, "{}      "), want: "header length 1000 runs past the end of the file, which has 8 bytes"},
		{name: "header length over limit", file: lengthPrefixed(MaxHeaderSize+1, "{}      "), want: "header length 100000001 is over the limit of 100000000 bytes"},
		{name: "header length max uint64", file: lengthPrefixed(math.MaxUint64, "{}      "), want: "is over the limit"},
		{name: "header not UTF-8", file: rawHeader("{\"\xff\":1}"), want: "header is not valid UTF-8"},
		{name: "header not an object", file: rawHeader("[1,2]"), want: "header does not start with '{'"},
		{name: "header with leading space", file: rawHeader(` {"__metadata__":{}}`), want: "header does not start with '{'"},
		{name: "header not JSON", file: rawHeader(`{"a" 1}`), want: `tensor "a": invalid JSON`},
		{name: "header cut short", file: rawHeader(`{"__metadata__":{`), want: "JSON ends early"},
		{name: "data after header JSON", file: editNano(func(p *fileParts) { p.padding = " x" }), want: "unexpected data after the JSON object"},

		// Duplicate keys and nesting.
		{name: "duplicate tensor key", file: editNano(func(p *fileParts) { p.entries = append(p.entries, p.entries[0]) }), want: `header key "cls_token" appears twice`},
		{name: "duplicate metadata key", file: editNano(func(p *fileParts) { p.metaKeys = append(p.metaKeys, "format") }), want: `metadata key "format" appears twice`},
		{name: "duplicate entry field", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":"F32","dtype":"F32","shape":[1,1,8],"data_offsets":[0,32]}`
		}), want: `tensor "cls_token": key "dtype" appears twice`},
		{name: "unknown entry field", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":"F32","shape":[1,1,8],"offsets":[0,32]}`
		}), want: `tensor "cls_token": unknown key "offsets"`},
		{name: "missing entry field", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":"F32","shape":[1,1,8]}`
		}), want: `tensor "cls_token": missing "data_offsets"`},
		{name: "entry not an object", file: editNano(func(p *fileParts) { p.entry("cls_token").raw = `[0,32]` }), want: `tensor "cls_token": got '[', want '{'`},
		{name: "metadata not an object", file: rawHeader(`{"__metadata__":"x"}`), want: `"__metadata__": got string "x", want '{'`},
		{name: "metadata value not a string", file: editNano(func(p *fileParts) {
			configJSON, _ := json.Marshal(nanoConfig)
			p.setMetaRaw("config", string(configJSON))
		}), want: `metadata "config": got '{', want a JSON string`},

		// Metadata.
		{name: "missing metadata", file: editNano(func(p *fileParts) { p.noMeta = true }), want: `header has no "__metadata__" object`},
		{name: "missing format", file: editNano(func(p *fileParts) { p.deleteMeta("format") }), want: `metadata has no "format" key`},
		{name: "wrong format name", file: editNano(func(p *fileParts) { p.setMeta("format", "pt") }), want: `metadata "format" = "pt", want "m3ae-edge"`},
		{name: "unsupported format_version", file: editNano(func(p *fileParts) { p.setMeta("format_version", "2") }), want: `metadata "format_version" = "2" is not supported`},
		{name: "unknown quantization", file: editNano(func(p *fileParts) { p.setMeta("quantization", "int4") }), want: `metadata "quantization" = "int4" is not supported`},
		{name: "missing vocab", file: editNano(func(p *fileParts) { p.deleteMeta("vocab") }), want: `metadata has no "vocab" key`},
		{name: "config not JSON", file: editConfigJSON(func(string) string { return "{emb_dim" }), want: `metadata "config": object key: invalid JSON`},
		{name: "config not an object", file: editConfigJSON(func(string) string { return "[8]" }), want: `metadata "config": not a JSON object`},
		{name: "config unknown key", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `"mlp_ratio":2`, `"mlp_ratio":2,"dropout":0`, 1)
		}), want: `metadata "config": unknown key "dropout"`},
		{name: "config key in other case", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `"emb_dim"`, `"EMB_DIM"`, 1)
		}), want: `unknown key "EMB_DIM"`},
		{name: "config duplicate key", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `"depth":1`, `"depth":1,"depth":2`, 1)
		}), want: `metadata "config": key "depth" appears twice`},
		{name: "config missing key", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `,"mlp_ratio":2`, ``, 1)
		}), want: `metadata "config": missing key "mlp_ratio"`},
		{name: "config nested value", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `"depth":1`, `"depth":{"n":1}`, 1)
		}), want: `"depth": got '{', want a number or an array of numbers`},
		{name: "config not an integer", file: editConfigJSON(func(s string) string {
			return strings.Replace(s, `"mlp_ratio":2`, `"mlp_ratio":2.5`, 1)
		}), want: `metadata "config": invalid JSON`},
		{name: "config invalid", file: withConfig(func(c *Config) { c.NumHeads = 3 }), want: "emb_dim 8 is not a multiple of num_heads 3", alsoIs: ErrInvalidConfig},
		{name: "config with too many blocks", file: withConfig(func(c *Config) { c.Depth = 1 << 20 }), want: "config has 1048577 transformer blocks, but there are only 44 tensors"},
		{name: "config of a deeper model", file: withConfig(func(c *Config) { c.Depth = 2 }), want: "12 tensors do not match the config: tensor \"encoder.Block_1.Attention_0.Dense_0.bias\": missing"},
		{name: "vocab count mismatch", file: editNano(func(p *fileParts) { p.setMeta("vocab", strings.Join(testVocab(7), "\n")) }), want: `metadata "vocab": 7 tokens, want vocab_size 8`},
		{name: "vocab trailing newline", file: editNano(func(p *fileParts) { p.setMeta("vocab", strings.Join(testVocab(8), "\n")+"\n") }), want: `metadata "vocab": 9 tokens, want vocab_size 8`},
		{name: "vocab empty token", file: editNano(func(p *fileParts) { p.setMeta("vocab", "a\n\nc\nd\ne\nf\ng\nh") }), want: `metadata "vocab": token 1 is empty`},
		{name: "image_norm std zero", file: editNano(func(p *fileParts) {
			p.setMeta("image_norm", `{"mean":[0.5,0.5,0.5],"std":[0.25,0,0.25]}`)
		}), want: `metadata "image_norm": std[1] = 0, want a finite number > 0`},
		{name: "image_norm std negative", file: editNano(func(p *fileParts) {
			p.setMeta("image_norm", `{"mean":[0.5,0.5,0.5],"std":[-0.5,0.25,0.25]}`)
		}), want: `metadata "image_norm": std[0] = -0.5, want a finite number > 0`},
		{name: "image_norm std NaN", file: editNano(func(p *fileParts) {
			p.setMeta("image_norm", `{"mean":[0.5,0.5,0.5],"std":[NaN,0.25,0.25]}`)
		}), want: `metadata "image_norm": std: invalid JSON`},
		{name: "image_norm std overflows float32", file: editNano(func(p *fileParts) {
			p.setMeta("image_norm", `{"mean":[0.5,0.5,0.5],"std":[1e39,0.25,0.25]}`)
		}), want: `metadata "image_norm": std[0] = 1e39, want a finite float32`},
		{name: "image_norm mean of two channels", file: editNano(func(p *fileParts) {
			p.setMeta("image_norm", `{"mean":[0.5,0.5],"std":[0.25,0.25,0.25]}`)
		}), want: `metadata "image_norm": mean has 2 values, want 3`},
		{name: "image_norm missing std", file: editNano(func(p *fileParts) { p.setMeta("image_norm", `{"mean":[0.5,0.5,0.5]}`) }), want: `metadata "image_norm": missing key "std"`},

		// Tensor set, dtypes and shapes.
		{name: "missing tensor", file: editNano(func(p *fileParts) { p.removeEntry(qkvKernel) }), want: `invalid model file: tensor "encoder.Block_0.Attention_0.Dense_0.kernel": missing`},
		{name: "unknown tensor", file: editNano(func(p *fileParts) {
			p.entries = append(p.entries, partEntry{name: "extra.kernel", dtype: "F32", shape: "[2]", data: make([]byte, 8)})
		}), want: `tensor "extra.kernel": unknown, not a parameter of this architecture`},
		{name: "several problems sorted", file: editNano(func(p *fileParts) {
			p.removeEntry("text_mask_embedding")
			p.removeEntry("cls_token")
			p.entries = append(p.entries, partEntry{name: "extra", dtype: "F32", shape: "[1]", data: make([]byte, 4)})
		}), want: `3 tensors do not match the config: tensor "cls_token": missing; tensor "extra": unknown, not a parameter of this architecture; tensor "text_mask_embedding": missing`},
		{name: "dtype F16", file: editNano(func(p *fileParts) { p.entry("cls_token").dtype = "F16" }), want: `tensor "cls_token": dtype "F16" is not supported: want F32 or I8`},
		{name: "dtype I8 in a float32 file", file: editNano(func(p *fileParts) {
			e := p.entry("cls_token")
			e.dtype, e.data = "I8", make([]byte, 8)
		}), want: `tensor "cls_token": dtype I8, want F32`},
		{name: "dtype not a string", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":4,"shape":[1,1,8],"data_offsets":[0,32]}`
		}), want: `tensor "cls_token" dtype: got number 4, want a JSON string`},
		{name: "wrong shape", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[24,8]" }), want: `invalid model file: tensor "encoder.Block_0.Attention_0.Dense_0.kernel": shape [24 8], want [8 24]`},
		{name: "shape negative dim", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[-8,-24]" }), want: `shape[0] = -8, want a non-negative integer`},
		{name: "shape float dim", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[8.0,24]" }), want: `shape[0] = 8.0, want a non-negative integer`},
		{name: "shape nested array", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[[8],24]" }), want: `shape[0]: got '[', want a non-negative integer`},
		{name: "shape rank over limit", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[1,1,1,1,1,1,1,1,192]" }), want: `shape: more than 8 elements`},
		{name: "shape over element limit", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[65536,65536]" }), want: `shape [65536 65536] is over the limit of 2147483647 elements`},
		{name: "shape zero and huge dim", file: editNano(func(p *fileParts) { p.entry(qkvKernel).shape = "[0,18446744073709551615]" }), want: `shape [0 18446744073709551615] is over the limit of 2147483647 elements`},

		// Data offsets.
		{name: "data_offsets one element", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":"F32","shape":[1,1,8],"data_offsets":[0]}`
		}), want: `tensor "cls_token": data_offsets has 1 elements, want [begin, end]`},
		{name: "data_offsets three elements", file: editNano(func(p *fileParts) {
			p.entry("cls_token").raw = `{"dtype":"F32","shape":[1,1,8],"data_offsets":[0,32,64]}`
		}), want: `tensor "cls_token" data_offsets: more than 2 elements`},
		{name: "data_offsets out of range", file: editNano(func(p *fileParts) { p.entry("cls_token").offsets = []uint64{1 << 40, 1<<40 + 32} }), want: `tensor "cls_token": data_offsets [1099511627776 1099511627808] run past the end of the`},
		{name: "data_offsets begin after end", file: editNano(func(p *fileParts) { p.entry("cls_token").offsets = []uint64{32, 0} }), want: `tensor "cls_token": data_offsets [32 0] begin after they end`},
		{name: "length not matching shape", file: editNano(func(p *fileParts) { p.entry("cls_token").offsets = []uint64{0, 28} }), want: `tensor "cls_token": data_offsets [0 28] hold 28 bytes, want 32 for shape [1 1 8] of F32`},
		{name: "overlapping regions", file: editNano(func(p *fileParts) { p.entries[1].offsets = []uint64{16, 48} }), want: `tensor "encoder_image_type_embedding": data_offsets [16 48] overlap tensor "cls_token" [0 32]`},
		{name: "gap between regions", file: editNano(func(p *fileParts) { p.gapAfter = 0 }), want: `data_offsets begin at 36, but bytes 32 to 36 belong to no tensor`},
		{name: "trailing bytes", file: editNano(func(p *fileParts) { p.trailing = []byte{0, 0, 0, 0} }), want: `but the tensors cover only`},
		{name: "truncated data section", file: editNano(func(p *fileParts) { p.truncate = 4 }), want: `tensor "decoder_text_output.Dense_0.bias": data_offsets [9248 9280] run past the end of the 9276-byte data section; the file may be truncated`},

		// Values.
		{name: "NaN in a weight", file: editNano(func(p *fileParts) { p.setFloat(qkvKernel, 3, float32(math.NaN())) }), want: `tensor "encoder.Block_0.Attention_0.Dense_0.kernel": element 3 is NaN, want a finite number`},
		{name: "+Inf in a weight", file: editNano(func(p *fileParts) { p.setFloat(qkvKernel, 5, float32(math.Inf(1))) }), want: `element 5 is +Inf`},
		{name: "-Inf in a bias", file: editNano(func(p *fileParts) { p.setFloat("decoder_text_output.Dense_0.bias", 7, float32(math.Inf(-1))) }), want: `tensor "decoder_text_output.Dense_0.bias": element 7 is -Inf`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf, err := ReadModelFile(tt.file())
			if err == nil {
				t.Fatalf("ReadModelFile(%s) = %v, want an error containing %q", tt.name, mf, tt.want)
			}
			if !errors.Is(err, ErrInvalidModelFile) {
				t.Errorf("ReadModelFile(%s) error %q does not wrap ErrInvalidModelFile", tt.name, err)
			}
			if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
				t.Errorf("ReadModelFile(%s) error %q does not wrap %v", tt.name, err, tt.alsoIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadModelFile(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestReadModelFileTruncatedHeader cuts the nano header short and checks
// that each cut is reported as JSON that ends early, whichever Go
// toolchain's encoding/json runs underneath (Go 1.27 reports some of these
// cuts with other errors than Go 1.26). It cuts after every byte except
// the middle bytes of runs of letters and digits, which would only repeat
// the cut after the run's first byte.
func TestReadModelFileTruncatedHeader(t *testing.T) {
	isAlnum := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	header, _ := nanoParts().header()
	for n := 1; n < len(header); n++ {
		cut := header[:n]
		if n >= 2 && isAlnum(header[n-2]) && isAlnum(header[n-1]) && isAlnum(header[n]) {
			continue
		}
		if !utf8.ValidString(cut) {
			continue
		}
		// No padding: spaces after a cut inside a string would be part of
		// the string, and one after a backslash an invalid escape.
		_, err := ReadModelFile(lengthPrefixed(uint64(n), cut)())
		if err == nil || !errors.Is(err, ErrInvalidModelFile) || !strings.Contains(err.Error(), "JSON ends early") {
			t.Errorf("ReadModelFile(header cut to %d of %d bytes, ending %q) error = %v, want an ErrInvalidModelFile containing %q",
				n, len(header), cut[max(0, n-16):], err, "JSON ends early")
		}
	}
}

func TestReadModelFileAccepts(t *testing.T) {
	want := randomModelFile(nanoConfig, 3)
	tests := []struct {
		name string
		edit func(p *fileParts)
	}{
		{name: "as written by the test builder", edit: func(*fileParts) {}},
		{name: "extra metadata key", edit: func(p *fileParts) { p.setMeta("framework", "numpy") }},
		{name: "metadata after the tensors", edit: func(p *fileParts) {
			keys := slices.Clone(p.metaKeys)
			p.noMeta = true
			raw := "{"
			for i, key := range keys {
				if i > 0 {
					raw += ","
				}
				raw += fmt.Sprintf("%q:%s", key, p.meta[key])
			}
			p.entries = append(p.entries, partEntry{name: "__metadata__", raw: raw + "}"})
		}},
		{name: "more padding than alignment needs", edit: func(p *fileParts) { p.padding = "                " }},
		{name: "tensors in reverse order", edit: func(p *fileParts) { slices.Reverse(p.entries) }},
		{name: "data order differs from header order", edit: func(p *fileParts) {
			// The builder lays data out in entry order, so the first
			// entry's bytes go to [0, 32]: give it the second tensor's data
			// and point each header entry at the other's place.
			first, second := &p.entries[0], &p.entries[1]
			first.offsets, second.offsets = []uint64{32, 64}, []uint64{0, 32}
			first.data, second.data = second.data, first.data
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFileParts(want)
			tt.edit(p)
			got, err := ReadModelFile(p.bytes())
			if err != nil {
				t.Fatalf("ReadModelFile(%s) error: %v", tt.name, err)
			}
			if diff := diffModelFiles(got, want); diff != "" {
				t.Errorf("ReadModelFile(%s): %s", tt.name, diff)
			}
		})
	}
}

func TestWriteModelFileRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(mf *ModelFile)
		want string
	}{
		{name: "invalid config", edit: func(mf *ModelFile) { mf.Config.PatchSize = 3 }, want: "image_size 8 is not a multiple of patch_size 3"},
		{name: "vocab count", edit: func(mf *ModelFile) { mf.Vocab = mf.Vocab[:7] }, want: `metadata "vocab": 7 tokens, want vocab_size 8`},
		{name: "token with newline", edit: func(mf *ModelFile) { mf.Vocab[2] = "a\nb" }, want: `token 2 ("a\nb") contains a newline`},
		{name: "empty token", edit: func(mf *ModelFile) { mf.Vocab[3] = "" }, want: "token 3 is empty"},
		{name: "token not UTF-8", edit: func(mf *ModelFile) { mf.Vocab[4] = "\xff" }, want: "token 4 (\"\\xff\") is not valid UTF-8"},
		{name: "std zero", edit: func(mf *ModelFile) { mf.Norm.Std[2] = 0 }, want: "std[2] = 0, want a finite number > 0"},
		{name: "std +Inf", edit: func(mf *ModelFile) { mf.Norm.Std[0] = float32(math.Inf(1)) }, want: "std[0] = +Inf"},
		{name: "mean NaN", edit: func(mf *ModelFile) { mf.Norm.Mean[1] = float32(math.NaN()) }, want: "mean[1] = NaN, want a finite number"},
		{name: "unknown quantization", edit: func(mf *ModelFile) { mf.Quantization = "int8" }, want: `metadata "quantization" = "int8" is not supported`},
		{name: "empty quantization", edit: func(mf *ModelFile) { mf.Quantization = "" }, want: `metadata "quantization" = "" is not supported`},
		{name: "missing tensor", edit: func(mf *ModelFile) { delete(mf.Tensors, qkvKernel) }, want: `tensor "encoder.Block_0.Attention_0.Dense_0.kernel": missing`},
		{name: "unknown tensor", edit: func(mf *ModelFile) {
			mf.Tensors["extra"] = &Tensor{Name: "extra", DType: F32, Shape: []int{1}, F32: []float32{1}}
		}, want: `tensor "extra": unknown`},
		{name: "nil tensor", edit: func(mf *ModelFile) { mf.Tensors["cls_token"] = nil }, want: `tensor "cls_token" is nil`},
		{name: "name differs from key", edit: func(mf *ModelFile) { mf.Tensors["cls_token"].Name = "cls" }, want: `tensor "cls_token": Name field is "cls", want the map key`},
		{name: "wrong dtype", edit: func(mf *ModelFile) { mf.Tensors["cls_token"].DType = I8 }, want: `tensor "cls_token": dtype I8, want F32`},
		{name: "wrong shape", edit: func(mf *ModelFile) { mf.Tensors[qkvKernel].Shape = []int{24, 8} }, want: "shape [24 8], want [8 24]"},
		{name: "negative dim", edit: func(mf *ModelFile) { mf.Tensors[qkvKernel].Shape = []int{-8, -24} }, want: "shape [-8 -24] has a negative dim"},
		{name: "short data", edit: func(mf *ModelFile) { mf.Tensors[qkvKernel].F32 = mf.Tensors[qkvKernel].F32[:10] }, want: "has 10 F32 and 0 I8 values, want 192 F32 values for shape [8 24]"},
		{name: "I8 data in a F32 tensor", edit: func(mf *ModelFile) { mf.Tensors["cls_token"].I8 = []int8{1} }, want: "has 8 F32 and 1 I8 values"},
		{name: "NaN value", edit: func(mf *ModelFile) { mf.Tensors[qkvKernel].F32[7] = float32(math.NaN()) }, want: "element 7 is NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf := randomModelFile(nanoConfig, 4)
			tt.edit(mf)
			var buf bytes.Buffer
			err := WriteModelFile(&buf, mf)
			if err == nil {
				t.Fatalf("WriteModelFile(%s) = nil, want an error containing %q", tt.name, tt.want)
			}
			if !errors.Is(err, ErrInvalidModelFile) {
				t.Errorf("WriteModelFile(%s) error %q does not wrap ErrInvalidModelFile", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteModelFile(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("WriteModelFile(%s) wrote %d bytes before failing, want 0", tt.name, buf.Len())
			}
		})
	}
}

func TestWriteModelFileNil(t *testing.T) {
	err := WriteModelFile(&bytes.Buffer{}, nil)
	if !errors.Is(err, ErrInvalidModelFile) {
		t.Errorf("WriteModelFile(nil) = %v, want an error wrapping ErrInvalidModelFile", err)
	}
}

// failingWriter accepts limit bytes, then fails every write.
type failingWriter struct{ limit int }

var errWriteFailed = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		n := w.limit
		w.limit = 0
		return n, errWriteFailed
	}
	w.limit -= len(p)
	return len(p), nil
}

func TestWriteModelFileWriterError(t *testing.T) {
	mf := randomModelFile(nanoConfig, 5)
	size := len(encodeModelFile(t, mf))
	for _, limit := range []int{0, 8, size - 1} {
		err := WriteModelFile(&failingWriter{limit: limit}, mf)
		if !errors.Is(err, errWriteFailed) {
			t.Errorf("WriteModelFile(writer failing after %d bytes) = %v, want an error wrapping %v", limit, err, errWriteFailed)
		}
	}
}

func TestModelFileTensorAccessors(t *testing.T) {
	mf := randomModelFile(nanoConfig, 6)
	mf.Tensors["quantized"] = &Tensor{Name: "quantized", DType: I8, Shape: []int{1}, I8: []int8{1}}
	values, err := mf.Float32("cls_token")
	if err != nil || len(values) != nanoConfig.EmbedDim {
		t.Errorf("Float32(cls_token) = %d values, %v, want %d values", len(values), err, nanoConfig.EmbedDim)
	}
	tests := []struct {
		name string
		want string
	}{
		{name: "absent", want: `tensor "absent" not found`},
		{name: "quantized", want: `tensor "quantized" has dtype I8, want F32`},
	}
	for _, tt := range tests {
		_, err := mf.Float32(tt.name)
		if !errors.Is(err, ErrInvalidModelFile) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Float32(%q) error = %v, want one wrapping ErrInvalidModelFile and containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeTensorInt8(t *testing.T) {
	entry := headerEntry{name: "q", dtype: I8, shape: []uint64{2, 2}, begin: 1, end: 5, numElements: 4}
	tensor, err := decodeTensor(entry, []byte{9, 0x00, 0x7f, 0x80, 0xff, 9})
	if err != nil {
		t.Fatalf("decodeTensor(I8 entry) error: %v", err)
	}
	if want := []int8{0, 127, -128, -1}; !slices.Equal(tensor.I8, want) || tensor.F32 != nil {
		t.Errorf("decodeTensor(I8 entry) = %v F32 %v, want %v and no F32", tensor.I8, tensor.F32, want)
	}
	if want := []int{2, 2}; !slices.Equal(tensor.Shape, want) {
		t.Errorf("decodeTensor(I8 entry) shape = %v, want %v", tensor.Shape, want)
	}
}

func BenchmarkReadModelFile(b *testing.B) {
	cfg, err := Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	data := encodeModelFile(b, randomModelFile(cfg, 7))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadModelFile(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteModelFile(b *testing.B) {
	cfg, err := Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	mf := randomModelFile(cfg, 7)
	var buf bytes.Buffer
	if err := WriteModelFile(&buf, mf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := WriteModelFile(&buf, mf); err != nil {
			b.Fatal(err)
		}
	}
}

// goldenNanoSHA256 is the sha256 of the file that TestWriteModelFileGolden
// writes. Every target (amd64, 386, js/wasm, wasip1/wasm) must produce it.
const goldenNanoSHA256 = "afe20ccc121870152a0eb0875b32be14e0a084ea6cd3742c740b59234d97e8b9"

func TestWriteModelFileGolden(t *testing.T) {
	mf := randomModelFile(nanoConfig, 9)
	// Replace the random values with ones computed in float32 arithmetic
	// only, so the expected bytes do not depend on math/rand's algorithms.
	for _, tensor := range mf.Tensors {
		for i := range tensor.F32 {
			tensor.F32[i] = float32(i%97-48) / float32(7+len(tensor.Name))
		}
	}
	sum := sha256.Sum256(encodeModelFile(t, mf))
	if got := hex.EncodeToString(sum[:]); got != goldenNanoSHA256 {
		t.Errorf("sha256(WriteModelFile(nano)) = %s, want %s", got, goldenNanoSHA256)
	}
}
