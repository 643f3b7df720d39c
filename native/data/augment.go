package data

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Augmentation is the random image transform of training: a random resized
// crop, then a horizontal flip, as torchvision's RandomResizedCrop and
// RandomHorizontalFlip do.
type Augmentation struct {
	// Scale is the range of the crop's area as a fraction of the image's.
	Scale [2]float64
	// Ratio is the range of the crop's aspect ratio, width / height.
	Ratio [2]float64
	// FlipProb is the probability of a horizontal flip.
	FlipProb float64
}

// DefaultAugmentation is the MAE and M3AE training transform: crop area 20
// to 100 % of the image, aspect ratio 3/4 to 4/3, flip with probability
// 0.5.
var DefaultAugmentation = Augmentation{
	Scale:    [2]float64{0.2, 1},
	Ratio:    [2]float64{3.0 / 4.0, 4.0 / 3.0},
	FlipProb: 0.5,
}

// Validate reports the first setting of a that cannot be used.
func (a Augmentation) Validate() error {
	if !(a.Scale[0] > 0 && a.Scale[0] <= a.Scale[1] && a.Scale[1] <= 1) {
		return fmt.Errorf("augmentation scale %v: want 0 < min <= max <= 1", a.Scale)
	}
	if !(a.Ratio[0] > 0 && a.Ratio[0] <= a.Ratio[1] && !math.IsInf(a.Ratio[1], 0)) {
		return fmt.Errorf("augmentation ratio %v: want 0 < min <= max, finite", a.Ratio)
	}
	if !(a.FlipProb >= 0 && a.FlipProb <= 1) {
		return fmt.Errorf("augmentation flip probability %v: want 0 to 1", a.FlipProb)
	}
	return nil
}

// maxCropAttempts is how many random boxes RandomResizedCropBox tries
// before it falls back to a centre crop, as torchvision does.
const maxCropAttempts = 10

// RandomResizedCropBox draws a crop window for an image of width x height
// pixels with the rule of torchvision's RandomResizedCrop.get_params. Up to
// 10 times, it draws an area fraction uniformly from scale and an aspect
// ratio log-uniformly from ratio, and rounds the box's sides half to even.
// The first box that fits is placed uniformly at random. When none fits,
// it returns the largest centre crop whose aspect ratio is clamped into
// ratio.
func RandomResizedCropBox(rng *rand.Rand, width, height int, scale, ratio [2]float64) image.Rectangle {
	area := float64(width) * float64(height)
	logRatio := [2]float64{math.Log(ratio[0]), math.Log(ratio[1])}
	for range maxCropAttempts {
		targetArea := area * uniform(rng, scale[0], scale[1])
		aspect := math.Exp(uniform(rng, logRatio[0], logRatio[1]))
		w := int(math.RoundToEven(math.Sqrt(targetArea * aspect)))
		h := int(math.RoundToEven(math.Sqrt(targetArea / aspect)))
		if w > 0 && w <= width && h > 0 && h <= height {
			top := rng.IntN(height - h + 1)
			left := rng.IntN(width - w + 1)
			return image.Rect(left, top, left+w, top+h)
		}
	}

	// Fallback: centre crop with the aspect ratio clamped into ratio.
	w, h := width, height
	inRatio := float64(width) / float64(height)
	switch {
	case inRatio < ratio[0]:
		h = int(math.RoundToEven(float64(w) / ratio[0]))
	case inRatio > ratio[1]:
		w = int(math.RoundToEven(float64(h) * ratio[1]))
	}
	top, left := (height-h)/2, (width-w)/2
	return image.Rect(left, top, left+w, top+h)
}

// uniform returns a value drawn uniformly from [low, high).
func uniform(rng *rand.Rand, low, high float64) float64 {
	return low + (high-low)*rng.Float64()
}

// augmentImage writes a training view of img into dst ([size, size, C],
// laid out as core.PreprocessImage writes it). img must be opaque with
// bounds starting at (0, 0), as Example.Decode leaves it. The crop box is
// drawn first and the flip second, both from rng.
func augmentImage(dst []float32, img *image.RGBA, size int, norm core.ImageNorm, aug Augmentation, rng *rand.Rand) {
	bounds := img.Bounds()
	box := RandomResizedCropBox(rng, bounds.Dx(), bounds.Dy(), aug.Scale, aug.Ratio)
	flip := rng.Float64() < aug.FlipProb
	cropResizeFlip(dst, img, box, flip, size, norm)
}

// cropResizeFlip cuts box out of img, resizes it to size x size with
// bicubic interpolation (skipped when the box already has that size),
// mirrors it left to right when flip is set, and writes it normalized into
// dst.
func cropResizeFlip(dst []float32, img *image.RGBA, box image.Rectangle, flip bool, size int, norm core.ImageNorm) {
	// Copy the box into an image whose bounds start at (0, 0).
	crop := image.NewRGBA(image.Rect(0, 0, box.Dx(), box.Dy()))
	for y := range box.Dy() {
		start := img.PixOffset(box.Min.X, box.Min.Y+y)
		copy(crop.Pix[y*crop.Stride:y*crop.Stride+box.Dx()*4], img.Pix[start:start+box.Dx()*4])
	}
	resized := crop
	if box.Dx() != size || box.Dy() != size {
		// core's resampler, so training views and inference inputs come
		// from the same filter.
		resized = core.ResizeBicubic(crop, size, size)
	}

	for y := range size {
		for x := range size {
			sourceX := x
			if flip {
				sourceX = size - 1 - x
			}
			pixel := resized.Pix[resized.PixOffset(sourceX, y):]
			out := dst[(y*size+x)*core.Channels : (y*size+x+1)*core.Channels]
			for c := range core.Channels {
				// float32(v*257)/0xffff rounds the same real number as
				// float32(v)/255, ToTensor's scaling, as in core.
				scaled := float32(uint32(pixel[c])*257) / whiteLevel
				out[c] = (scaled - norm.Mean[c]) / norm.Std[c]
			}
		}
	}
}
