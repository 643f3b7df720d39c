package core

// decode runs the decoder on the encoder output encoded[K, D] (rows as
// encode orders them) and writes the heads' outputs: pixelPred[Np, p*p*C]
// when in has an image and tokenLogits[Nt, V] when it has text. A nil mask
// hides nothing, and the masks must be the ones encode was given.
//
// The decoder sequence is [CLS, Np image slots, Nt text slots], leaving out
// an absent modality. Visible slots receive their projected encoder token,
// hidden slots the learned mask embedding, which undoes the encoder's
// gather (the official code's idsRestore).
func (m *Model) decode(in Inputs, imageHidden, textHidden []bool, encoded []float32, pixelPred, tokenLogits []float32) {
	cfg, w, s := m.cfg, &m.w, &m.s
	width := cfg.DecoderEmbedDim
	numEncoded := len(encoded) / cfg.EmbedDim

	// Project every encoder row to the decoder width.
	projected := s.projected[:numEncoded*width] // [K, Dd]
	m.linear(projected, encoded, &w.decoderInput, numEncoded, cfg.EmbedDim, width)

	// CLS slot: the projected encoder CLS, with nothing added.
	copy(s.x[:width], projected[:width])
	s.keyPad[0] = false
	row := 1
	next := 1 // next unread row of projected

	// Image slots: projected token or image mask embedding, plus the 2-D
	// position and the decoder image type embeddings.
	imageStart := row
	if in.hasImage() {
		for n := range cfg.NumPatches() {
			slot := s.x[row*width : (row+1)*width]
			if imageHidden != nil && imageHidden[n] {
				copy(slot, w.imageMask)
			} else {
				copy(slot, projected[next*width:(next+1)*width])
				next++
			}
			addInPlace(slot, m.pos.decoderImage[n*width:(n+1)*width])
			addInPlace(slot, w.decoderImageType)
			s.keyPad[row] = false
			row++
		}
	} // s.x rows imageStart..: [Np, Dd]

	// Text slots: projected token or text mask embedding, plus the 1-D
	// position and the decoder text type embeddings. Every pad position is
	// masked as a key, hidden or not, as in the official code.
	textStart := row
	if in.hasText() {
		for t, id := range in.Tokens {
			slot := s.x[row*width : (row+1)*width]
			if textHidden != nil && textHidden[t] {
				copy(slot, w.textMask)
			} else {
				copy(slot, projected[next*width:(next+1)*width])
				next++
			}
			addInPlace(slot, m.pos.decoderText[t*width:(t+1)*width])
			addInPlace(slot, w.decoderTextType)
			s.keyPad[row] = id == PadID
			row++
		}
	} // s.x rows textStart..: [Nt, Dd]

	// Transformer blocks and the final LayerNorm over [1+Np+Nt, Dd].
	m.runTransformer(&w.decoder, row, nil)

	// Heads: pixels for every image slot, token logits for every text slot.
	if in.hasImage() {
		imageSlots := s.x[imageStart*width : textStart*width] // [Np, Dd]
		m.linear(pixelPred, imageSlots, &w.imageOutput, cfg.NumPatches(), width, cfg.PatchDim())
	}
	if in.hasText() {
		textSlots := s.x[textStart*width : row*width] // [Nt, Dd]
		m.linear(tokenLogits, textSlots, &w.textOutput, cfg.TextLength, width, cfg.VocabSize)
	}
}
