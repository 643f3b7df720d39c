// Package trainrun runs one M3AE training run: it opens the data, mixes it
// into batches of a fixed composition, steps a native.Trainer and fills a
// run folder with logs, metrics, evaluation plots and checkpoints. A run
// stopped by a crash or a signal resumes exactly from its newest
// checkpoint. The train command of m3ae-edge is a thin layer over it.
//
// # Run folder
//
//	run.json                     options, model config and data summary
//	metrics.jsonl                one JSON object per logged interval ("kind": "train")
//	                             and per evaluation ("kind": "eval")
//	loss.png                     train and held-out losses and token accuracy over steps
//	recon-NNNNNNNNN.png          held-out examples at step N: original, masked and
//	                             reconstructed images with the caption's hidden tokens
//	                             and the predicted ones
//	checkpoints/step-NNNNNNNNN/  the trainer's GoMLX checkpoint and run-state.json
//
// # Exact resume
//
// A checkpoint contains the weights, the AdamW moments, the step counter and
// the trainer's mask generator (native.Trainer.SaveCheckpoint), and
// run-state.json adds the mixer position of the next batch and the run's
// options. Batches are a pure function of the options and the position
// (see package data). A resumed run therefore trains on the same batches
// with the same masks, and repeats the losses of an uninterrupted run bit
// for bit on the same backend. Checkpoints are written into a staging folder and
// renamed into place when complete, so a crash leaves only whole
// checkpoints under step-NNNNNNNNN names. On resume, metrics.jsonl loses
// the records after the checkpoint's step, which the resumed run repeats.
//
// # Evaluation
//
// Every held-out example is masked by core.RandomMasks with a fixed seed
// per example, so successive evaluations, and evaluations of different
// runs, hide the same patches and tokens and their figures compare.
package trainrun
