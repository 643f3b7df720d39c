package core

import (
	"fmt"
	"math"
	"slices"
)

// Reconstruction is the output of one masked forward pass. Every slice is
// newly allocated and owned by the caller. Image fields are nil when the
// input had no image, text fields when it had no text.
type Reconstruction struct {
	// Masks are the masks used, one entry per position (true = hidden),
	// with a nil input mask expanded to all false.
	Masks Masks
	// Tokens is a copy of the input token ids [Nt].
	Tokens []int32
	// Encoded is the encoder output after its final LayerNorm [K, D]: CLS,
	// then the visible image patches in ascending position order, then the
	// visible text positions in ascending order, row k at k*D.
	Encoded []float32
	// NumEncoded is K, the number of rows of Encoded.
	NumEncoded int
	// PixelPred is the predicted normalized patch of every image slot
	// [Np, p*p*C], visible ones included, patch n at n*p*p*C.
	PixelPred []float32
	// Patches is the reconstructed image as patches [Np, p*p*C]: the input
	// patch where it was visible and PixelPred where it was hidden.
	Patches []float32
	// TokenLogits are the text head's logits of every text slot [Nt, V],
	// position t at t*V.
	TokenLogits []float32
	// VocabSize is V, the row length of TokenLogits.
	VocabSize int
}

// Reconstruct hides the masked positions of in, encodes the rest and
// decodes every position: the decoder predicts each image patch and the
// logits of each text position. A nil mask hides nothing, so Masks{} runs
// the unmasked model, and RandomMasks draws masks as the official code
// does. The mask of an absent modality is ignored.
func (m *Model) Reconstruct(in Inputs, masks Masks) (*Reconstruction, error) {
	if err := m.checkInputs(in); err != nil {
		return nil, fmt.Errorf("reconstruct: %w", err)
	}
	cfg := m.cfg
	r := &Reconstruction{VocabSize: cfg.VocabSize}
	if in.hasImage() {
		if err := checkMask("image", masks.Image, cfg.NumPatches()); err != nil {
			return nil, fmt.Errorf("reconstruct: %w", err)
		}
		r.Masks.Image = copyMask(masks.Image, cfg.NumPatches())
		r.PixelPred = make([]float32, cfg.NumPatches()*cfg.PatchDim())
		r.Patches = make([]float32, len(r.PixelPred))
	}
	if in.hasText() {
		if err := checkMask("text", masks.Text, cfg.TextLength); err != nil {
			return nil, fmt.Errorf("reconstruct: %w", err)
		}
		r.Masks.Text = copyMask(masks.Text, cfg.TextLength)
		r.Tokens = slices.Clone(in.Tokens)
		r.TokenLogits = make([]float32, cfg.TextLength*cfg.VocabSize)
	}

	// Encoder over CLS and the visible tokens: [K, D].
	r.NumEncoded = m.encode(in, r.Masks.Image, r.Masks.Text, nil)
	r.Encoded = make([]float32, r.NumEncoded*cfg.EmbedDim)
	copy(r.Encoded, m.s.x)

	// Decoder over every slot, then the pixel and token heads.
	m.decode(in, r.Masks.Image, r.Masks.Text, r.Encoded, r.PixelPred, r.TokenLogits)

	// Reconstructed image: visible input patches, predicted hidden ones.
	if in.hasImage() {
		patchDim := cfg.PatchDim()
		for n, hidden := range r.Masks.Image {
			src := in.Patches
			if hidden {
				src = r.PixelPred
			}
			copy(r.Patches[n*patchDim:(n+1)*patchDim], src[n*patchDim:(n+1)*patchDim])
		}
	}
	return r, nil
}

// copyMask returns a copy of mask, or length false entries for nil.
func copyMask(mask []bool, length int) []bool {
	out := make([]bool, length)
	copy(out, mask)
	return out
}

// TokenCandidate is one entry of a text position's predicted distribution.
type TokenCandidate struct {
	ID   int32
	Prob float32
}

// TopK returns the k most probable ids of one row of logits, most probable
// first, with softmax probabilities over the whole row. Equal logits are
// ordered by lower id. NaN logits are skipped and count as probability 0.
// When the largest logit is infinite, the logits equal to it share the
// probability equally, the limit of the softmax. k is capped at
// len(logits), and k <= 0 returns nil.
func TopK(logits []float32, k int) []TokenCandidate {
	k = min(k, len(logits))
	if k <= 0 {
		return nil
	}

	// Insertion into a sorted list of the best k so far: O(V*k), which beats
	// a full sort for the few candidates a caller shows.
	top := make([]TokenCandidate, 0, k)
	for id, logit := range logits {
		if logit != logit || (len(top) == k && !(logit > top[k-1].Prob)) {
			continue // NaN, or no better than the k-th best
		}
		pos := len(top)
		for pos > 0 && logit > top[pos-1].Prob {
			pos--
		}
		if len(top) < k {
			top = append(top, TokenCandidate{})
		}
		copy(top[pos+1:], top[pos:len(top)-1])
		top[pos] = TokenCandidate{ID: int32(id), Prob: logit} // Prob holds the logit until below
	}
	if len(top) == 0 {
		return nil // every logit is NaN
	}

	// Softmax over the whole row, summed in id order.
	maxLogit := top[0].Prob
	var sum float32
	for _, logit := range logits {
		sum += softmaxWeight(logit, maxLogit)
	}
	for i := range top {
		top[i].Prob = softmaxWeight(top[i].Prob, maxLogit) / sum
	}
	return top
}

// softmaxWeight returns the unnormalized softmax weight of logit in a row
// whose largest non-NaN logit is maxLogit: exp(logit - maxLogit), 0 for
// NaN, and 1 or 0 when maxLogit is infinite, where the subtraction would
// give NaN.
func softmaxWeight(logit, maxLogit float32) float32 {
	switch {
	case logit != logit:
		return 0
	case math.IsInf(float64(maxLogit), 0):
		if logit == maxLogit {
			return 1
		}
		return 0
	}
	return exp32(logit - maxLogit)
}

// TokenPrediction lists the top candidates of one hidden text position.
type TokenPrediction struct {
	// Position is the text position t in [0, Nt).
	Position int
	// Original is the input id at that position.
	Original int32
	// Candidates are TopK of the position's logits.
	Candidates []TokenCandidate
}

// HiddenTokenTopK returns the top k candidates of every hidden non-pad
// text position, in ascending position order. It returns nil when the
// input had no text.
func (r *Reconstruction) HiddenTokenTopK(k int) []TokenPrediction {
	var out []TokenPrediction
	for t, hidden := range r.Masks.Text {
		if !hidden || r.Tokens[t] == PadID {
			continue
		}
		out = append(out, TokenPrediction{
			Position:   t,
			Original:   r.Tokens[t],
			Candidates: TopK(r.TokenLogits[t*r.VocabSize:(t+1)*r.VocabSize], k),
		})
	}
	return out
}
