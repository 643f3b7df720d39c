package core

// encode runs the encoder over CLS and the visible tokens of in, and
// leaves its output, after the final LayerNorm, in m.s.x[:K*D] with
// m.s.keyPad[:K] marking the rows that hold text pads. It returns K.
// weights, when not nil, receives the attention probabilities of every
// block, as runTransformer describes, and must hold Depth*H*K*K values.
//
// A nil mask hides nothing. The rows are CLS, then the visible image
// patches in ascending position order, then the visible text positions in
// ascending order. The official code feeds the kept tokens in random order.
// Both orders give the same outputs up to float rounding, because attention
// does not depend on the order of its keys, and ascending order keeps the
// result reproducible.
func (m *Model) encode(in Inputs, imageHidden, textHidden []bool, weights []float32) int {
	cfg, w, s := m.cfg, &m.w, &m.s
	width := cfg.EmbedDim
	patchDim := cfg.PatchDim()

	// CLS token, with no position or type embedding.
	copy(s.x[:width], w.clsToken)
	s.keyPad[0] = false
	row := 1

	// Image tokens: gather the visible patches, embed them, then add the
	// 2-D position and the image type embeddings.
	if in.hasImage() {
		numKept := 0
		for n := range cfg.NumPatches() {
			if imageHidden != nil && imageHidden[n] {
				continue
			}
			copy(s.patches[numKept*patchDim:(numKept+1)*patchDim], in.Patches[n*patchDim:(n+1)*patchDim])
			numKept++
		} // s.patches: [Ki, p*p*C]

		imageRows := s.x[row*width : (row+numKept)*width] // [Ki, D]
		m.linear(imageRows, s.patches, &w.imageEmbedding, numKept, patchDim, width)

		rank := 0 // index of patch n among the visible patches
		for n := range cfg.NumPatches() {
			if imageHidden != nil && imageHidden[n] {
				continue
			}
			token := s.x[(row+rank)*width : (row+rank+1)*width]
			addInPlace(token, m.pos.encoderImage[n*width:(n+1)*width])
			addInPlace(token, w.encoderImageType)
			s.keyPad[row+rank] = false
			rank++
		}
		row += numKept
	}

	// Text tokens: embedding row of each visible id, plus the 1-D position
	// and the text type embeddings. Visible pads stay in the sequence and
	// are masked as attention keys.
	if in.hasText() {
		for t, id := range in.Tokens {
			if textHidden != nil && textHidden[t] {
				continue
			}
			token := s.x[row*width : (row+1)*width]
			w.textEmbedding.lookup(token, int(id))
			addInPlace(token, m.pos.encoderText[t*width:(t+1)*width])
			addInPlace(token, w.encoderTextType)
			s.keyPad[row] = id == PadID
			row++
		}
	}

	// Transformer blocks and the final LayerNorm over [K, D].
	m.runTransformer(&w.encoder, row, weights)
	return row
}

// runTransformer applies t's blocks and final LayerNorm to the first n rows
// of m.s.x, of width t.width, in place. m.s.keyPad[:n] marks the rows that
// are masked as attention keys. weights, when not nil, receives the
// attention probabilities [blocks, H, n, n], element (b, h, i, j) at
// ((b*H+h)*n+i)*n + j: how much query row i of block b attends to key row j
// in head h.
func (m *Model) runTransformer(t *transformer, n int, weights []float32) {
	s := &m.s
	width := t.width
	x := s.x[:n*width]              // [n, width]
	normed := s.normed[:n*width]    // [n, width]
	qkv := s.qkv[:n*3*width]        // [n, 3*width]
	heads := s.heads[:n*width]      // [n, width]
	hidden := s.hidden[:n*t.hidden] // [n, MLPRatio*width]
	headDim := width / t.numHeads

	for i := range t.blocks {
		b := &t.blocks[i]

		// Attention sublayer: x += proj(attention(qkv(LayerNorm_0(x)))).
		layerNorm(normed, x, b.norm0.scale, b.norm0.bias, n, width)
		m.linear(qkv, normed, &b.qkv, n, width, 3*width)
		var blockWeights []float32 // [H, n, n]
		if weights != nil {
			size := t.numHeads * n * n
			blockWeights = weights[i*size : (i+1)*size]
		}
		attention(heads, qkv, s.probs, s.keyPad, n, t.numHeads, headDim, blockWeights)
		m.linear(normed, heads, &b.proj, n, width, width)
		addInPlace(x, normed)

		// MLP sublayer: x += fc2(gelu(fc1(LayerNorm_1(x)))).
		layerNorm(normed, x, b.norm1.scale, b.norm1.bias, n, width)
		m.linear(hidden, normed, &b.fc1, n, width, t.hidden)
		geluInPlace(hidden)
		m.linear(normed, hidden, &b.fc2, n, t.hidden, width)
		addInPlace(x, normed)
	}

	layerNorm(x, x, t.norm.scale, t.norm.bias, n, width)
}
