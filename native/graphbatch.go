package native

import (
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
)

// subBatchNodes is one sub-batch's graph inputs, as packSubBatch lays them
// out. Image fields are nil for text-only sub-batches and text fields nil
// for image-only ones.
type subBatchNodes struct {
	batchSize int
	enc       encoderInput
	dec       decoderInput

	imageHidden   *Node // [B, Nm] int32 hidden patch positions
	hiddenPatches *Node // [B, Nm, P] target pixels of the hidden patches

	// The rows the text loss scores, R of them, as packScoredRows lists them.
	scoredExample  *Node // [R] int32 example index
	scoredPosition *Node // [R] int32 text position
	scoredTarget   *Node // [R] int32 token id to predict
	scoredWeight   *Node // [R] 1/(scored tokens of the example), 0 for padding
}

// unpackSubBatch reads one sub-batch of kind from the front of nodes and
// returns it with the nodes left.
func unpackSubBatch(nodes []*Node, kind exampleKind) (subBatchNodes, []*Node) {
	var sb subBatchNodes
	if kind.hasImage() {
		in := nodes[:numImageInputs]
		nodes = nodes[numImageInputs:]
		sb.enc.keptPatches, sb.enc.imageKeep = in[0], in[1]
		sb.dec.imageRestore = in[2]
		sb.imageHidden, sb.hiddenPatches = in[3], in[4]
		sb.batchSize = in[1].Shape().Dim(0)
	}
	if kind.hasText() {
		in := nodes[:numTextInputs]
		nodes = nodes[numTextInputs:]
		sb.enc.keptText, sb.enc.textKeep, sb.enc.keptTextPad = in[0], in[1], in[2]
		sb.dec.textRestore, sb.dec.textPad = in[3], in[4]
		sb.scoredExample, sb.scoredPosition, sb.scoredTarget, sb.scoredWeight = in[5], in[6], in[7], in[8]
		sb.batchSize = in[1].Shape().Dim(0)
	}
	return sb, nodes
}

// subBatchLosses runs the encoder and decoder on one sub-batch and returns
// the sums over its examples of the per-example image and text losses. The
// image sum is nil when the sub-batch has no image or hides no patch, the
// text sum nil when it has no text.
//
// The heads run only at the positions the losses read, gathered from the
// decoder output first: the pixel head at the hidden patches and the text
// head at the hidden non-pad tokens. The text head is a [Dd, V] matmul with
// V = 30522 followed by a softmax over V, the largest cost of a step, so
// skipping kept positions and pads saves most of it with short captions.
func (m *m3aeGraph) subBatchLosses(sb subBatchNodes) (imageSum, textSum *Node) {
	enc := m.encode(sb.enc)
	decoded := m.decode(enc, sb.dec) // [B, 1+Np+Nt, Dd]

	textOffset := 1
	if enc.hasImage {
		textOffset += m.cfg.NumPatches()
		if sb.imageHidden.Shape().Dim(1) > 0 {
			pred := m.pixelHead(gatherPositions(decoded, sb.imageHidden, 1)) // [B, Nm, P]
			imageSum = ReduceAllSum(imageMSE(pred, sb.hiddenPatches))
		}
	}
	if enc.hasText {
		dims := decoded.Shape().Dimensions
		flat := Reshape(decoded, dims[0]*dims[1], dims[2]) // [B*(1+Np+Nt), Dd]
		rows := Add(MulScalar(sb.scoredExample, dims[1]), AddScalar(sb.scoredPosition, textOffset))
		logits := m.textHead(Gather(flat, ExpandAxes(rows, -1))) // [R, V]
		textSum = textLossSum(logits, sb.scoredTarget, sb.scoredWeight)
	}
	return imageSum, textSum
}
