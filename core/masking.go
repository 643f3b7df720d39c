package core

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Masks selects the positions hidden from the encoder. In both slices true
// means hidden, so the position is left out of the encoder's input and the
// decoder reconstructs it.
type Masks struct {
	// Image has one entry per image patch [Np], row-major over the grid.
	Image []bool
	// Text has one entry per text position [Nt], pads included.
	Text []bool
}

// maskStream is the PCG stream of RandomMasks, the bytes of "m3ae".
const maskStream = 0x6d336165

// DefaultMaskRatio is the fraction of image patches and of text positions
// that the official M3AE code hides by default.
const DefaultMaskRatio = 0.75

// RandomMasks draws one example's masks, hiding image patches and text
// positions independently, as the official random_masking does:
//
//  1. rng := rand.New(rand.NewPCG(seed, 0x6d336165)).
//  2. Draw noise: one rng.Float64() per image position 0..Np-1, then one per
//     text position 0..Nt-1. Both are drawn whatever the ratios, so the text
//     mask does not depend on imageRatio.
//  3. For each modality, keep = int(L * (1.0 - ratio)) in float64, as
//     Python computes it, with L = Np or Nt.
//  4. Sort the positions by noise, ascending and stable (idsShuffle). The
//     first keep positions of that order stay visible and the rest are
//     hidden.
//
// Text masking covers all Nt positions, pads included, as in the official
// code. Ratios must be in [0, 1].
func RandomMasks(cfg Config, imageRatio, textRatio float64, seed uint64) (Masks, error) {
	if err := cfg.Validate(); err != nil {
		return Masks{}, err
	}
	if err := checkMaskRatio("image", imageRatio); err != nil {
		return Masks{}, err
	}
	if err := checkMaskRatio("text", textRatio); err != nil {
		return Masks{}, err
	}

	rng := rand.New(rand.NewPCG(seed, maskStream))
	imageNoise := make([]float64, cfg.NumPatches())
	for i := range imageNoise {
		imageNoise[i] = rng.Float64()
	}
	textNoise := make([]float64, cfg.TextLength)
	for i := range textNoise {
		textNoise[i] = rng.Float64()
	}

	return Masks{
		Image: randomMasking(imageNoise, keepLength(len(imageNoise), imageRatio)),
		Text:  randomMasking(textNoise, keepLength(len(textNoise), textRatio)),
	}, nil
}

func checkMaskRatio(modality string, ratio float64) error {
	if !(ratio >= 0 && ratio <= 1) {
		return fmt.Errorf("%w: %s mask ratio %v is outside [0, 1]: pass the fraction of positions to hide, such as %v",
			ErrInvalidInput, modality, ratio, DefaultMaskRatio)
	}
	return nil
}

// keepLength returns int(length * (1.0 - ratio)), the number of positions
// that stay visible. Go's conversion truncates toward zero, as Python's int
// does.
func keepLength(length int, ratio float64) int {
	return int(float64(length) * (1.0 - ratio))
}

// randomMasking returns the mask that keeps the keep positions with the
// smallest noise, ties going to the lower position.
func randomMasking(noise []float64, keep int) []bool {
	idsShuffle := make([]int, len(noise))
	for i := range idsShuffle {
		idsShuffle[i] = i
	}
	slices.SortStableFunc(idsShuffle, func(a, b int) int {
		return cmp.Compare(noise[a], noise[b])
	})

	hidden := make([]bool, len(noise))
	for rank, position := range idsShuffle {
		hidden[position] = rank >= keep
	}
	return hidden
}

// countVisible returns the number of false entries of hidden, or length
// when hidden is nil (nothing hidden).
func countVisible(hidden []bool, length int) int {
	if hidden == nil {
		return length
	}
	n := 0
	for _, h := range hidden {
		if !h {
			n++
		}
	}
	return n
}

// checkMask reports a mask whose length does not fit its modality. A nil
// mask hides nothing and always fits.
func checkMask(modality string, mask []bool, length int) error {
	if mask != nil && len(mask) != length {
		return fmt.Errorf("%w: %s mask has %d entries, want %d (one per position, true = hidden) or nil to hide nothing",
			ErrInvalidInput, modality, len(mask), length)
	}
	return nil
}
