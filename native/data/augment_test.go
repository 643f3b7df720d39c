package data

import (
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func TestRandomResizedCropBoxRanges(t *testing.T) {
	aug := DefaultAugmentation
	for _, size := range [][2]int{{64, 64}, {100, 50}, {37, 91}} {
		width, height := size[0], size[1]
		rng := rand.New(rand.NewPCG(1, 2))
		for range 2000 {
			box := RandomResizedCropBox(rng, width, height, aug.Scale, aug.Ratio)
			if !box.In(image.Rect(0, 0, width, height)) || box.Empty() {
				t.Fatalf("RandomResizedCropBox(%dx%d) = %v, want a non-empty box inside the image", width, height, box)
			}
			// Rounding each side moves the area and the ratio by at most
			// half a pixel per side.
			w, h := float64(box.Dx()), float64(box.Dy())
			area := w * h / float64(width*height)
			maxArea := (w + 0.5) * (h + 0.5) / float64(width*height)
			minArea := (w - 0.5) * (h - 0.5) / float64(width*height)
			if maxArea < aug.Scale[0] || minArea > aug.Scale[1] {
				t.Errorf("RandomResizedCropBox(%dx%d) = %v with area fraction %.3f, want about %v", width, height, box, area, aug.Scale)
			}
			if (w+0.5)/(h-0.5) < aug.Ratio[0] || (w-0.5)/(h+0.5) > aug.Ratio[1] {
				t.Errorf("RandomResizedCropBox(%dx%d) = %v with ratio %.3f, want about %v", width, height, box, w/h, aug.Ratio)
			}
		}
	}
}

// TestRandomResizedCropBoxFallback checks the centre crop that follows 10
// failed attempts: no box of area at least 20 % and ratio at most 4/3 fits
// in a 1000x10 image.
func TestRandomResizedCropBoxFallback(t *testing.T) {
	tests := []struct {
		width, height int
		want          image.Rectangle
	}{
		// w = round(10 * 4/3) = 13, left = (1000 - 13) / 2 = 493.
		{1000, 10, image.Rect(493, 0, 506, 10)},
		// h = round(10 / (3/4)) = 13, top = 493.
		{10, 1000, image.Rect(0, 493, 10, 506)},
	}
	for _, tt := range tests {
		rng := rand.New(rand.NewPCG(7, 7))
		got := RandomResizedCropBox(rng, tt.width, tt.height, DefaultAugmentation.Scale, DefaultAugmentation.Ratio)
		if got != tt.want {
			t.Errorf("RandomResizedCropBox(%dx%d) = %v, want the fallback %v", tt.width, tt.height, got, tt.want)
		}
	}
	// An image inside the ratio range falls back to the whole image when
	// the scale range cannot be met.
	rng := rand.New(rand.NewPCG(7, 7))
	if got := RandomResizedCropBox(rng, 3, 3, [2]float64{0.01, 0.02}, DefaultAugmentation.Ratio); got != image.Rect(0, 0, 3, 3) {
		t.Errorf("RandomResizedCropBox(3x3, scale 1-2 %%) = %v, want the whole image", got)
	}
}

// coordinateImage returns an opaque 8x8 image whose red level is 30*x
// and green level 30*y, so each pixel encodes its coordinates.
func coordinateImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			copy(img.Pix[img.PixOffset(x, y):], []uint8{uint8(30 * x), uint8(30 * y), 77, 255})
		}
	}
	return img
}

func TestCropResizeFlipGeometry(t *testing.T) {
	img := coordinateImage()
	box := image.Rect(2, 1, 6, 5) // 4x4, so no resampling at size 4
	for _, flip := range []bool{false, true} {
		dst := make([]float32, 4*4*core.Channels)
		cropResizeFlip(dst, img, box, flip, 4, identityNorm)
		for y := range 4 {
			for x := range 4 {
				sourceX := 2 + x
				if flip {
					sourceX = 2 + 3 - x
				}
				want := []float32{level(30 * sourceX), level(30 * (1 + y)), level(77)}
				got := dst[(y*4+x)*3 : (y*4+x+1)*3]
				if !slices.Equal(got, want) {
					t.Errorf("cropResizeFlip(flip=%v) pixel (%d, %d) = %v, want source pixel (%d, %d) = %v", flip, x, y, got, sourceX, 1+y, want)
				}
			}
		}
	}
}

// level returns an 8-bit level scaled to [0, 1] as ToTensor does.
func level(v int) float32 { return float32(v*257) / 0xffff }

func TestCropResizeFlipResamples(t *testing.T) {
	// A flat image stays flat through bicubic resampling, up or down.
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []uint8{10, 120, 250, 255})
	}
	for _, box := range []image.Rectangle{image.Rect(0, 0, 8, 8), image.Rect(1, 2, 4, 7)} {
		dst := make([]float32, 6*6*core.Channels)
		cropResizeFlip(dst, img, box, false, 6, identityNorm)
		for i := 0; i < len(dst); i += 3 {
			if want := []float32{level(10), level(120), level(250)}; !slices.Equal(dst[i:i+3], want) {
				t.Fatalf("cropResizeFlip(flat, box %v, size 6) pixel %d = %v, want %v", box, i/3, dst[i:i+3], want)
			}
		}
	}
}

// TestAugmentDrawOrder checks that augmentImage draws the crop box, then
// the flip, from its generator, and that flips come at the set rate.
func TestAugmentDrawOrder(t *testing.T) {
	img := coordinateImage()
	flips := 0
	const trials = 2000
	for seed := range uint64(trials) {
		rng := rand.New(rand.NewPCG(seed, 0))
		box := RandomResizedCropBox(rng, 8, 8, DefaultAugmentation.Scale, DefaultAugmentation.Ratio)
		flip := rng.Float64() < DefaultAugmentation.FlipProb
		if flip {
			flips++
		}
		want := make([]float32, 8*8*3)
		cropResizeFlip(want, img, box, flip, 8, identityNorm)
		got := make([]float32, 8*8*3)
		augmentImage(got, img, 8, identityNorm, DefaultAugmentation, rand.New(rand.NewPCG(seed, 0)))
		if !slices.Equal(got, want) {
			t.Fatalf("augmentImage(seed %d) differs from cropResizeFlip(box %v, flip %v)", seed, box, flip)
		}
	}
	// With p = 0.5 over 2000 trials, 5 standard deviations is about 112.
	if math.Abs(float64(flips)-trials/2) > 112 {
		t.Errorf("flips in %d trials = %d, want about %d", trials, flips, trials/2)
	}
}

func TestAugmentationValidate(t *testing.T) {
	bad := []Augmentation{
		{Scale: [2]float64{0, 1}, Ratio: DefaultAugmentation.Ratio},
		{Scale: [2]float64{0.5, 0.2}, Ratio: DefaultAugmentation.Ratio},
		{Scale: [2]float64{0.2, 1.5}, Ratio: DefaultAugmentation.Ratio},
		{Scale: DefaultAugmentation.Scale, Ratio: [2]float64{2, 1}},
		{Scale: DefaultAugmentation.Scale, Ratio: DefaultAugmentation.Ratio, FlipProb: 1.5},
	}
	for _, a := range bad {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want an error", a)
		}
	}
	if err := DefaultAugmentation.Validate(); err != nil {
		t.Errorf("DefaultAugmentation.Validate() = %v", err)
	}
}
