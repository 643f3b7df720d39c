package core

import (
	"errors"
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

// FuzzDecodeImage checks that decoding and preprocessing arbitrary bytes
// never panics, and either fails with ErrInvalidImage or yields exactly
// fuzzImageSize*fuzzImageSize*C finite values.
func FuzzDecodeImage(f *testing.F) {
	// Seeds are the image fixtures, written by
	//	go run testdata/images/gen.go
	// from the repository root.
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

	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeImage(data, fuzzMaxPixels)
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("decodeImage error = %v, want it to wrap ErrInvalidImage", err)
			}
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
