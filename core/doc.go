// Package core runs the M3AE model (Multimodal Masked Autoencoder, Geng et
// al. 2022, arXiv 2205.14204) in plain Go: model-file reading, BERT
// WordPiece tokenization, image preprocessing, the encoder and decoder, random
// masking, reconstruction and embedding.
//
// The package imports only the standard library, so the same code builds
// natively, for GOOS=js GOARCH=wasm and for GOOS=wasip1 GOARCH=wasm. Arithmetic is float32 in a fixed order and masks
// come from a seeded math/rand/v2 generator, so every target gives the same
// output bits for the same model, input and seed.
//
// # Shapes
//
// Comments and docs use one vocabulary for tensor shapes, written [B, L, D]:
//
//	B   batch
//	Np  image patches, (ImageSize/PatchSize)^2
//	Nt  text tokens, the model's TextLength
//	L   sequence length, 1 + Np + Nt (CLS, image patches, text tokens)
//	K   kept (unmasked) tokens seen by the encoder, CLS included
//	D   encoder width, Dd decoder width
//	H   attention heads, Dh head width (D/H)
//	p   patch size in pixels, C colour channels (3)
//	V   vocabulary size
//
// Code uses long names for the same things (numPatches, headDim). Flat
// buffers are row-major: element (i, j) of an [N, M] buffer is at i*M + j.
//
// # Masks
//
// A mask holds one value per position, and true (or 1) means the position is
// hidden from the encoder and must be reconstructed. This follows the
// official M3AE code, where mask value 1 marks a removed token.
package core
