package core

// FormatName is the value of the "format" metadata key of every model file.
const FormatName = "m3ae-edge"

// FormatVersion is the model-file format version this package reads and
// writes.
const FormatVersion = 1

// DType is the element type of a stored tensor, spelled as safetensors
// spells it.
type DType string

const (
	// F32 is little-endian IEEE 754 float32.
	F32 DType = "F32"
	// I8 is two's-complement int8, used by quantized files.
	I8 DType = "I8"
)

// ImageNorm is the per-channel normalization applied to pixels scaled to
// [0, 1]: normalized = (pixel - Mean) / Std, channels in R, G, B order.
type ImageNorm struct {
	Mean [Channels]float32 `json:"mean"`
	Std  [Channels]float32 `json:"std"`
}

// CC12MNorm is the normalization the official M3AE checkpoints were trained
// with (the official data pipeline's "cc12m" mode).
var CC12MNorm = ImageNorm{
	Mean: [Channels]float32{0.5762, 0.5503, 0.5213},
	Std:  [Channels]float32{0.3207, 0.3169, 0.3307},
}

// Tensor is one named tensor of a model file. Exactly one of F32 and I8
// holds the data, matching DType, in row-major order.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	F32   []float32
	I8    []int8
}

// ModelFile is the decoded content of a model file: the architecture, the
// tokenizer vocabulary, the image normalization and the tensors.
type ModelFile struct {
	Config Config
	// Vocab is the WordPiece vocabulary; Vocab[id] is the token of id.
	Vocab []string
	Norm  ImageNorm
	// Quantization names the weight scheme: "none" for float32 files.
	Quantization string
	// Tensors maps each tensor name to its tensor.
	Tensors map[string]*Tensor
}
