// Package onnx writes the embedding and reconstruction passes of an
// m3ae-edge model file as float32 ONNX models (opset 17, IR version 8),
// which ONNX Runtime and other ONNX runtimes run.
//
// Each Spec is one ONNX model: the embedding or the reconstruction pass
// over the image, the text or both. The graphs reproduce the core's forward
// pass operator by operator. LayerNorm uses epsilon 1e-6 and GELU its tanh
// form. Attention scales scores by 1/sqrt(head width) and replaces the
// scores of padding keys by -1e7 before the softmax. The fixed sin-cos
// position embeddings are stored as constants. An int8 file is dequantized
// to float32 with the core's rule. Image preprocessing and tokenization stay outside the graph:
// the inputs are the normalized patches and the token ids that the core's
// Model takes. docs/ONNX.md lists every input and output.
//
// The protobuf encoding is written by hand (proto.go), so the package
// imports only the standard library and core.
package onnx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// OpsetVersion is the version of the default ONNX operator set that the
// models import. IRVersion is the ONNX IR version that goes with it.
const (
	OpsetVersion = 17
	IRVersion    = 8
)

// Names of the graph inputs.
const (
	// InputPatches is the normalized image patches, float32 [batch, Np,
	// p*p*C], patch n row-major over the grid, each patch in (row, column,
	// channel) order: what core.Patchify writes.
	InputPatches = "patches"
	// InputTokens is the WordPiece ids, int32 [batch, Nt], padded with
	// core.PadID to the model's text length. Ids must be in [0, V): the
	// graph cannot reject a negative id, which ONNX's Gather counts from
	// the end of the embedding table.
	InputTokens = "tokens"
	// InputImageKeep is the indices of the visible image patches, int32
	// [batch, Ki], each in [0, Np) and distinct within a row.
	InputImageKeep = "image_keep"
	// InputTextKeep is the indices of the visible text positions, int32
	// [batch, Kt], each in [0, Nt) and distinct within a row.
	InputTextKeep = "text_keep"
)

// Names of the graph outputs.
const (
	// OutputCLS is the CLS token's encoder output, float32 [batch, D]: what
	// core.Model.Embed returns with core.PoolCLS.
	OutputCLS = "cls_embedding"
	// OutputMean is the mean encoder output of the image patches and the
	// non-pad text tokens, float32 [batch, D]: what core.Model.Embed
	// returns with core.PoolMean. It is NaN for a text-only input whose
	// ids are all pads, which the core rejects.
	OutputMean = "mean_embedding"
	// OutputEncoded is the encoder output of CLS and the kept tokens,
	// float32 [batch, K, D], in the order of the keep inputs.
	OutputEncoded = "encoded"
	// OutputPixelPred is the predicted normalized patch of every image
	// slot, float32 [batch, Np, p*p*C].
	OutputPixelPred = "pixel_pred"
	// OutputReconstructedPatches is the input patch where it was kept and
	// the predicted one where it was hidden, float32 [batch, Np, p*p*C].
	OutputReconstructedPatches = "reconstructed_patches"
	// OutputTokenLogits is the text head's logits of every text slot,
	// float32 [batch, Nt, V].
	OutputTokenLogits = "token_logits"
)

// Task is the forward pass an exported model runs.
type Task int

const (
	// TaskEmbed runs the encoder on the unmasked input and pools its
	// output, as core.Model.Embed does.
	TaskEmbed Task = iota
	// TaskReconstruct encodes the kept tokens and decodes every position,
	// as core.Model.Reconstruct does.
	TaskReconstruct
)

// String returns "embed" or "reconstruct".
func (t Task) String() string {
	switch t {
	case TaskEmbed:
		return "embed"
	case TaskReconstruct:
		return "reconstruct"
	}
	return fmt.Sprintf("Task(%d)", int(t))
}

// Spec selects one exported model: a task and the modalities its inputs
// have. The core accepts an image, a text or both in one call, and an ONNX
// graph has a fixed set of inputs, so each combination is its own model.
type Spec struct {
	Task  Task
	Image bool
	Text  bool
}

// Specs returns every model the package exports, in a fixed order: the
// embedding models, then the reconstruction models, each for the image,
// the text and both.
func Specs() []Spec {
	var specs []Spec
	for _, task := range []Task{TaskEmbed, TaskReconstruct} {
		specs = append(specs,
			Spec{Task: task, Image: true},
			Spec{Task: task, Text: true},
			Spec{Task: task, Image: true, Text: true})
	}
	return specs
}

// Name returns the spec's name: the task, then "image", "text" or
// "image-text", such as "embed-image-text".
func (s Spec) Name() string {
	var modalities []string
	if s.Image {
		modalities = append(modalities, "image")
	}
	if s.Text {
		modalities = append(modalities, "text")
	}
	return s.Task.String() + "-" + strings.Join(modalities, "-")
}

// FileName returns the spec's name with the ".onnx" extension.
func (s Spec) FileName() string { return s.Name() + ".onnx" }

// ParseSpec returns the spec whose Name is name.
func ParseSpec(name string) (Spec, error) {
	var names []string
	for _, spec := range Specs() {
		if spec.Name() == name {
			return spec, nil
		}
		names = append(names, spec.Name())
	}
	return Spec{}, fmt.Errorf("unknown ONNX model %q: use one of %s", name, strings.Join(names, ", "))
}

func (s Spec) validate() error {
	if s.Task != TaskEmbed && s.Task != TaskReconstruct {
		return fmt.Errorf("task %d is unknown: use TaskEmbed or TaskReconstruct", int(s.Task))
	}
	if !s.Image && !s.Text {
		return errors.New("spec has neither image nor text inputs: set Image, Text or both")
	}
	return nil
}

// maxModelBytes is the largest ONNX file that can be written without
// external data: protobuf limits one message to 2 GiB - 1 bytes, and ONNX
// Runtime rejects larger files.
const maxModelBytes = math.MaxInt32

// Marshal returns the ONNX model of spec for the model file mf.
func Marshal(mf *core.ModelFile, spec Spec) ([]byte, error) {
	var out writeBuffer
	if err := Write(&out, mf, spec); err != nil {
		return nil, err
	}
	return out.b, nil
}

type writeBuffer struct{ b []byte }

func (w *writeBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Write writes the ONNX model of spec for the model file mf, float32 or
// int8, to w. mf must pass (*core.ModelFile).Validate. The whole graph is
// built in a growing buffer first, so Write needs up to about twice the
// output's size in memory. It fails without writing anything when the
// model would exceed protobuf's 2 GiB message limit.
func Write(w io.Writer, mf *core.ModelFile, spec Spec) error {
	if err := spec.validate(); err != nil {
		return fmt.Errorf("onnx export: %w", err)
	}
	if err := mf.Validate(); err != nil {
		return fmt.Errorf("onnx export: %w", err)
	}

	b := newBuilder(mf)
	if spec.Task == TaskEmbed {
		b.buildEmbed(spec)
	} else {
		b.buildReconstruct(spec)
	}
	if b.err != nil {
		return fmt.Errorf("onnx export %s: %w", spec.Name(), b.err)
	}
	graph := b.g.finish("m3ae_"+strings.ReplaceAll(spec.Name(), "-", "_"), graphDoc(spec))

	header, err := modelHeader(mf, spec)
	if err != nil {
		return fmt.Errorf("onnx export %s: %w", spec.Name(), err)
	}
	header.tag(fieldModelGraph, wireBytes)
	header.b = binary.AppendUvarint(header.b, uint64(len(graph)))
	if size := uint64(len(header.b)) + uint64(len(graph)); size > maxModelBytes {
		return fmt.Errorf("onnx export %s: the model takes %d bytes, over the 2 GiB limit of one protobuf message: this exporter writes no external data files, so export a smaller architecture",
			spec.Name(), size)
	}
	if _, err := w.Write(header.b); err != nil {
		return fmt.Errorf("onnx export %s: %w", spec.Name(), err)
	}
	if _, err := w.Write(graph); err != nil {
		return fmt.Errorf("onnx export %s: %w", spec.Name(), err)
	}
	return nil
}

// modelHeader returns the ModelProto fields that precede the graph: the
// versions, the producer and metadata that a runtime user needs to prepare
// inputs.
func modelHeader(mf *core.ModelFile, spec Spec) (*message, error) {
	config, err := json.Marshal(mf.Config)
	if err != nil {
		return nil, err
	}
	norm, err := json.Marshal(mf.Norm)
	if err != nil {
		return nil, err
	}

	m := &message{}
	m.int64(fieldModelIRVersion, IRVersion)
	opset := &message{}
	opset.string(fieldOpsetDomain, "")
	opset.int64(fieldOpsetVersion, OpsetVersion)
	m.message(fieldModelOpsetImport, opset)
	m.string(fieldModelProducerName, core.FormatName)
	m.string(fieldModelProducerVersion, fmt.Sprintf("model file format %d", core.FormatVersion))
	m.string(fieldModelDocString, graphDoc(spec))

	metadata := [][2]string{
		{"m3ae.model", spec.Name()},
		{"m3ae.config", string(config)},
		{"m3ae.image_norm", string(norm)},
		{"m3ae.source_quantization", mf.Quantization},
		{"m3ae.pad_id", fmt.Sprint(core.PadID)},
	}
	for _, kv := range metadata {
		entry := &message{}
		entry.string(fieldEntryKey, kv[0])
		entry.string(fieldEntryValue, kv[1])
		m.message(fieldModelMetadataProps, entry)
	}
	return m, nil
}

// graphDoc returns a one-line description of spec's graph.
func graphDoc(spec Spec) string {
	if spec.Task == TaskEmbed {
		return "M3AE embedding: encoder over the unmasked input, CLS and mean pooling (" + spec.Name() + ")"
	}
	return "M3AE reconstruction: encoder over the kept tokens, decoder over every position (" + spec.Name() + ")"
}
