// Package evaluate measures a model file on held-out data, each figure
// beside a baseline that needs no model:
//
//   - Evaluate: reconstruction PSNR of masked image patches against filling
//     each hidden patch with the mean colour of the visible ones, and
//     masked-token top-1 and top-5 accuracy against always predicting the
//     most frequent training tokens (CountTokens).
//   - ProbeEmbeddings: a linear probe, a softmax classifier
//     (TrainClassifier) on frozen image embeddings (EmbedImages), against
//     the majority class. The same probe on a randomly initialized model of
//     the same architecture (core.InitModelFile) is the baseline for the
//     embeddings themselves.
//
// Every step runs in one goroutine in a fixed order, so the same inputs
// give the same figures. The package imports only core and the standard
// library.
package evaluate
