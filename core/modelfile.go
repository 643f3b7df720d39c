package core

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// FormatName is the value of the "format" metadata key of every model file.
const FormatName = "m3ae-edge"

// FormatVersion is the model-file format version this package reads and
// writes.
const FormatVersion = 1

// QuantizationNone is the "quantization" metadata value of a float32 file,
// in which every tensor is F32. QuantizationInt8 is the other scheme this
// version reads.
const QuantizationNone = "none"

// Limits that ReadModelFile and WriteModelFile enforce. The reader compares
// every size from a header with them in uint64 arithmetic before the size
// becomes an int. So a hostile header cannot overflow a 32-bit int on the
// wasm targets, nor make the reader allocate more than the file holds.
const (
	// MaxHeaderSize is the largest JSON header in bytes, the limit of the
	// reference safetensors implementation. It bounds the time spent
	// parsing JSON before any tensor is checked. The bert-base-uncased
	// vocabulary, the largest metadata value, takes about 0.25 MB.
	MaxHeaderSize = 100_000_000
	// MaxModelFileSize is the largest model file in bytes, 4 GiB. A wasm32
	// linear memory is at most 4 GiB, so no larger file can be loaded on
	// the wasm targets. The official large architecture stores about 1.5 GB
	// of float32 weights.
	MaxModelFileSize uint64 = 1 << 32
	// MaxTensorElements is the largest element count of one tensor. It is
	// the longest slice a 32-bit Go target (js/wasm, wasip1/wasm) can
	// allocate, math.MaxInt32.
	MaxTensorElements = math.MaxInt32
)

// DType is the element type of a stored tensor, spelled as safetensors
// spells it.
type DType string

const (
	// F32 is little-endian IEEE 754 float32.
	F32 DType = "F32"
	// I8 is two's-complement int8, used by quantized files.
	I8 DType = "I8"
)

// Size returns the size of one element in bytes, or 0 for a dtype that this
// package does not read.
func (d DType) Size() int {
	switch d {
	case F32:
		return 4
	case I8:
		return 1
	}
	return 0
}

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
	// Quantization names the weight scheme: QuantizationNone for float32
	// files, QuantizationInt8 for int8 files.
	Quantization string
	// Tensors maps each tensor name to its tensor.
	Tensors map[string]*Tensor
}

// Tensor returns the tensor called name.
func (mf *ModelFile) Tensor(name string) (*Tensor, error) {
	t, ok := mf.Tensors[name]
	if !ok || t == nil {
		return nil, fmt.Errorf("%w: tensor %q not found", ErrInvalidModelFile, name)
	}
	return t, nil
}

// Float32 returns the data of the F32 tensor called name. The slice is the
// tensor's own storage, not a copy.
func (mf *ModelFile) Float32(name string) ([]float32, error) {
	t, err := mf.Tensor(name)
	if err != nil {
		return nil, err
	}
	if t.DType != F32 {
		return nil, fmt.Errorf("%w: tensor %q has dtype %s, want F32", ErrInvalidModelFile, name, t.DType)
	}
	return t.F32, nil
}

// Validate checks mf the way WriteModelFile does before it writes: a valid
// config, vocab_size tokens without newlines, a usable image normalization,
// a supported quantization, exactly the tensors of the architecture with
// their dtypes and shapes, and finite float32 values. Every error wraps
// ErrInvalidModelFile.
func (mf *ModelFile) Validate() error {
	if mf == nil {
		return fmt.Errorf("%w: model file is nil", ErrInvalidModelFile)
	}
	if err := mf.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModelFile, err)
	}
	return nil
}

func (mf *ModelFile) validate() error {
	if err := checkQuantization(mf.Quantization); err != nil {
		return err
	}
	if err := mf.Config.Validate(); err != nil {
		return fmt.Errorf("metadata %q: %w", metaConfig, err)
	}
	if err := checkVocab(mf.Vocab, mf.Config.VocabSize); err != nil {
		return err
	}
	if err := checkImageNorm(mf.Norm); err != nil {
		return err
	}
	specs, err := expectedTensors(mf.Config, mf.Quantization, len(mf.Tensors))
	if err != nil {
		return err
	}
	stored := make(map[string]storedTensor, len(mf.Tensors))
	for name, t := range mf.Tensors {
		st, err := describeTensor(name, t)
		if err != nil {
			return err
		}
		stored[name] = st
	}
	if err := matchTensors(specs, stored); err != nil {
		return err
	}
	return checkTensorData(specs, mf.Tensors)
}

// tensorSpec is one tensor that a model file must contain.
type tensorSpec struct {
	name  string
	dtype DType
	shape []int
	// isScale marks the F32 scales of an I8 tensor, which must be > 0.
	isScale bool
}

// storedTensor is the dtype and shape of a tensor as a file or a ModelFile
// stores it. Dims are uint64 because they come from untrusted headers.
type storedTensor struct {
	dtype DType
	shape []uint64
}

// tensorsPerBlock is the number of parameter tensors of one transformer
// block in a float32 file: two LayerNorms and four dense layers, each with
// two tensors. An int8 file adds a scale tensor per dense layer, so the
// count is a lower bound for both schemes.
const tensorsPerBlock = 12

// expectedTensors lists the tensors that a file with the given config and
// quantization scheme contains, in ParamSpecs order, each I8 tensor
// followed by its scales. numStored is the number
// of tensors the file has. Every block owns tensorsPerBlock tensors, so a
// config whose blocks own more than numStored cannot match. Rejecting it
// first keeps ParamSpecs from listing more parameters than the header has
// tensors, apart from the 20 outside the blocks.
func expectedTensors(cfg Config, quantization string, numStored int) ([]tensorSpec, error) {
	if err := checkQuantization(quantization); err != nil {
		return nil, err
	}
	if blocks := cfg.Depth + cfg.DecoderDepth; tensorsPerBlock*blocks > numStored {
		return nil, fmt.Errorf("config has %d transformer blocks, but there are only %d tensors: each block has %d",
			blocks, numStored, tensorsPerBlock)
	}
	params := ParamSpecs(cfg)
	if err := checkParamSizes(params); err != nil {
		return nil, fmt.Errorf("metadata %q: %w", metaConfig, err)
	}
	return tensorSpecs(params, quantization), nil
}

// describeTensor returns the dtype and shape of a caller's tensor, rejecting
// a nil tensor, a Name that differs from its map key and negative dims.
func describeTensor(name string, t *Tensor) (storedTensor, error) {
	if t == nil {
		return storedTensor{}, fmt.Errorf("tensor %q is nil", name)
	}
	if t.Name != name {
		return storedTensor{}, fmt.Errorf("tensor %q: Name field is %q, want the map key", name, t.Name)
	}
	shape := make([]uint64, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 {
			return storedTensor{}, fmt.Errorf("tensor %q: shape %v has a negative dim", name, t.Shape)
		}
		shape[i] = uint64(d)
	}
	return storedTensor{dtype: t.DType, shape: shape}, nil
}

// maxListedProblems caps the problems one tensor-set error lists, so a file
// for another architecture gives a readable message instead of hundreds of
// lines.
const maxListedProblems = 10

// matchTensors checks that stored holds exactly the tensors of specs, with
// their dtypes and shapes. It reports every missing, unknown and mismatched
// tensor in one error, sorted by name.
func matchTensors(specs []tensorSpec, stored map[string]storedTensor) error {
	var problems []string
	expected := make(map[string]bool, len(specs))
	for _, s := range specs {
		expected[s.name] = true
		st, ok := stored[s.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("tensor %q: missing", s.name))
		case st.dtype != s.dtype:
			problems = append(problems, fmt.Sprintf("tensor %q: dtype %s, want %s", s.name, st.dtype, s.dtype))
		case !shapeEqual(st.shape, s.shape):
			problems = append(problems, fmt.Sprintf("tensor %q: shape %v, want %v", s.name, st.shape, s.shape))
		}
	}
	for name := range stored {
		if !expected[name] {
			problems = append(problems, fmt.Sprintf("tensor %q: unknown, not a parameter of this architecture", name))
		}
	}
	return joinProblems(problems)
}

// joinProblems sorts the problems and joins them into one error, or
// returns nil when there are none.
func joinProblems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	if len(problems) == 1 {
		return fmt.Errorf("%s", problems[0])
	}
	listed := problems[:min(len(problems), maxListedProblems)]
	msg := fmt.Sprintf("%d tensors do not match the config: %s", len(problems), strings.Join(listed, "; "))
	if len(problems) > len(listed) {
		msg += fmt.Sprintf("; and %d more", len(problems)-len(listed))
	}
	return fmt.Errorf("%s", msg)
}

func shapeEqual(stored []uint64, want []int) bool {
	if len(stored) != len(want) {
		return false
	}
	for i, d := range want {
		if stored[i] != uint64(d) {
			return false
		}
	}
	return true
}

// checkTensorData checks that each tensor's data has the length of its
// shape in its dtype's field, that every F32 value is finite, and the int8
// rules of checkInt8Values. It runs after matchTensors, so every tensor has
// its spec's dtype and shape.
func checkTensorData(specs []tensorSpec, tensors map[string]*Tensor) error {
	for _, s := range specs {
		t := tensors[s.name]
		numElements, _ := shapeElements(t.Shape)
		numF32, numI8 := numElements, uint64(0)
		if s.dtype == I8 {
			numF32, numI8 = 0, numElements
		}
		if uint64(len(t.F32)) != numF32 || uint64(len(t.I8)) != numI8 {
			return fmt.Errorf("tensor %q: has %d F32 and %d I8 values, want %d %s values for shape %v",
				s.name, len(t.F32), len(t.I8), numElements, s.dtype, t.Shape)
		}
		if i := firstNonFinite(t.F32); i >= 0 {
			return fmt.Errorf("tensor %q: element %d is %v, want a finite number", s.name, i, t.F32[i])
		}
	}
	return checkInt8Values(specs, tensors)
}

// shapeElements returns the product of the dims and whether every dim and
// the product are at most MaxTensorElements. The product is computed in
// uint64 and checked before each step, so it cannot overflow, and a shape
// that passes converts to []int safely on 32-bit targets.
func shapeElements[D int | uint64](shape []D) (uint64, bool) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 || uint64(d) > MaxTensorElements {
			return 0, false
		}
		if d != 0 && n > MaxTensorElements/uint64(d) {
			return 0, false
		}
		n *= uint64(d)
	}
	return n, true
}

// checkParamSizes checks, before any tensor is allocated, that every
// parameter has at most MaxTensorElements elements and that a float32 file
// holding them all fits in MaxModelFileSize bytes. It counts in uint64, so
// the check also holds on 32-bit targets.
func checkParamSizes(params []ParamSpec) error {
	var dataBytes uint64
	for _, p := range params {
		numElements, ok := shapeElements(p.Shape)
		if !ok {
			return fmt.Errorf("%w: tensor %q would have shape %v, over the limit of %d elements (MaxTensorElements)",
				ErrInvalidConfig, p.Name, p.Shape, MaxTensorElements)
		}
		dataBytes += numElements * uint64(F32.Size())
	}
	if dataBytes > MaxModelFileSize {
		return fmt.Errorf("%w: the float32 parameters take %d bytes, over the model-file limit of %d (MaxModelFileSize)",
			ErrInvalidConfig, dataBytes, MaxModelFileSize)
	}
	return nil
}

// isFinite32 reports whether the float32 with these bits is neither NaN
// nor infinite: both have every exponent bit set.
func isFinite32(bits uint32) bool {
	return bits&0x7f800000 != 0x7f800000
}

// firstNonFinite returns the index of the first NaN or Inf in v, or -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if !isFinite32(math.Float32bits(x)) {
			return i
		}
	}
	return -1
}

// checkVocab checks that vocab has size tokens, each non-empty, valid UTF-8
// and free of newlines, because the file joins tokens with "\n".
func checkVocab(vocab []string, size int) error {
	if len(vocab) != size {
		return fmt.Errorf("metadata %q: %d tokens, want vocab_size %d", metaVocab, len(vocab), size)
	}
	for id, token := range vocab {
		switch {
		case token == "":
			return fmt.Errorf("metadata %q: token %d is empty", metaVocab, id)
		case strings.Contains(token, "\n"):
			return fmt.Errorf("metadata %q: token %d (%q) contains a newline", metaVocab, id, token)
		case !utf8.ValidString(token):
			return fmt.Errorf("metadata %q: token %d (%q) is not valid UTF-8", metaVocab, id, token)
		}
	}
	return nil
}

// checkImageNorm checks that every mean is finite and every std is finite
// and positive, so that normalizing a pixel cannot divide by zero.
func checkImageNorm(norm ImageNorm) error {
	for c := range Channels {
		mean, std := norm.Mean[c], norm.Std[c]
		if !isFinite32(math.Float32bits(mean)) {
			return fmt.Errorf("metadata %q: mean[%d] = %v, want a finite number", metaImageNorm, c, mean)
		}
		if !isFinite32(math.Float32bits(std)) || !(std > 0) {
			return fmt.Errorf("metadata %q: std[%d] = %v, want a finite number > 0", metaImageNorm, c, std)
		}
	}
	return nil
}
