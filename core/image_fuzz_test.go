package core

import (
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzMaxPixels keeps each fuzz decode small, so the fuzzer spends its time
// on malformed data instead of allocating large images. It still admits
// every valid seed, the largest of which is 512x384.
const fuzzMaxPixels = 1 << 18

// fuzzImageSize is the preprocessing size of the micro preset.
const fuzzImageSize = 16

// addImageFixtureSeeds adds every image fixture under imageFixtureDir to
// f's seed corpus, skipping the scripts and notes stored beside them.
func addImageFixtureSeeds(f *testing.F) {
	f.Helper()
	entries, err := os.ReadDir(imageFixtureDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".py") || strings.HasSuffix(name, ".md") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(imageFixtureDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// decodeFuzzInput decodes data with the fuzz pixel limit. It returns nil
// when the decoder rejects data, and fails t when that error does not wrap
// ErrInvalidImage.
func decodeFuzzInput(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, err := decodeImage(data, fuzzMaxPixels)
	if err != nil {
		if !errors.Is(err, ErrInvalidImage) {
			t.Fatalf("decodeImage error = %v, want it to wrap ErrInvalidImage", err)
		}
		return nil
	}
	return img
}

// FuzzDecodeImage checks that decoding and preprocessing arbitrary bytes
// never panics, and either fails with ErrInvalidImage or yields exactly
// fuzzImageSize*fuzzImageSize*C finite values.
func FuzzDecodeImage(f *testing.F) {
	// Seeds are the image fixtures, written by
	//	go run testdata/images/gen.go
	// from the repository root.
	addImageFixtureSeeds(f)

	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeFuzzInput(t, data)
		if img == nil {
			return
		}
		dst := make([]float32, fuzzImageSize*fuzzImageSize*Channels)
		if err := PreprocessImage(img, fuzzImageSize, CC12MNorm, dst); err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("PreprocessImage(%v image) error = %v, want it to wrap ErrInvalidImage", img.Bounds(), err)
			}
			return
		}
		for i, v := range dst {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("PreprocessImage(%v image)[%d] = %v, want a finite value", img.Bounds(), i, v)
			}
		}
	})
}
