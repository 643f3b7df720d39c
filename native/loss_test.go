package native

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// The scored rows and textLossSum against the official formula written out
// per example: -sum_j valid*log p / max(sum_j valid, 1e-5), where valid marks
// hidden non-pad tokens. Example 2 hides only pads and contributes 0.
func TestTextLossMatchesOfficialFormula(t *testing.T) {
	const length, vocab = 4, 5
	texts := [][]int32{{1, 2, 3, 0}, {4, 0, 0, 0}, {2, 3, 0, 0}}
	masks := [][]bool{{true, false, true, true}, {true, true, false, true}, {false, false, true, true}}
	rng := rand.New(rand.NewPCG(12, 0))
	logits := make([]float64, len(texts)*length*vocab)
	for i := range logits {
		logits[i] = 3 * (2*rng.Float64() - 1)
	}

	want := 0.0
	for b, text := range texts {
		var sum, count float64
		for pos, hidden := range masks[b] {
			if !hidden || text[pos] == 0 {
				continue
			}
			row := logits[(b*length+pos)*vocab : (b*length+pos+1)*vocab]
			var z float64
			for _, v := range row {
				z += math.Exp(v)
			}
			sum += row[text[pos]] - math.Log(z)
			count++
		}
		want += -sum / math.Max(count, 1e-5)
	}

	rows := packScoredRows(texts, masks)
	if got := rows[0].Shape().Dim(0); got != 3 {
		t.Errorf("packScoredRows(3 scored tokens, batch 3) has %d rows, want 3", got)
	}
	got := tensors.ToScalar[float64](MustExecOnce(testBackend(t), func(all, example, position, target, weight *Node) *Node {
		flat := Reshape(all, len(texts)*length, vocab)
		index := Add(MulScalar(example, length), position)
		return textLossSum(Gather(flat, ExpandAxes(index, -1)), target, ConvertDType(weight, all.DType()))
	}, tensors.FromFlatDataAndDimensions(logits, len(texts), length, vocab), rows[0], rows[1], rows[2], rows[3]))
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("textLossSum(scored rows) = %.9g, want %.9g", got, want)
	}
}

func TestScoredRowsPadToBatchMultiple(t *testing.T) {
	texts := [][]int32{{5, 6, 7, 8}, {9, 9, 0, 0}}
	masks := [][]bool{{true, true, true, false}, {true, false, true, true}}
	rows := packScoredRows(texts, masks) // 4 scored tokens: 3 + 1
	if got := rows[0].Shape().Dim(0); got != 4 {
		t.Fatalf("packScoredRows(4 scored tokens, batch 2) has %d rows, want 4", got)
	}
	weight := tensors.MustCopyFlatData[float32](rows[3])
	wantWeight := []float32{1.0 / 3, 1.0 / 3, 1.0 / 3, 1}
	for i := range wantWeight {
		if math.Abs(float64(weight[i]-wantWeight[i])) > 1e-7 {
			t.Errorf("packScoredRows weight[%d] = %g, want %g", i, weight[i], wantWeight[i])
		}
	}
	masks[0][0] = false // 3 scored tokens: padded to 4 with one zero-weight row
	rows = packScoredRows(texts, masks)
	weight = tensors.MustCopyFlatData[float32](rows[3])
	if len(weight) != 4 || weight[3] != 0 {
		t.Errorf("packScoredRows(3 scored tokens, batch 2) weights = %v, want 4 rows ending in 0", weight)
	}
}

func TestImageMSEFormula(t *testing.T) {
	// Example 0: patch errors 1 and 3 on 2 values each -> (1 + 9) / 2 = 5.
	// Example 1: all errors 2 -> 4.
	pred := []float32{1, 1, 3, 3, 2, 2, 2, 2}
	target := make([]float32, len(pred))
	got := tensors.MustCopyFlatData[float32](MustExecOnce(testBackend(t), imageMSE,
		tensors.FromFlatDataAndDimensions(pred, 2, 2, 2), tensors.FromFlatDataAndDimensions(target, 2, 2, 2)))
	if got[0] != 5 || got[1] != 4 {
		t.Errorf("imageMSE = %v, want [5 4]", got)
	}
}
