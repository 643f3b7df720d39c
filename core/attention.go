package core

import (
	"fmt"
	"image"
)

// TokenKind is the kind of input at one row of the encoder's sequence.
type TokenKind uint8

const (
	// TokenCLS is the learned CLS token, always row 0.
	TokenCLS TokenKind = iota
	// TokenPatch is an image patch.
	TokenPatch
	// TokenText is a text position, a WordPiece token or a pad.
	TokenText
)

// String returns "cls", "patch" or "text".
func (k TokenKind) String() string {
	switch k {
	case TokenCLS:
		return "cls"
	case TokenPatch:
		return "patch"
	case TokenText:
		return "text"
	default:
		return fmt.Sprintf("TokenKind(%d)", int(k))
	}
}

// EncoderToken is the input position of one encoder row.
type EncoderToken struct {
	Kind TokenKind
	// Position is the patch index n in [0, Np), row-major over the patch
	// grid, or the text position t in [0, Nt). It is 0 for CLS.
	Position int
	// Pad is true for a text pad, which is masked as an attention key.
	Pad bool
}

// Attention contains the encoder's attention probabilities of one forward
// pass over K rows. Matrices are [K, K], row i the query and column j the
// key, so row i of a probability matrix sums to 1 and every pad column
// is exactly 0.
type Attention struct {
	// Depth is the number of encoder blocks and NumHeads their heads.
	Depth, NumHeads int
	// NumPatches is the model's Np and TextLength its Nt, the lengths of
	// the slices that ByPosition returns.
	NumPatches, TextLength int
	// Tokens are the input positions of the K rows: CLS, the image patches
	// in ascending order, then the text positions in ascending order.
	Tokens []EncoderToken
	// Weights are the softmax probabilities [Depth, H, K, K], element
	// (l, h, i, j) at ((l*H+h)*K+i)*K + j: how much query i attends to key
	// j in head h of block l. They are the values the encoder used, bit for
	// bit.
	Weights []float32
}

// NumTokens returns K, the number of encoder rows.
func (a *Attention) NumTokens() int { return len(a.Tokens) }

// Row returns the probabilities [K] of query row query in head head of
// block layer. The slice aliases Weights.
func (a *Attention) Row(layer, head, query int) []float32 {
	k := a.NumTokens()
	a.checkLayer(layer)
	if head < 0 || head >= a.NumHeads || query < 0 || query >= k {
		panic(fmt.Sprintf("core.Attention.Row: head %d, query %d out of range [0, %d), [0, %d)", head, query, a.NumHeads, k))
	}
	start := ((layer*a.NumHeads+head)*k + query) * k
	return a.Weights[start : start+k]
}

// HeadMean returns the mean over the heads of block layer's probabilities
// as a new [K, K] matrix, summed in ascending head order.
func (a *Attention) HeadMean(layer int) []float32 {
	a.checkLayer(layer)
	k := a.NumTokens()
	size := k * k
	out := make([]float32, size)
	block := a.Weights[layer*a.NumHeads*size : (layer+1)*a.NumHeads*size]
	for h := range a.NumHeads {
		addInPlace(out, block[h*size:(h+1)*size])
	}
	heads := float32(a.NumHeads)
	for i := range out {
		out[i] /= heads
	}
	return out
}

// Rollout returns the attention rollout of Abnar and Zuidema 2020
// ("Quantifying Attention Flow in Transformers") as a new [K, K] matrix:
// how much each top-level row draws on each input token through every
// block. Each block's probabilities are averaged over the heads, the
// identity is added for the residual connection, and each row is divided
// by its sum. The rollout is the product Ã_{Depth-1} ··· Ã_1 Ã_0 of these
// matrices, so its rows sum to 1. A pad column is exactly 0 in every row
// but the pad's own, which keeps the identity terms. Row 0 is what CLS
// draws from each token.
func (a *Attention) Rollout() []float32 {
	k := a.NumTokens()
	rollout := a.residualMean(0)
	product := make([]float32, k*k)
	for layer := 1; layer < a.Depth; layer++ {
		step := a.residualMean(layer)
		// product = step · rollout, each sum over m in ascending order.
		for i := range k {
			stepRow := step[i*k : (i+1)*k]
			out := product[i*k : (i+1)*k]
			clear(out)
			for m, s := range stepRow {
				source := rollout[m*k : (m+1)*k]
				source = source[:len(out)]
				for j, r := range source {
					out[j] += float32(s * r)
				}
			}
		}
		rollout, product = product, rollout
	}
	return rollout
}

// residualMean returns Ã for block layer: the head mean plus the identity,
// with each row divided by its sum.
func (a *Attention) residualMean(layer int) []float32 {
	k := a.NumTokens()
	out := a.HeadMean(layer)
	for i := range k {
		row := out[i*k : (i+1)*k]
		row[i]++
		var sum float32
		for _, v := range row {
			sum += v
		}
		for j := range row {
			row[j] /= sum
		}
	}
	return out
}

// ByPosition spreads a row [K] of weights over the input positions: the
// CLS token's weight, the weight of each patch [Np] and of each text
// position [Nt]. patches is nil when no row is a patch and text is nil
// when no row is a text position. A position without a row gets 0.
func (a *Attention) ByPosition(row []float32) (cls float32, patches, text []float32) {
	if len(row) != a.NumTokens() {
		panic(fmt.Sprintf("core.Attention.ByPosition: row has %d values, want K = %d", len(row), a.NumTokens()))
	}
	for k, token := range a.Tokens {
		switch token.Kind {
		case TokenCLS:
			cls = row[k]
		case TokenPatch:
			if patches == nil {
				patches = make([]float32, a.NumPatches)
			}
			patches[token.Position] = row[k]
		case TokenText:
			if text == nil {
				text = make([]float32, a.TextLength)
			}
			text[token.Position] = row[k]
		}
	}
	return cls, patches, text
}

func (a *Attention) checkLayer(layer int) {
	if layer < 0 || layer >= a.Depth {
		panic(fmt.Sprintf("core.Attention: layer %d out of range [0, %d)", layer, a.Depth))
	}
}

// EmbedWithAttention returns Embed's representation of in, with the same
// bits, and the encoder's attention probabilities of that pass. The
// probabilities take Depth*H*K*K float32 values, about 0.6 MB for the
// mini preset with an image and a caption, so Embed leaves them out.
func (m *Model) EmbedWithAttention(in Inputs, pool Pooling) ([]float32, *Attention, error) {
	if err := m.checkInputs(in); err != nil {
		return nil, nil, fmt.Errorf("embed: %w", err)
	}
	cfg := m.cfg
	tokens := make([]EncoderToken, 0, cfg.SeqLen())
	tokens = append(tokens, EncoderToken{Kind: TokenCLS})
	if in.hasImage() {
		for n := range cfg.NumPatches() {
			tokens = append(tokens, EncoderToken{Kind: TokenPatch, Position: n})
		}
	}
	if in.hasText() {
		for t, id := range in.Tokens {
			tokens = append(tokens, EncoderToken{Kind: TokenText, Position: t, Pad: id == PadID})
		}
	}
	numTokens := uint64(len(tokens))
	values := uint64(cfg.Depth) * uint64(cfg.NumHeads) * numTokens * numTokens
	if 4*values > maxBufferBytes {
		return nil, nil, fmt.Errorf("embed: %w: the attention probabilities of %d blocks, %d heads and %d tokens take %d bytes, over the limit of %d: use Embed",
			ErrInvalidInput, cfg.Depth, cfg.NumHeads, numTokens, 4*values, maxBufferBytes)
	}

	a := &Attention{
		Depth:      cfg.Depth,
		NumHeads:   cfg.NumHeads,
		NumPatches: cfg.NumPatches(),
		TextLength: cfg.TextLength,
		Tokens:     tokens,
		Weights:    make([]float32, values),
	}
	embedding, err := m.embed(in, pool, a.Weights)
	if err != nil {
		return nil, nil, err
	}
	return embedding, a, nil
}

// PipelineAttention is the result of Pipeline.EmbedWithAttention.
type PipelineAttention struct {
	// Embedding is the pooled encoder output, the same bits as Embed's.
	Embedding []float32
	Attention *Attention
	// Image is the preprocessed input that the encoder saw, ImageSize
	// pixels square: resized, cropped and composited. It is nil without an
	// image.
	Image *image.RGBA
	// Tokens are the caption's WordPiece tokens, Tokens[t] at text
	// position t. Pads follow the tokens and are left out. It is nil
	// without text.
	Tokens []string
}

// EmbedWithAttention embeds an image, a caption or both as Embed does and
// returns the encoder's attention probabilities with the inputs as the
// encoder saw them.
func (p *Pipeline) EmbedWithAttention(img image.Image, text string, pool Pooling) (*PipelineAttention, error) {
	in, err := p.Inputs(img, text)
	if err != nil {
		return nil, err
	}
	embedding, attention, err := p.model.EmbedWithAttention(in, pool)
	if err != nil {
		return nil, err
	}
	out := &PipelineAttention{Embedding: embedding, Attention: attention}
	if in.hasImage() {
		out.Image = DenormalizeImage(p.pixels, p.Config().ImageSize, p.norm)
	}
	for _, id := range in.Tokens {
		if id == PadID {
			break
		}
		out.Tokens = append(out.Tokens, p.tokenizer.Token(id))
	}
	return out, nil
}
