package native

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Example is one training or evaluation example.
type Example struct {
	// Image holds normalized pixels, [ImageSize, ImageSize, C] row-major:
	// element (y, x, c) is at (y*ImageSize+x)*C + c. Nil for a text-only
	// example.
	Image []float32
	// Text holds TextLength token ids, 0 for pad. Nil, or all pads, for an
	// image-only example.
	Text []int32
}

// exampleKind is the token groups an example has.
type exampleKind int

const (
	kindPaired    exampleKind = iota // image and non-pad text
	kindImageOnly                    // image, no non-pad text
	kindTextOnly                     // non-pad text, no image
	numKinds
)

func (k exampleKind) hasImage() bool { return k != kindTextOnly }
func (k exampleKind) hasText() bool  { return k != kindImageOnly }

func (k exampleKind) String() string {
	return [...]string{"paired", "image-only", "text-only"}[k]
}

// checkExample returns an error unless ex fits cfg: an image of
// ImageSize*ImageSize*C finite values or none, TextLength ids in the
// vocabulary or none, and at least one of the two.
func checkExample(cfg core.Config, ex Example, i int) error {
	if ex.Image == nil && ex.Text == nil {
		return fmt.Errorf("%w: example %d has neither an image nor text", core.ErrInvalidInput, i)
	}
	if want := cfg.ImageSize * cfg.ImageSize * core.Channels; ex.Image != nil && len(ex.Image) != want {
		return fmt.Errorf("%w: example %d image has %d values, want %d (%dx%dx%d normalized pixels)",
			core.ErrInvalidInput, i, len(ex.Image), want, cfg.ImageSize, cfg.ImageSize, core.Channels)
	}
	for j, v := range ex.Image {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: example %d pixel value %d is %v; pass finite normalized pixels", core.ErrInvalidInput, i, j, v)
		}
	}
	if ex.Text != nil && len(ex.Text) != cfg.TextLength {
		return fmt.Errorf("%w: example %d text has %d ids, want %d (pad with 0)", core.ErrInvalidInput, i, len(ex.Text), cfg.TextLength)
	}
	for j, id := range ex.Text {
		if id < 0 || int(id) >= cfg.VocabSize {
			return fmt.Errorf("%w: example %d token %d has id %d, want 0 to %d", core.ErrInvalidInput, i, j, id, cfg.VocabSize-1)
		}
	}
	return nil
}

// trainingKind classifies an example for training, where text of pads only
// counts as no text: leaving the text group out gives the same loss up to
// float32 rounding, as every one of its keys would be masked.
func trainingKind(cfg core.Config, ex Example, i int) (exampleKind, error) {
	if err := checkExample(cfg, ex, i); err != nil {
		return 0, err
	}
	hasText := ex.Text != nil && !isAllPad(ex.Text)
	switch {
	case ex.Image != nil && hasText:
		return kindPaired, nil
	case ex.Image != nil:
		return kindImageOnly, nil
	case hasText:
		return kindTextOnly, nil
	}
	return 0, fmt.Errorf("%w: example %d has no image and its text contains only pads", core.ErrInvalidInput, i)
}

// forwardKind classifies an example as core.Model does: it has text
// whenever Text is non-nil, pads only included.
func forwardKind(cfg core.Config, ex Example, i int) (exampleKind, error) {
	if err := checkExample(cfg, ex, i); err != nil {
		return 0, err
	}
	switch {
	case ex.Image != nil && ex.Text != nil:
		return kindPaired, nil
	case ex.Image != nil:
		return kindImageOnly, nil
	}
	return kindTextOnly, nil
}

// subBatch is the host tensors of the examples of one kind, in the order
// that unpackSubBatch reads them.
type subBatch struct {
	kind    exampleKind
	size    int
	inputs  []*tensors.Tensor
	indices []int // positions of the examples in the caller's batch
}

// Number of graph inputs of a sub-batch's image and text groups.
const (
	numImageInputs = 5
	numTextInputs  = 9
)

// packSubBatch builds the graph inputs of examples that all have kind,
// with one mask each.
//
// Image group: keptPatches [B, Ki, P] float32, imageKeep [B, Ki],
// imageRestore [B, Np], imageHidden [B, Nm] (int32), hiddenPatches [B, Nm, P]
// float32.
//
// Text group: keptText [B, Kt], textKeep [B, Kt] (int32), keptTextPad
// [B, Kt] bool, textRestore [B, Nt] int32, textPad [B, Nt] bool, then the
// scored rows (see packScoredRows): scoredExample, scoredPosition,
// scoredTarget [R] int32 and scoredWeight [R] float32.
func packSubBatch(cfg core.Config, kind exampleKind, examples []Example, masks []core.Masks) (*subBatch, error) {
	sb := &subBatch{kind: kind, size: len(examples)}
	batch := len(examples)
	if kind.hasImage() {
		group := make([][]bool, batch)
		for i, m := range masks {
			group[i] = m.Image
		}
		if err := checkMaskGroup(group, cfg.NumPatches(), "image"); err != nil {
			return nil, err
		}
		sb.inputs = append(sb.inputs, packImages(cfg, examples, group)...)
	}
	if kind.hasText() {
		group := make([][]bool, batch)
		for i, m := range masks {
			group[i] = m.Text
		}
		if err := checkMaskGroup(group, cfg.TextLength, "text"); err != nil {
			return nil, err
		}
		sb.inputs = append(sb.inputs, packTexts(cfg, examples, group)...)
	}
	return sb, nil
}

// packImages returns the image group's tensors; masks are already checked.
func packImages(cfg core.Config, examples []Example, masks [][]bool) []*tensors.Tensor {
	batch, numPatches, patchDim := len(examples), cfg.NumPatches(), cfg.PatchDim()
	numKept := numPatches - countTrue(masks[0])
	numHidden := numPatches - numKept
	keptPatches := make([]float32, 0, batch*numKept*patchDim)
	hiddenPatches := make([]float32, 0, batch*numHidden*patchDim)
	var keep, restore, hidden []int32
	patches := make([]float32, numPatches*patchDim)
	for i, ex := range examples {
		core.Patchify(patches, ex.Image, cfg)
		idx := indicesOf(masks[i])
		for _, pos := range idx.keep {
			keptPatches = append(keptPatches, patches[int(pos)*patchDim:(int(pos)+1)*patchDim]...)
		}
		for _, pos := range idx.hidden {
			hiddenPatches = append(hiddenPatches, patches[int(pos)*patchDim:(int(pos)+1)*patchDim]...)
		}
		keep = append(keep, idx.keep...)
		restore = append(restore, idx.restore...)
		hidden = append(hidden, idx.hidden...)
	}
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(keptPatches, batch, numKept, patchDim),
		tensors.FromFlatDataAndDimensions(keep, batch, numKept),
		tensors.FromFlatDataAndDimensions(restore, batch, numPatches),
		tensors.FromFlatDataAndDimensions(hidden, batch, numHidden),
		tensors.FromFlatDataAndDimensions(hiddenPatches, batch, numHidden, patchDim),
	}
}

// packTexts returns the text group's tensors; masks are already checked.
// A nil Text counts as all pads.
func packTexts(cfg core.Config, examples []Example, masks [][]bool) []*tensors.Tensor {
	batch, length := len(examples), cfg.TextLength
	numKept := length - countTrue(masks[0])
	var keptText, keep, restore []int32
	var keptPad, pad []bool
	texts := make([][]int32, batch)
	for i, ex := range examples {
		text := ex.Text
		if text == nil {
			text = make([]int32, length)
		}
		texts[i] = text
		idx := indicesOf(masks[i])
		for _, pos := range idx.keep {
			keptText = append(keptText, text[pos])
			keptPad = append(keptPad, text[pos] == 0)
		}
		for _, id := range text {
			pad = append(pad, id == 0)
		}
		keep = append(keep, idx.keep...)
		restore = append(restore, idx.restore...)
	}
	return append([]*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(keptText, batch, numKept),
		tensors.FromFlatDataAndDimensions(keep, batch, numKept),
		tensors.FromFlatDataAndDimensions(keptPad, batch, numKept),
		tensors.FromFlatDataAndDimensions(restore, batch, length),
		tensors.FromFlatDataAndDimensions(pad, batch, length),
	}, packScoredRows(texts, masks)...)
}

// packScoredRows lists the rows the text loss scores: every hidden non-pad
// token of every example, in example then position order. Row r holds the
// example index, the text position, the target id and the weight 1/count_b,
// where count_b is the number of scored tokens of its example b. Summing
// weight*crossEntropy over the rows of b then gives b's per-example loss.
//
// The row count is padded with zero-weight rows (example 0, position 0,
// target 0) up to a multiple of the batch size: the graph has static shapes,
// so every distinct count compiles a graph, and padding bounds their number
// by Nt while leaving most of the saving of scoring the non-pad tokens only.
func packScoredRows(texts [][]int32, masks [][]bool) []*tensors.Tensor {
	var example, position, target []int32
	var weight []float32
	for b, text := range texts {
		count := 0
		for pos, hidden := range masks[b] {
			if hidden && text[pos] != 0 {
				count++
			}
		}
		for pos, hidden := range masks[b] {
			if hidden && text[pos] != 0 {
				example = append(example, int32(b))
				position = append(position, int32(pos))
				target = append(target, text[pos])
				weight = append(weight, 1/float32(count))
			}
		}
	}
	bucket := len(texts)
	padded := max(1, (len(example)+bucket-1)/bucket) * bucket
	for len(example) < padded {
		example, position, target = append(example, 0), append(position, 0), append(target, 0)
		weight = append(weight, 0)
	}
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(example, padded),
		tensors.FromFlatDataAndDimensions(position, padded),
		tensors.FromFlatDataAndDimensions(target, padded),
		tensors.FromFlatDataAndDimensions(weight, padded),
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
