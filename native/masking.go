package native

import (
	"fmt"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// keepCount returns the number of positions out of length that a mask
// ratio keeps: int(length*(1-ratio)), rounded down as the official code and
// core.RandomMasks do.
func keepCount(length int, ratio float64) int {
	return int(float64(length) * (1 - ratio))
}

// maskIndices is the index form of a [L] mask that the graph takes.
type maskIndices struct {
	keep    []int32 // kept positions, ascending
	hidden  []int32 // hidden positions, ascending
	restore []int32 // [L]: the index in keep of each kept position, len(keep) for hidden ones
}

// indicesOf converts a mask (true = hidden) into its index form.
func indicesOf(hidden []bool) maskIndices {
	var idx maskIndices
	idx.restore = make([]int32, len(hidden))
	for pos, h := range hidden {
		if h {
			idx.hidden = append(idx.hidden, int32(pos))
		} else {
			idx.restore[pos] = int32(len(idx.keep))
			idx.keep = append(idx.keep, int32(pos))
		}
	}
	for _, pos := range idx.hidden {
		idx.restore[pos] = int32(len(idx.keep))
	}
	return idx
}

// checkMaskGroup returns an error unless every mask in group has length
// positions and the same number of kept positions, which one sub-batch
// needs because its tensors have static shapes.
func checkMaskGroup(group [][]bool, length int, what string) error {
	numKept := -1
	for i, hidden := range group {
		if len(hidden) != length {
			return fmt.Errorf("%w: %s mask %d has %d positions, want %d", core.ErrInvalidInput, what, i, len(hidden), length)
		}
		kept := len(hidden) - countTrue(hidden)
		if numKept >= 0 && kept != numKept {
			return fmt.Errorf("%w: %s masks keep %d and %d positions; every example of a batch must keep the same number",
				core.ErrInvalidInput, what, numKept, kept)
		}
		numKept = kept
	}
	if numKept == 0 {
		return fmt.Errorf("%w: %s masks keep no position; lower the mask ratio so at least one is kept", core.ErrInvalidInput, what)
	}
	return nil
}

func countTrue(values []bool) int {
	n := 0
	for _, v := range values {
		if v {
			n++
		}
	}
	return n
}

// isAllPad reports whether text contains no token other than the pad id 0.
func isAllPad(text []int32) bool {
	return !slices.ContainsFunc(text, func(id int32) bool { return id != 0 })
}
