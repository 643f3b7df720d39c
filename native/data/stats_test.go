package data

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
)

// solidPNG returns a w x h PNG of one colour.
func solidPNG(t *testing.T, w, h int, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []uint8{c.R, c.G, c.B, c.A})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestComputeNorm(t *testing.T) {
	// Two images, (255, 0, 0) and (0, 255, 255), give mean 0.5 and std 0.5
	// in every channel. The text-only example is passed over.
	src := memSource{
		{Kind: ImageOnly, ImageData: solidPNG(t, 8, 8, color.NRGBA{255, 0, 0, 255}), Origin: "red"},
		{Kind: TextOnly, Caption: "no image", Origin: "text"},
		{Kind: ImageOnly, ImageData: solidPNG(t, 12, 8, color.NRGBA{0, 255, 255, 255}), Origin: "cyan"},
	}
	norm, measured, err := ComputeNorm(src, NormOptions{ImageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if measured != 2 {
		t.Errorf("ComputeNorm measured %d images, want 2", measured)
	}
	for c := range 3 {
		if math.Abs(float64(norm.Mean[c])-0.5) > 1e-6 || math.Abs(float64(norm.Std[c])-0.5) > 1e-6 {
			t.Errorf("ComputeNorm channel %d = mean %v std %v, want 0.5 and 0.5", c, norm.Mean[c], norm.Std[c])
		}
	}

	// A sample of 1 measures one image, so every std is 0 and it fails.
	_, _, err = ComputeNorm(src, NormOptions{ImageSize: 4, Sample: 1})
	if err == nil || !strings.Contains(err.Error(), "one flat colour") {
		t.Errorf("ComputeNorm(one flat image) = %v, want a flat-colour error", err)
	}

	// A transparent image composites to white: mean 1 would need std 0, so
	// pair it with black to get mean 0.5 and std 0.5 again.
	src = memSource{
		{Kind: ImageOnly, ImageData: solidPNG(t, 4, 4, color.NRGBA{9, 99, 199, 0}), Origin: "clear"},
		{Kind: ImageOnly, ImageData: solidPNG(t, 4, 4, color.NRGBA{0, 0, 0, 255}), Origin: "black"},
	}
	norm, _, err = ComputeNorm(src, NormOptions{ImageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if norm.Mean != [3]float32{0.5, 0.5, 0.5} || norm.Std != [3]float32{0.5, 0.5, 0.5} {
		t.Errorf("ComputeNorm(transparent, black) = %+v, want mean and std 0.5", norm)
	}
}

func TestComputeNormBadImage(t *testing.T) {
	src := memSource{
		{Kind: ImageOnly, ImageData: []byte("junk"), Origin: "junk"},
		{Kind: ImageOnly, ImageData: solidPNG(t, 4, 4, color.NRGBA{0, 0, 0, 255}), Origin: "black"},
		{Kind: ImageOnly, ImageData: solidPNG(t, 4, 4, color.NRGBA{255, 255, 255, 255}), Origin: "white"},
	}
	if _, _, err := ComputeNorm(src, NormOptions{ImageSize: 4}); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("ComputeNorm(junk image) = %v, want an error naming it", err)
	}
	_, measured, err := ComputeNorm(src, NormOptions{ImageSize: 4, SkipBad: true})
	if err != nil || measured != 2 {
		t.Errorf("ComputeNorm(SkipBad) = %d images, %v, want 2 and no error", measured, err)
	}
}

func TestComputeNormRejectsHugeImageSize(t *testing.T) {
	src := memSource{{Kind: ImageOnly, ImageData: solidPNG(t, 8, 8, color.NRGBA{255, 0, 0, 255}), Origin: "red"}}
	_, _, err := ComputeNorm(src, NormOptions{ImageSize: 100000})
	if err == nil || !strings.Contains(err.Error(), "image size 100000") {
		t.Errorf("ComputeNorm(image size 100000) error = %v, want one naming the size", err)
	}
}
