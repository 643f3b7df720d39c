// Package analysis runs two analyses of a model's embeddings:
//
//   - TSNE maps embeddings to 2-D points for a scatter plot, with exact
//     t-SNE (van der Maaten and Hinton 2008, "Visualizing Data using
//     t-SNE"). ScatterPlotPNG draws the points coloured by label.
//   - FitGaussians fits one Gaussian per class with a shared covariance to
//     in-distribution embeddings, and GaussianModel.Score returns an
//     input's out-of-distribution score: the Mahalanobis distance to the
//     nearest class mean (Lee et al. 2018, "A Simple Unified Framework for
//     Detecting Out-of-Distribution Samples and Adversarial Attacks").
//     AUROC and FPRAt95TPR measure how well scores separate two sets.
//     FitGaussiansLedoitWolf regularizes the covariance by Ledoit-Wolf
//     shrinkage in place of a fixed ridge, and ReferenceSet reads a score
//     as a percentile rank among a small one-class set's leave-one-out
//     scores.
//
// EmbedExamples embeds the examples that package evaluate reads. Every
// computation runs in one goroutine in a fixed order, so the same inputs
// give the same results. Only ScatterPlotPNG imports gonum's plot
// packages, and js/wasm builds leave it out. The rest imports core,
// evaluate and the standard library.
package analysis
