package onnx

import (
	"math"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Symbolic dimension names of the graphs' inputs and outputs.
const (
	dimBatch         = "batch"
	dimImageKept     = "image_kept"
	dimTextKept      = "text_kept"
	dimEncodedTokens = "encoded_tokens"
)

// addInputs declares the inputs of spec and returns the patches and tokens
// inputs, "" for an absent modality. It sets the batch size from the first
// input.
func (b *builder) addInputs(spec Spec) (patches, tokens string) {
	g, cfg := b.g, b.cfg
	batch := symbolic(dimBatch)
	if spec.Image {
		patches = g.input(InputPatches, dataTypeFloat, batch, fixed(cfg.NumPatches()), fixed(cfg.PatchDim()))
	}
	if spec.Text {
		tokens = g.input(InputTokens, dataTypeInt32, batch, fixed(cfg.TextLength))
	}
	if patches != "" {
		b.setBatch(patches)
	} else {
		b.setBatch(tokens)
	}
	return patches, tokens
}

// buildEmbed adds the embedding graph: the encoder over the unmasked
// sequence [CLS, Np patches, Nt text tokens], absent modalities left out,
// pooled two ways as the core's Embed pools.
func (b *builder) buildEmbed(spec Spec) {
	g, cfg := b.g, b.cfg
	width := cfg.EmbedDim
	patches, tokens := b.addInputs(spec)

	parts := []string{b.broadcastRows(b.param("cls_token"), 1, width)}
	seqLen := 1
	if spec.Image {
		parts = append(parts, b.imageTokens(patches))
		seqLen += cfg.NumPatches()
	}
	var padding, keyMask string
	if spec.Text {
		parts = append(parts, b.textTokens(tokens))
		padding, keyMask = b.keyMask(g.constInt64(int64(seqLen)), b.padding(tokens))
		seqLen += cfg.TextLength
	}
	x := b.concatRows(parts)
	x = b.transformer(x, "encoder", cfg.Depth, width, cfg.NumHeads, keyMask) // [batch, L, D]

	// CLS pooling: row 0.
	cls := g.opWith("Gather", []string{x, g.scalarInt64(0)}, intAttribute("axis", 1))

	// Mean pooling: the mean of the rows that are neither CLS nor a text
	// pad, as a [1, L] weight row times x, divided by the weights' sum.
	notCLS := make([]float32, seqLen)
	for i := 1; i < seqLen; i++ {
		notCLS[i] = 1
	}
	weights := b.constFloat32("mean_pooling_weights", []int{1, seqLen}, notCLS)
	if padding != "" {
		weights = g.op("Mul", g.op("Sub", g.scalarFloat32(1), padding), weights) // [batch, L]
	}
	sum := g.op("MatMul", g.op("Unsqueeze", weights, g.constInt64(1)), x) // [batch, 1, D]
	sum = g.op("Squeeze", sum, g.constInt64(1))
	count := g.opWith("ReduceSum", []string{weights, g.constInt64(1)}, intAttribute("keepdims", 1))
	mean := g.op("Div", sum, count)

	batch := symbolic(dimBatch)
	g.output(OutputCLS, cls, dataTypeFloat, batch, fixed(width))
	g.output(OutputMean, mean, dataTypeFloat, batch, fixed(width))
}

// buildReconstruct adds the reconstruction graph: the encoder over CLS and
// the kept tokens, then the decoder over every slot, as the core's
// Reconstruct runs them.
func (b *builder) buildReconstruct(spec Spec) {
	g, cfg := b.g, b.cfg
	width, decoderWidth := cfg.EmbedDim, cfg.DecoderEmbedDim
	batch := symbolic(dimBatch)
	patches, tokens := b.addInputs(spec)

	var imageKeep, textKeep, imageKept string
	if spec.Image {
		input := g.input(InputImageKeep, dataTypeInt32, batch, symbolic(dimImageKept))
		imageKeep = g.opWith("Cast", []string{input}, intAttribute("to", dataTypeInt64))
		imageKept = g.opWith("Shape", []string{input}, intAttribute("start", 1), intAttribute("end", 2))
	}
	if spec.Text {
		input := g.input(InputTextKeep, dataTypeInt32, batch, symbolic(dimTextKept))
		textKeep = g.opWith("Cast", []string{input}, intAttribute("to", dataTypeInt64))
	}

	// Encoder over [CLS, kept patches, kept text positions]. Every token
	// is embedded, then the kept rows are gathered, which gives each kept
	// row the values the core computes for it.
	parts := []string{b.broadcastRows(b.param("cls_token"), 1, width)}
	prefix := g.constInt64(1) // rows before the text rows
	if spec.Image {
		parts = append(parts, b.gatherRows(b.imageTokens(patches), imageKeep, width))
		prefix = g.op("Add", prefix, imageKept)
	}
	var encoderMask, padding string
	if spec.Text {
		parts = append(parts, b.gatherRows(b.textTokens(tokens), textKeep, width))
		padding = b.padding(tokens)
		keptPadding := g.opWith("GatherElements", []string{padding, textKeep}, intAttribute("axis", 1))
		_, encoderMask = b.keyMask(prefix, keptPadding)
	}
	encoded := b.concatRows(parts)
	encoded = b.transformer(encoded, "encoder", cfg.Depth, width, cfg.NumHeads, encoderMask) // [batch, K, D]
	g.output(OutputEncoded, encoded, dataTypeFloat, batch, symbolic(dimEncodedTokens), fixed(width))

	// Decoder slots: the projected encoder CLS, then every image slot and
	// every text slot, filled with its projected encoder row when kept and
	// with the learned mask embedding when hidden, which undoes the
	// encoder's gather.
	projected := b.dense(encoded, "decoder_input_projection") // [batch, K, Dd]
	next := g.constInt64(1)                                   // first unread row of projected
	slots := []string{b.sliceRows(projected, g.constInt64(0), next)}
	imageSlotStart := int64(1)
	if spec.Image {
		end := g.op("Add", next, imageKept)
		kept := b.sliceRows(projected, next, end)
		next = end
		masked := b.broadcastRows(b.param("image_mask_embedding"), cfg.NumPatches(), decoderWidth)
		x := b.scatterRows(masked, imageKeep, kept, decoderWidth)
		position := b.constFloat32("decoder_image_position_embedding",
			[]int{cfg.NumPatches(), decoderWidth}, core.ImagePositionEmbedding(cfg.GridSize(), decoderWidth))
		x = g.op("Add", x, position)
		slots = append(slots, g.op("Add", x, b.param("decoder_image_type_embedding")))
	}
	textSlotStart := imageSlotStart
	if spec.Image {
		textSlotStart += int64(cfg.NumPatches())
	}
	var decoderMask string
	if spec.Text {
		kept := b.sliceRows(projected, next, g.constInt64(math.MaxInt64))
		masked := b.broadcastRows(b.param("text_mask_embedding"), cfg.TextLength, decoderWidth)
		x := b.scatterRows(masked, textKeep, kept, decoderWidth)
		position := b.constFloat32("decoder_text_position_embedding",
			[]int{cfg.TextLength, decoderWidth}, core.TextPositionEmbedding(cfg.TextLength, decoderWidth))
		x = g.op("Add", x, position)
		slots = append(slots, g.op("Add", x, b.param("decoder_text_type_embedding")))
		// Every pad position is masked as a key, hidden or not.
		_, decoderMask = b.keyMask(g.constInt64(textSlotStart), padding)
	}
	decoded := b.concatRows(slots)
	decoded = b.transformer(decoded, "decoder", cfg.DecoderDepth, decoderWidth, cfg.DecoderNumHeads, decoderMask)

	// Heads: pixels for every image slot, token logits for every text slot.
	if spec.Image {
		numPatches, patchDim := cfg.NumPatches(), cfg.PatchDim()
		imageSlots := b.sliceRows(decoded, g.constInt64(imageSlotStart), g.constInt64(textSlotStart))
		pixels := b.dense(imageSlots, "decoder_image_output.Dense_0") // [batch, Np, p*p*C]
		visible := b.gatherRows(patches, imageKeep, patchDim)
		reconstructed := b.scatterRows(pixels, imageKeep, visible, patchDim)
		g.output(OutputPixelPred, pixels, dataTypeFloat, batch, fixed(numPatches), fixed(patchDim))
		g.output(OutputReconstructedPatches, reconstructed, dataTypeFloat, batch, fixed(numPatches), fixed(patchDim))
	}
	if spec.Text {
		textSlots := b.sliceRows(decoded, g.constInt64(textSlotStart), g.constInt64(textSlotStart+int64(cfg.TextLength)))
		logits := b.dense(textSlots, "decoder_text_output.Dense_0") // [batch, Nt, V]
		g.output(OutputTokenLogits, logits, dataTypeFloat, batch, fixed(cfg.TextLength), fixed(cfg.VocabSize))
	}
}
