// Package experiment runs small, seeded studies of M3AE pretraining end to
// end. A study has arms that differ in one setting. Each arm trains once per
// seed with the same budget (package trainrun), is exported to a float32
// model file (package export), and its image embeddings are scored by a
// linear probe (package evaluate). The studies repeat three comparisons of
// Geng et al. 2022, "Multimodal Masked Autoencoders Learn Transferable
// Representations" (arXiv 2205.14204), at a scale a CPU trains:
//
//   - text-mask-ratio: the fraction of text positions hidden, such as 0.15
//     (BERT's ratio) against 0.75 (M3AE's default).
//   - paired-vs-unpaired: a share of the pairs kept as pairs, the images and
//     captions of the rest given as image-only and text-only examples.
//   - m3ae-vs-mae: the same images with their captions, and without any
//     text, which makes the model an MAE.
//
// Unlike package evaluate, which only reads model files, this package
// trains, so it imports native/trainrun and export besides core.
//
// # Study folder
//
//	study.json                     the study's settings; a rerun must match them
//	results.json, results.md       one row per arm and seed, with the budget,
//	results.png                    the versions and the wall times
//	data/ARM/                      derived training data of the arms that need it
//	runs/ARM-seedN/                one trainrun run folder per arm and seed, with
//	                               model.safetensors, probe.json and result.json
//	runs/random-init-seedN/        the probe of the untrained model of seed N
//
// A run whose result.json exists is finished and is skipped on a rerun, and
// a run stopped during training resumes from its newest checkpoint, so an
// interrupted study continues where it stopped.
package experiment
