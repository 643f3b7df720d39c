package native

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
)

// imageMSE returns the per-example image loss [B] of predictions and targets
// [B, Nm, P] over the hidden patches:
//
//	loss_b = 1/Nm * sum_j ( 1/P * sum_v (pred[b,j,v] - target[b,j,v])^2 )
//
// the mean over patch values, then over the example's hidden patches. The
// targets are the dataset-normalized pixels, with no per-patch
// normalization.
func imageMSE(pred, target *Node) *Node {
	perPatch := ReduceMean(Square(Sub(pred, target)), -1) // [B, Nm]
	return ReduceMean(perPatch, -1)
}

// textLossSum returns the weighted text cross-entropy of logits [R, V]
// against token ids targets [R], summed over the rows:
//
//	sum_r weight[r] * -log softmax(logits[r])[targets[r]]
//
// With the rows and weights of packScoredRows this is the sum over the
// examples of the official per-example loss
//
//	loss_b = - sum_j valid[b,j] * log p(text[b,j]) / max(sum_j valid[b,j], 1e-5)
//
// where valid marks the hidden non-pad tokens of example b. An example
// without such a token has no rows and contributes 0, as 0/1e-5 does in the
// official code.
func textLossSum(logits, targets, weight *Node) *Node {
	numRows := logits.Shape().Dim(0)

	// log softmax(z)[t] = z[t] - max(z) - log(sum(exp(z - max(z)))).
	shift := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
	shifted := Sub(logits, shift)                            // [R, V]
	logSumExp := Log(ReduceSum(expNonPositive(shifted), -1)) // [R]
	rows := Iota(logits.Graph(), shapes.Make(dtypes.Int32, numRows), 0)
	picked := Gather(shifted, Stack([]*Node{rows, ConvertDType(targets, dtypes.Int32)}, -1)) // [R]
	logProb := Sub(picked, logSumExp)
	return Neg(ReduceAllSum(Mul(logProb, weight)))
}
