package core

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// fuzzPipeline is the micro-preset Pipeline that FuzzImagePipeline feeds,
// built once per process because the fuzzer calls the target thousands of
// times.
var fuzzPipeline = sync.OnceValues(func() (*Pipeline, error) {
	cfg, err := Preset("micro")
	if err != nil {
		return nil, err
	}
	mf, err := InitModelFile(cfg, bertvocab.Tokens(), CC12MNorm, 7)
	if err != nil {
		return nil, err
	}
	return NewPipeline(mf)
})

// FuzzImagePipeline sends arbitrary bytes down the image path that the CLI,
// the browser module and the plugin share: decode, composite, resize, crop,
// normalize (PreprocessImage) and patchify (Pipeline.Inputs). Every input
// must either fail with ErrInvalidImage or give Np*p*p*C values, each of
// them a normalized level in [0, 1], in the patch order of Patchify.
func FuzzImagePipeline(f *testing.F) {
	// Seeds are the image fixtures, written by
	//	go run testdata/images/gen.go
	// from the repository root, and the regression inputs under
	// testdata/fuzz/FuzzImagePipeline.
	addImageFixtureSeeds(f)
	// Extreme aspect ratios: the resize of a 1-pixel-wide image is the
	// widest weight table the resampler builds.
	f.Add(encodePNGFixture(f, 1, 4000))
	f.Add(encodePNGFixture(f, 4000, 1))
	f.Add(pngHeader(1, 1<<31-1))
	// A JPEG with one scan more than maxJPEGScans: thousands of repeated
	// scans made a small file take minutes to decode.
	f.Add(jpegWithScans(f, maxJPEGScans+1))

	pipeline, err := fuzzPipeline()
	if err != nil {
		f.Fatal(err)
	}
	cfg := pipeline.Config()
	low, high := normalizedRange(pipeline.Norm())
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeFuzzInput(t, data)
		if img == nil {
			return
		}
		in, err := pipeline.Inputs(img, "")
		if err != nil {
			if !errors.Is(err, ErrInvalidImage) {
				t.Fatalf("Inputs(%v image) error = %v, want it to wrap ErrInvalidImage", img.Bounds(), err)
			}
			return
		}
		if want := cfg.NumPatches() * cfg.PatchDim(); len(in.Patches) != want {
			t.Fatalf("Inputs(%v image) gave %d patch values, want Np*p*p*C = %d", img.Bounds(), len(in.Patches), want)
		}
		if in.Tokens != nil {
			t.Fatalf("Inputs(%v image, no caption) gave tokens %v, want none", img.Bounds(), in.Tokens)
		}
		for i, v := range in.Patches {
			c := (i % cfg.PatchDim()) % Channels
			if !(v >= low[c] && v <= high[c]) {
				t.Fatalf("Inputs(%v image) patch value %d (channel %d) = %v, want a normalized level in [%v, %v]",
					img.Bounds(), i, c, v, low[c], high[c])
			}
		}

		// Patchify must be a pure reordering of the preprocessed pixels.
		pixels, err := ImagePixels(img, cfg.ImageSize, pipeline.Norm())
		if err != nil {
			t.Fatalf("ImagePixels(%v image) error = %v after Inputs succeeded", img.Bounds(), err)
		}
		back := make([]float32, len(pixels))
		Unpatchify(back, in.Patches, cfg)
		for i := range pixels {
			if math.Float32bits(back[i]) != math.Float32bits(pixels[i]) {
				t.Fatalf("Unpatchify(Inputs(%v image))[%d] = %v, want ImagePixels' %v", img.Bounds(), i, back[i], pixels[i])
			}
		}
	})
}

// normalizedRange returns, per channel, the normalized values of levels 0
// and 1, the bounds of every value PreprocessImage writes. It computes them
// as writeNormalized does, in float32.
func normalizedRange(norm ImageNorm) (low, high [Channels]float32) {
	for c := range Channels {
		low[c] = (0 - norm.Mean[c]) / norm.Std[c]
		high[c] = (1 - norm.Mean[c]) / norm.Std[c]
	}
	return low, high
}

// encodePNGFixture returns a PNG of a width x height gradient with varying
// alpha.
func encodePNGFixture(tb testing.TB, width, height int) []byte {
	tb.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), uint8(x * y)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
