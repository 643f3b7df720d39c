package core

import "fmt"

// Pooling selects how Embed turns the encoder's token outputs into one
// vector.
type Pooling int

const (
	// PoolCLS returns the CLS token's output, the representation the M3AE
	// paper evaluates.
	PoolCLS Pooling = iota
	// PoolMean returns the mean of the outputs of every image patch and
	// every non-pad text token, CLS excluded. The official code's global
	// pooling averages all non-CLS tokens, pads included. Leaving pads out
	// makes the result independent of how far the text is padded.
	PoolMean
)

// String returns the pooling's name: "cls" or "mean".
func (p Pooling) String() string {
	switch p {
	case PoolCLS:
		return "cls"
	case PoolMean:
		return "mean"
	default:
		return fmt.Sprintf("Pooling(%d)", int(p))
	}
}

// Embed returns the representation of in as a new [D] slice. The unmasked
// sequence [CLS, all patches, all text tokens], where either modality may
// be absent, runs through the encoder and its final LayerNorm. pool then
// picks the CLS output or the mean of the token outputs.
func (m *Model) Embed(in Inputs, pool Pooling) ([]float32, error) {
	return m.embed(in, pool, nil)
}

// embed runs Embed and, when weights is not nil, stores the encoder's
// attention probabilities in it, as encode describes.
func (m *Model) embed(in Inputs, pool Pooling, weights []float32) ([]float32, error) {
	if pool != PoolCLS && pool != PoolMean {
		return nil, fmt.Errorf("embed: %w: pooling %d is unknown: use PoolCLS or PoolMean", ErrInvalidInput, int(pool))
	}
	if err := m.checkInputs(in); err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	if pool == PoolMean && !in.hasImage() && !hasNonPad(in.Tokens) {
		return nil, fmt.Errorf("embed: %w: mean pooling needs an image patch or a non-pad text token, but the text contains only pad ids", ErrInvalidInput)
	}

	numTokens := m.encode(in, nil, nil, weights)
	width := m.cfg.EmbedDim
	out := make([]float32, width)
	if pool == PoolCLS {
		copy(out, m.s.x[:width])
		return out, nil
	}
	meanPool(out, m.s.x[:numTokens*width], m.s.keyPad[:numTokens], width)
	return out, nil
}

// meanPool sets dst[D] to the mean of rows 1.. of x[n, D] whose keyPad
// entry is false, summed in ascending row order. The caller guarantees at
// least one such row.
func meanPool(dst, x []float32, keyPad []bool, width int) {
	clear(dst)
	count := 0
	for i := 1; i < len(keyPad); i++ {
		if keyPad[i] {
			continue
		}
		addInPlace(dst, x[i*width:(i+1)*width])
		count++
	}
	n := float32(count)
	for d := range dst {
		dst[d] /= n
	}
}

func hasNonPad(tokens []int32) bool {
	for _, id := range tokens {
		if id != PadID {
			return true
		}
	}
	return false
}
