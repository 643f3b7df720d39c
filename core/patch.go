package core

import "fmt"

// Patchify copies an image [H, W, C] into patches [Np, p*p*C] in the order
// of the official M3AE code: patches run row-major over the grid (patch n =
// gy*grid + gx), and inside a patch values run by row, column, then
// channel:
//
//	dst[n*p*p*C + (py*p + px)*C + c] = img[((gy*p + py)*W + gx*p + px)*C + c]
//
// where W = H = cfg.ImageSize and p = cfg.PatchSize.
//
// It panics if cfg.ImageSize is not a positive multiple of cfg.PatchSize or
// if a buffer's length does not match cfg, which are programming errors.
func Patchify(dst, img []float32, cfg Config) {
	checkPatchBuffers("Patchify", len(dst), len(img), cfg)
	forEachPatchRow(cfg, func(patchOffset, imageOffset, rowLen int) {
		copy(dst[patchOffset:patchOffset+rowLen], img[imageOffset:imageOffset+rowLen])
	})
}

// Unpatchify is the inverse of Patchify: it copies patches [Np, p*p*C]
// back into an image [H, W, C]. It panics in the same cases as Patchify.
func Unpatchify(dst, patches []float32, cfg Config) {
	checkPatchBuffers("Unpatchify", len(patches), len(dst), cfg)
	forEachPatchRow(cfg, func(patchOffset, imageOffset, rowLen int) {
		copy(dst[imageOffset:imageOffset+rowLen], patches[patchOffset:patchOffset+rowLen])
	})
}

// forEachPatchRow calls visit once for each row of each patch, in patch
// order. One patch row is p*C values that are contiguous in both layouts,
// starting at patchOffset in [Np, p*p*C] and at imageOffset in [H, W, C].
func forEachPatchRow(cfg Config, visit func(patchOffset, imageOffset, rowLen int)) {
	p, grid, side := cfg.PatchSize, cfg.GridSize(), cfg.ImageSize
	rowLen := p * Channels
	for gy := range grid {
		for gx := range grid {
			patch := (gy*grid + gx) * cfg.PatchDim()
			for py := range p {
				imageOffset := ((gy*p+py)*side + gx*p) * Channels
				visit(patch+py*rowLen, imageOffset, rowLen)
			}
		}
	}
}

// checkPatchBuffers panics unless cfg tiles its image into whole patches
// and the buffers have the lengths [Np, p*p*C] and [H, W, C].
func checkPatchBuffers(name string, patchesLen, imageLen int, cfg Config) {
	if cfg.PatchSize < 1 || cfg.ImageSize < 1 || cfg.ImageSize%cfg.PatchSize != 0 {
		panic(fmt.Sprintf("core.%s: image_size %d is not a positive multiple of patch_size %d", name, cfg.ImageSize, cfg.PatchSize))
	}
	wantImage := cfg.ImageSize * cfg.ImageSize * Channels
	if imageLen != wantImage {
		panic(fmt.Sprintf("core.%s: image buffer has %d elements, want H*W*C = %d", name, imageLen, wantImage))
	}
	if wantPatches := cfg.NumPatches() * cfg.PatchDim(); patchesLen != wantPatches {
		panic(fmt.Sprintf("core.%s: patch buffer has %d elements, want Np*p*p*C = %d", name, patchesLen, wantPatches))
	}
}
