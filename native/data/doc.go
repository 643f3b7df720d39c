// Package data feeds M3AE training. It reads examples from captioned image
// folders, WebDataset tar shards, text files and IDX files. A Mixer
// interleaves paired, image-only and text-only sources at set ratios, and a
// Batcher turns them into batches of patches and token ids on a pool of
// workers. The package also builds the datasets that ship as packages (the
// emoji images of npm and Debian's Fashion-MNIST) into the captions-file
// layout that OpenCaptions reads.
//
// The package imports no GoMLX, so batches are plain Go slices and the
// pipeline builds and tests on its own. Shapes use core's vocabulary
// ([B, Np, p*p*C], Nt).
//
// # Reading order
//
// A Source gives random access to its examples. A Mixer maps each draw
// index k = 0, 1, 2, ... to one example of one source, as a pure function
// of its config and k, so a Position (the next k) is all a training run
// saves to resume the same stream. A Batcher reads draws from a Mixer,
// decodes and augments them on N workers, and returns batches in draw
// order whatever the workers' timing. Each example's augmentation draws
// from its own generator, seeded by (seed, epoch, index in epoch), so the
// pixels do not depend on the number of workers either.
//
// # Images
//
// Images are decoded with core.DecodeImage (PNG and JPEG) and composited
// over opaque white before any other step, with the same integer rule as
// core.PreprocessImage, because transparent emoji pixels hold random
// colours that must not reach the model.
package data
