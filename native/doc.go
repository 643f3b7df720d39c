// Package native trains M3AE models with GoMLX: the model as a GoMLX graph
// that mirrors package core, the losses, an AdamW optimizer with M3AE's
// weight-decay mask, the training step and its checkpoints.
//
// Shapes use core's vocabulary ([B, L, D], Np, Nt, K, Dd, p, V).
//
// # Variables
//
// Every model parameter is a GoMLX variable whose path is the core.ParamSpec
// name with "." replaced by "/": encoder.Block_0.LayerNorm_0.scale lives at
// /encoder/Block_0/LayerNorm_0/scale. Dense kernels keep the [in, out] layout,
// so export copies tensors by name. Training state lives beside the model:
// the step counter at /global_step (GoMLX's convention, read by its checkpoint
// package) and the AdamW moments under /optimizers.
//
// # Masks
//
// Masks are drawn per example on the host from a seeded math/rand/v2
// generator and enter the graph as index tensors, never as random ops in the
// graph. For each example the host keeps int(Np*(1-imageMaskRatio)) patches
// and int(Nt*(1-textMaskRatio)) text positions, lists the kept positions in
// ascending order (the order core's encoder uses) and builds a restore index
// that gives the decoder the slot of each kept token. Every other slot takes
// the learned mask embedding. Hidden means masked: the position is removed
// from the encoder's input and reconstructed by the decoder.
//
// # Mixed batches
//
// A batch may mix paired examples (image and caption), image-only examples
// (no caption, or a caption of pads only) and text-only examples (no image).
// One training step splits the batch into up to three sub-batches by kind and
// runs each through the same encoder and decoder with only the token groups
// the kind has: [CLS, image, text], [CLS, image] or [CLS, text]. Leaving a
// group out gives the result of keeping it with every key masked, up to
// float32 rounding, because a key masked with -1e7 gets exactly zero
// attention weight in float32. It just spends no compute on the group. All sub-batches share one
// loss and one optimizer update:
//
//	imageLoss = mean over examples with an image of their image MSE
//	textLoss  = mean over all examples of their text cross-entropy
//
// An example without a hidden non-pad text token (every image-only example)
// contributes 0 to the text sum and still counts in the text mean, as in the
// official M3AE cross-entropy (sum / max(count, 1e-5) per example, then the
// batch mean).
//
// # Compiled graphs
//
// GoMLX compiles one graph per set of input shapes. A training step's shapes
// depend on the number of examples of each kind and on the number of hidden
// non-pad text tokens, which the text head scores (padded up to a multiple of
// the sub-batch size, so at most Nt values). Feed batches of a fixed
// composition, such as always B paired examples or Bp paired plus Bt
// text-only ones: a batch that mixes kinds at random compiles a new graph
// for most steps. The trainer logs each compilation.
package native
