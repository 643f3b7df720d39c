package core

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// maxReconstructAllocs is the number of slices Reconstruct returns for an
// image-text input (two masks, tokens, encoded, pixels, patches, logits)
// plus the Reconstruction itself.
const maxReconstructAllocs = 8

func TestForwardAllocations(t *testing.T) {
	deeper := microConfig(t)
	deeper.Depth, deeper.DecoderDepth = 3, 2
	for _, cfg := range []Config{microConfig(t), deeper} {
		m := newTestModel(t, cfg, 1)
		c := oracleCases(t, cfg, 1)[0]
		embedAllocs := testing.AllocsPerRun(5, func() {
			if _, err := m.Embed(c.in, PoolMean); err != nil {
				t.Fatal(err)
			}
		})
		if embedAllocs != 1 {
			t.Errorf("Embed(depth %d) allocations = %v, want 1 (the result)", cfg.Depth, embedAllocs)
		}
		reconstructAllocs := testing.AllocsPerRun(5, func() {
			if _, err := m.Reconstruct(c.in, c.masks); err != nil {
				t.Fatal(err)
			}
		})
		if reconstructAllocs > maxReconstructAllocs {
			t.Errorf("Reconstruct(depth %d) allocations = %v, want at most %d (the outputs)", cfg.Depth, reconstructAllocs, maxReconstructAllocs)
		}
	}
}

func TestReconstructPatches(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	c := oracleCases(t, cfg, 1)[0]
	r, err := m.Reconstruct(c.in, c.masks)
	if err != nil {
		t.Fatal(err)
	}
	patchDim := cfg.PatchDim()
	for n, hidden := range c.masks.Image {
		want := c.in.Patches[n*patchDim : (n+1)*patchDim]
		if hidden {
			want = r.PixelPred[n*patchDim : (n+1)*patchDim]
		}
		if !slices.Equal(r.Patches[n*patchDim:(n+1)*patchDim], want) {
			t.Errorf("Reconstruct().Patches[patch %d] (hidden %v) differs from its source", n, hidden)
		}
	}
	wantRows := 1 + countVisible(c.masks.Image, cfg.NumPatches()) + countVisible(c.masks.Text, cfg.TextLength)
	if r.NumEncoded != wantRows || len(r.Encoded) != wantRows*cfg.EmbedDim {
		t.Errorf("Reconstruct() NumEncoded, len(Encoded) = %d, %d, want %d, %d",
			r.NumEncoded, len(r.Encoded), wantRows, wantRows*cfg.EmbedDim)
	}
}

// A pad is masked as a key in the encoder and the decoder, so whether it
// is hidden or visible must not change any other token's output bits.
func TestReconstructPadHiddenOrVisible(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	c := oracleCases(t, cfg, 1)[0] // the last 5 text positions are pads
	pad := cfg.TextLength - 1
	if c.in.Tokens[pad] != PadID {
		t.Fatalf("case %s has id %d at position %d, want a pad", c.name, c.in.Tokens[pad], pad)
	}
	visible := Masks{Image: c.masks.Image, Text: slices.Clone(c.masks.Text)}
	visible.Text[pad] = false
	hidden := Masks{Image: c.masks.Image, Text: slices.Clone(c.masks.Text)}
	hidden.Text[pad] = true

	a, err := m.Reconstruct(c.in, visible)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Reconstruct(c.in, hidden)
	if err != nil {
		t.Fatal(err)
	}
	width := cfg.EmbedDim
	if a.NumEncoded != b.NumEncoded+1 {
		t.Fatalf("NumEncoded = %d with the pad visible, %d hidden, want a difference of 1", a.NumEncoded, b.NumEncoded)
	}
	// The visible pad is the last encoder row, so the other rows line up.
	if !slices.Equal(a.Encoded[:b.NumEncoded*width], b.Encoded) {
		t.Errorf("Encoded rows other than the pad's differ when the pad is hidden")
	}
	if !slices.Equal(a.PixelPred, b.PixelPred) {
		t.Errorf("PixelPred differs when a pad is hidden")
	}
	for pos, id := range c.in.Tokens {
		if id == PadID {
			continue
		}
		row := a.TokenLogits[pos*cfg.VocabSize : (pos+1)*cfg.VocabSize]
		if !slices.Equal(row, b.TokenLogits[pos*cfg.VocabSize:(pos+1)*cfg.VocabSize]) {
			t.Errorf("TokenLogits[position %d] differs when a pad is hidden", pos)
		}
	}
}

func TestReconstructMasks(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	cases := oracleCases(t, cfg, 1)
	imageText, textOnly := cases[0], cases[2]

	// Wrong lengths are rejected.
	bad := []Masks{
		{Image: make([]bool, 3), Text: imageText.masks.Text},
		{Image: imageText.masks.Image, Text: make([]bool, cfg.TextLength+1)},
	}
	for i, masks := range bad {
		if _, err := m.Reconstruct(imageText.in, masks); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Reconstruct(bad masks %d) error = %v, want ErrInvalidInput", i, err)
		}
	}

	// The absent modality's mask is ignored.
	r, err := m.Reconstruct(textOnly.in, Masks{Image: make([]bool, 3), Text: textOnly.masks.Text})
	if err != nil {
		t.Fatalf("Reconstruct(text only, 3-entry image mask) error = %v, want nil", err)
	}
	if r.Masks.Image != nil || r.PixelPred != nil || r.Patches != nil {
		t.Errorf("Reconstruct(text only) has image outputs, want nil")
	}

	// Returned masks are copies, and nil masks come back all false.
	r, err = m.Reconstruct(imageText.in, Masks{Text: imageText.masks.Text})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Masks.Image) != cfg.NumPatches() || slices.Contains(r.Masks.Image, true) {
		t.Errorf("Reconstruct(nil image mask).Masks.Image = %v, want %d false entries", r.Masks.Image, cfg.NumPatches())
	}
	r.Masks.Text[0] = !r.Masks.Text[0]
	if r.Masks.Text[0] == imageText.masks.Text[0] {
		t.Errorf("Reconstruct().Masks.Text shares memory with the caller's mask")
	}
}

func TestTopK(t *testing.T) {
	logits := []float32{1, 3, 3, -2, 0.5, 3}
	softmax := func(id int) float32 {
		sum := 0.0
		for _, l := range logits {
			sum += math.Exp(float64(l - 3))
		}
		return float32(math.Exp(float64(logits[id]-3)) / sum)
	}
	tests := []struct {
		k       int
		wantIDs []int32
	}{
		{0, nil},
		{-1, nil},
		{1, []int32{1}},
		{3, []int32{1, 2, 5}}, // equal logits by lower id
		{4, []int32{1, 2, 5, 0}},
		{10, []int32{1, 2, 5, 0, 4, 3}},
	}
	for _, tc := range tests {
		got := TopK(logits, tc.k)
		var ids []int32
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, tc.wantIDs) {
			t.Errorf("TopK(logits, %d) ids = %v, want %v", tc.k, ids, tc.wantIDs)
			continue
		}
		for _, c := range got {
			if want := softmax(int(c.ID)); math.Abs(float64(c.Prob-want)) > softmaxTolerance {
				t.Errorf("TopK(logits, %d) prob of %d = %v, want %v", tc.k, c.ID, c.Prob, want)
			}
		}
	}
}

func TestHiddenTokenTopK(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	c := oracleCases(t, cfg, 1)[0]
	r, err := m.Reconstruct(c.in, c.masks)
	if err != nil {
		t.Fatal(err)
	}
	var wantPositions []int
	for pos, hidden := range c.masks.Text {
		if hidden && c.in.Tokens[pos] != PadID {
			wantPositions = append(wantPositions, pos)
		}
	}
	predictions := r.HiddenTokenTopK(3)
	var positions []int
	for _, p := range predictions {
		positions = append(positions, p.Position)
		if p.Original != c.in.Tokens[p.Position] || len(p.Candidates) != 3 {
			t.Errorf("HiddenTokenTopK(3)[position %d] = original %d, %d candidates, want %d, 3",
				p.Position, p.Original, len(p.Candidates), c.in.Tokens[p.Position])
		}
	}
	if !slices.Equal(positions, wantPositions) {
		t.Errorf("HiddenTokenTopK(3) positions = %v, want %v", positions, wantPositions)
	}

	imageOnly, err := m.Reconstruct(Inputs{Patches: c.in.Patches}, c.masks)
	if err != nil {
		t.Fatal(err)
	}
	if got := imageOnly.HiddenTokenTopK(3); got != nil {
		t.Errorf("HiddenTokenTopK(3) without text = %v, want nil", got)
	}
}
