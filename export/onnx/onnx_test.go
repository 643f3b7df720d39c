package onnx_test

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

// field is one decoded protobuf field: a varint, fixed32 or
// length-delimited value.
type field struct {
	number  int
	varint  uint64
	fixed32 uint32
	bytes   []byte
}

// parseMessage decodes the fields of one protobuf message, failing the
// test on malformed input.
func parseMessage(t *testing.T, b []byte) []field {
	t.Helper()
	var fields []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("malformed field key at %d bytes before the end", len(b))
		}
		b = b[n:]
		f := field{number: int(key >> 3)}
		switch key & 7 {
		case 0:
			f.varint, n = binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("field %d: malformed varint", f.number)
			}
			b = b[n:]
		case 2:
			length, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < length {
				t.Fatalf("field %d: length %d runs past the message", f.number, length)
			}
			f.bytes = b[n : n+int(length)]
			b = b[n+int(length):]
		case 5:
			if len(b) < 4 {
				t.Fatalf("field %d: truncated fixed32", f.number)
			}
			f.fixed32 = binary.LittleEndian.Uint32(b)
			b = b[4:]
		default:
			t.Fatalf("field %d: wire type %d is not written by the exporter", f.number, key&7)
		}
		fields = append(fields, f)
	}
	return fields
}

func fieldsNumbered(fields []field, number int) []field {
	var out []field
	for _, f := range fields {
		if f.number == number {
			out = append(out, f)
		}
	}
	return out
}

func stringField(t *testing.T, fields []field, number int) string {
	t.Helper()
	matches := fieldsNumbered(fields, number)
	if len(matches) != 1 {
		t.Fatalf("field %d occurs %d times, want once", number, len(matches))
	}
	return string(matches[0].bytes)
}

// decodedModel is the part of a ModelProto the tests check.
type decodedModel struct {
	irVersion    uint64
	opsetDomain  string
	opsetVersion uint64
	metadata     map[string]string
	graph        []field
}

// decodeModel reads a ModelProto with the field numbers of onnx.proto:
// ir_version 1, opset_import 8 (domain 1, version 2), graph 7 and
// metadata_props 14 (key 1, value 2).
func decodeModel(t *testing.T, data []byte) decodedModel {
	t.Helper()
	fields := parseMessage(t, data)
	var m decodedModel
	m.irVersion = fieldsNumbered(fields, 1)[0].varint
	opsets := fieldsNumbered(fields, 8)
	if len(opsets) != 1 {
		t.Fatalf("%d opset imports, want 1", len(opsets))
	}
	opset := parseMessage(t, opsets[0].bytes)
	m.opsetDomain = string(fieldsNumbered(opset, 1)[0].bytes)
	m.opsetVersion = fieldsNumbered(opset, 2)[0].varint
	m.metadata = make(map[string]string)
	for _, entry := range fieldsNumbered(fields, 14) {
		kv := parseMessage(t, entry.bytes)
		m.metadata[stringField(t, kv, 1)] = stringField(t, kv, 2)
	}
	graphs := fieldsNumbered(fields, 7)
	if len(graphs) != 1 {
		t.Fatalf("%d graphs, want 1", len(graphs))
	}
	m.graph = parseMessage(t, graphs[0].bytes)
	return m
}

// valueInfo is a decoded ValueInfoProto: name 1, type 2 > tensor_type 1 >
// elem_type 1 and shape 2 > dim 1 > dim_value 1 or dim_param 2.
type valueInfo struct {
	name     string
	elemType uint64
	dims     []string
}

func decodeValueInfos(t *testing.T, fields []field) []valueInfo {
	t.Helper()
	var infos []valueInfo
	for _, f := range fields {
		vi := parseMessage(t, f.bytes)
		info := valueInfo{name: stringField(t, vi, 1)}
		typeProto := parseMessage(t, fieldsNumbered(vi, 2)[0].bytes)
		tensorType := parseMessage(t, fieldsNumbered(typeProto, 1)[0].bytes)
		info.elemType = fieldsNumbered(tensorType, 1)[0].varint
		shape := parseMessage(t, fieldsNumbered(tensorType, 2)[0].bytes)
		for _, d := range fieldsNumbered(shape, 1) {
			dim := parseMessage(t, d.bytes)
			if params := fieldsNumbered(dim, 2); len(params) == 1 {
				info.dims = append(info.dims, string(params[0].bytes))
			} else {
				info.dims = append(info.dims, strconv.FormatUint(fieldsNumbered(dim, 1)[0].varint, 10))
			}
		}
		infos = append(infos, info)
	}
	return infos
}

func testModelFile(t *testing.T) *core.ModelFile {
	t.Helper()
	return randomModel("micro", 3)(t)
}

func TestSpecNamesRoundTrip(t *testing.T) {
	want := []string{
		"embed-image", "embed-text", "embed-image-text",
		"reconstruct-image", "reconstruct-text", "reconstruct-image-text",
	}
	var names []string
	for _, spec := range onnx.Specs() {
		names = append(names, spec.Name())
		parsed, err := onnx.ParseSpec(spec.Name())
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", spec.Name(), err)
		}
		if parsed != spec {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", spec.Name(), parsed, spec)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("spec names %v, want %v", names, want)
	}
	if got := (onnx.Spec{Task: onnx.TaskEmbed, Image: true}).FileName(); got != "embed-image.onnx" {
		t.Errorf("FileName = %q, want embed-image.onnx", got)
	}
}

func TestParseSpecUnknownName(t *testing.T) {
	_, err := onnx.ParseSpec("embed-audio")
	if err == nil {
		t.Fatal("ParseSpec(embed-audio) returned no error")
	}
	if !strings.Contains(err.Error(), "embed-image-text") {
		t.Errorf("error %q does not list the valid names", err)
	}
}

func TestMarshalRejectsInvalidInput(t *testing.T) {
	mf := testModelFile(t)
	_, err := onnx.Marshal(nil, onnx.Spec{Task: onnx.TaskEmbed, Image: true})
	if !errors.Is(err, core.ErrInvalidModelFile) {
		t.Errorf("nil model file: error %v, want one wrapping core.ErrInvalidModelFile", err)
	}
	if _, err := onnx.Marshal(mf, onnx.Spec{Task: onnx.TaskEmbed}); err == nil {
		t.Error("spec without modalities: no error")
	}
	if _, err := onnx.Marshal(mf, onnx.Spec{Task: onnx.Task(7), Text: true}); err == nil {
		t.Error("unknown task: no error")
	}

	broken := *mf
	broken.Tensors = make(map[string]*core.Tensor)
	for name, tensor := range mf.Tensors {
		broken.Tensors[name] = tensor
	}
	delete(broken.Tensors, "cls_token")
	_, err = onnx.Marshal(&broken, onnx.Spec{Task: onnx.TaskEmbed, Image: true})
	if !errors.Is(err, core.ErrInvalidModelFile) || !strings.Contains(err.Error(), "cls_token") {
		t.Errorf("missing tensor: error %v, want one naming cls_token", err)
	}
}

func TestMarshalModelHeader(t *testing.T) {
	data, err := onnx.Marshal(testModelFile(t), onnx.Spec{Task: onnx.TaskReconstruct, Image: true, Text: true})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeModel(t, data)
	if m.irVersion != onnx.IRVersion {
		t.Errorf("ir_version %d, want %d", m.irVersion, onnx.IRVersion)
	}
	if m.opsetDomain != "" {
		t.Errorf("opset domain %q, want the default domain", m.opsetDomain)
	}
	if m.opsetVersion != onnx.OpsetVersion {
		t.Errorf("opset version %d, want %d", m.opsetVersion, onnx.OpsetVersion)
	}
	if got := m.metadata["m3ae.model"]; got != "reconstruct-image-text" {
		t.Errorf("metadata m3ae.model = %q, want reconstruct-image-text", got)
	}
	if got := m.metadata["m3ae.source_quantization"]; got != core.QuantizationNone {
		t.Errorf("metadata m3ae.source_quantization = %q, want %q", got, core.QuantizationNone)
	}
	if !strings.Contains(m.metadata["m3ae.config"], `"emb_dim":32`) {
		t.Errorf("metadata m3ae.config = %q, want the micro config", m.metadata["m3ae.config"])
	}
	if !strings.Contains(m.metadata["m3ae.image_norm"], `"mean"`) {
		t.Errorf("metadata m3ae.image_norm = %q, want mean and std", m.metadata["m3ae.image_norm"])
	}
}

// TestMarshalInputsAndOutputs checks the name, element type (1 float, 6
// int32) and shape of every input and output of every spec.
func TestMarshalInputsAndOutputs(t *testing.T) {
	mf := testModelFile(t) // micro: 16 patches of 48 values, 16 tokens, D 32
	patches := valueInfo{"patches", 1, []string{"batch", "16", "48"}}
	tokens := valueInfo{"tokens", 6, []string{"batch", "16"}}
	imageKeep := valueInfo{"image_keep", 6, []string{"batch", "image_kept"}}
	textKeep := valueInfo{"text_keep", 6, []string{"batch", "text_kept"}}
	cls := valueInfo{"cls_embedding", 1, []string{"batch", "32"}}
	mean := valueInfo{"mean_embedding", 1, []string{"batch", "32"}}
	encoded := valueInfo{"encoded", 1, []string{"batch", "encoded_tokens", "32"}}
	pixels := valueInfo{"pixel_pred", 1, []string{"batch", "16", "48"}}
	reconstructed := valueInfo{"reconstructed_patches", 1, []string{"batch", "16", "48"}}
	logits := valueInfo{"token_logits", 1, []string{"batch", "16", "30522"}}

	tests := []struct {
		spec            string
		inputs, outputs []valueInfo
	}{
		{"embed-image", []valueInfo{patches}, []valueInfo{cls, mean}},
		{"embed-text", []valueInfo{tokens}, []valueInfo{cls, mean}},
		{"embed-image-text", []valueInfo{patches, tokens}, []valueInfo{cls, mean}},
		{"reconstruct-image", []valueInfo{patches, imageKeep}, []valueInfo{encoded, pixels, reconstructed}},
		{"reconstruct-text", []valueInfo{tokens, textKeep}, []valueInfo{encoded, logits}},
		{"reconstruct-image-text", []valueInfo{patches, tokens, imageKeep, textKeep}, []valueInfo{encoded, pixels, reconstructed, logits}},
	}
	for _, tt := range tests {
		spec, err := onnx.ParseSpec(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		data, err := onnx.Marshal(mf, spec)
		if err != nil {
			t.Fatal(err)
		}

		graph := decodeModel(t, data).graph
		// GraphProto: input 11, output 12.
		inputs := decodeValueInfos(t, fieldsNumbered(graph, 11))
		outputs := decodeValueInfos(t, fieldsNumbered(graph, 12))
		if !slices.EqualFunc(inputs, tt.inputs, equalValueInfo) {
			t.Errorf("%s inputs %+v, want %+v", tt.spec, inputs, tt.inputs)
		}
		if !slices.EqualFunc(outputs, tt.outputs, equalValueInfo) {
			t.Errorf("%s outputs %+v, want %+v", tt.spec, outputs, tt.outputs)
		}
	}
}

func equalValueInfo(a, b valueInfo) bool {
	return a.name == b.name && a.elemType == b.elemType && slices.Equal(a.dims, b.dims)
}

// TestMarshalGraphIsTopological checks that every node input is a graph
// input, an initializer or the output of an earlier node, and that every
// operator is one of the opset-17 operators the exporter uses.
func TestMarshalGraphIsTopological(t *testing.T) {
	allowed := []string{
		"Add", "Cast", "Concat", "Div", "Equal", "Expand", "Gather", "GatherElements",
		"Identity", "LayerNormalization", "MatMul", "Mul", "Pad", "ReduceSum", "Reshape",
		"ScatterElements", "Shape", "Slice", "Softmax", "Squeeze", "Sub", "Tanh",
		"Transpose", "Unsqueeze", "Where",
	}
	mf := testModelFile(t)
	for _, spec := range onnx.Specs() {
		data, err := onnx.Marshal(mf, spec)
		if err != nil {
			t.Fatal(err)
		}
		graph := decodeModel(t, data).graph
		defined := make(map[string]bool)
		for _, info := range decodeValueInfos(t, fieldsNumbered(graph, 11)) {
			defined[info.name] = true
		}
		// GraphProto initializer 5 > TensorProto name 8.
		for _, init := range fieldsNumbered(graph, 5) {
			defined[stringField(t, parseMessage(t, init.bytes), 8)] = true
		}
		// GraphProto node 1 > NodeProto input 1, output 2, op_type 4.
		for _, n := range fieldsNumbered(graph, 1) {
			node := parseMessage(t, n.bytes)
			opType := stringField(t, node, 4)
			if !slices.Contains(allowed, opType) {
				t.Errorf("%s: operator %s is not in the expected set", spec.Name(), opType)
			}
			for _, in := range fieldsNumbered(node, 1) {
				if !defined[string(in.bytes)] {
					t.Errorf("%s: %s node reads %q before it is defined", spec.Name(), opType, in.bytes)
				}
			}
			for _, out := range fieldsNumbered(node, 2) {
				if defined[string(out.bytes)] {
					t.Errorf("%s: value %q is defined twice", spec.Name(), out.bytes)
				}
				defined[string(out.bytes)] = true
			}
		}
		for _, info := range decodeValueInfos(t, fieldsNumbered(graph, 12)) {
			if !defined[info.name] {
				t.Errorf("%s: output %q is never computed", spec.Name(), info.name)
			}
		}
	}
}

// TestMarshalDequantizesInt8 checks that the initializers of an int8
// file's kernel and text embedding hold float32(q) * scale, per column and
// per row.
func TestMarshalDequantizesInt8(t *testing.T) {
	mf := int8Model("micro", 4)(t)
	data, err := onnx.Marshal(mf, onnx.Spec{Task: onnx.TaskEmbed, Text: true})
	if err != nil {
		t.Fatal(err)
	}
	graph := decodeModel(t, data).graph
	initializers := make(map[string][]float32)
	for _, init := range fieldsNumbered(graph, 5) {
		tensor := parseMessage(t, init.bytes)
		// TensorProto: data_type 2 (1 = FLOAT), name 8, raw_data 9.
		if fieldsNumbered(tensor, 2)[0].varint != 1 {
			continue
		}
		raw := fieldsNumbered(tensor, 9)[0].bytes
		values := make([]float32, len(raw)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		initializers[stringField(t, tensor, 8)] = values
	}

	for _, tt := range []struct {
		name   string
		perRow bool
	}{
		{"encoder.Block_0.Attention_0.Dense_0.kernel", false},
		{"text_embedding.embedding", true},
	} {
		q, scale, err := mf.Int8(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := initializers[tt.name]
		if !ok {
			t.Fatalf("initializer %s missing", tt.name)
		}
		if len(got) != len(q) {
			t.Fatalf("initializer %s has %d values, want %d", tt.name, len(got), len(q))
		}
		cols := len(q) / len(scale)
		if !tt.perRow {
			cols = len(scale)
		}
		for i, v := range q {
			s := scale[i%cols]
			if tt.perRow {
				s = scale[i/cols]
			}
			if want := float32(float32(v) * s); got[i] != want {
				t.Fatalf("initializer %s element %d = %v, want float32(%d) * %v = %v", tt.name, i, got[i], v, s, want)
			}
		}
	}
}

// TestMarshalInt8SmallVocabulary exports an int8 model whose vocabulary has
// fewer rows than the model is wide, where the per-row scales of the text
// embedding are fewer than its columns.
func TestMarshalInt8SmallVocabulary(t *testing.T) {
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for c := 'a'; c <= 'k'; c++ {
		vocab = append(vocab, string(c))
	}
	cfg.VocabSize = len(vocab)
	if cfg.VocabSize >= cfg.EmbedDim {
		t.Fatalf("vocabulary of %d tokens is not smaller than width %d", cfg.VocabSize, cfg.EmbedDim)
	}
	mf, err := core.InitModelFile(cfg, vocab, core.CC12MNorm, 5)
	if err != nil {
		t.Fatal(err)
	}
	quantized, _, err := quantize.QuantizeModelFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.Marshal(quantized, onnx.Spec{Task: onnx.TaskEmbed, Text: true}); err != nil {
		t.Errorf("Marshal of an int8 model with %d tokens: %v", cfg.VocabSize, err)
	}
}
