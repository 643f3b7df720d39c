package data

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// NormOptions configures ComputeNorm.
type NormOptions struct {
	// Sample is the number of images to measure; zero means 1000. A source
	// with fewer images is measured whole.
	Sample int
	// ImageSize is the side in pixels that images are preprocessed to
	// before measuring, the model's image size. Zero means 64.
	ImageSize int
	// Seed picks the sample.
	Seed uint64
	// SkipBad skips examples whose data is bad instead of failing.
	SkipBad bool
	Logger  *slog.Logger
}

// identityNorm leaves pixels in [0, 1].
var identityNorm = core.ImageNorm{Std: [core.Channels]float32{1, 1, 1}}

// maxNormImageSize bounds NormOptions.ImageSize. Statistics are measured
// at the model's image size, and every preset's is far smaller, so a larger
// value is a typo that would only allocate gigabytes.
const maxNormImageSize = 4096

// ComputeNorm measures the per-channel mean and standard deviation of the
// pixels of a seeded random sample of the images in src, preprocessed as
// for evaluation (composited over white, resized and centre-cropped to
// ImageSize, scaled to [0, 1]). Text-only examples are passed over. It
// returns the normalization and the number of images measured.
func ComputeNorm(src Source, opts NormOptions) (core.ImageNorm, int, error) {
	if opts.Sample == 0 {
		opts.Sample = 1000
	}
	if opts.ImageSize == 0 {
		opts.ImageSize = 64
	}
	if opts.Sample < 0 || opts.ImageSize < 0 {
		return core.ImageNorm{}, 0, fmt.Errorf("norm: sample %d and image size %d must be positive", opts.Sample, opts.ImageSize)
	}
	if opts.ImageSize > maxNormImageSize {
		return core.ImageNorm{}, 0, fmt.Errorf("norm: image size %d is over %d: use the model's image size (the official presets use 256)", opts.ImageSize, maxNormImageSize)
	}
	logger := loggerOrDiscard(opts.Logger)
	order := newRand(opts.Seed, domainNorm, 0, 0).Perm(src.Len())

	var sum, sumSquares [core.Channels]float64
	pixels := make([]float32, opts.ImageSize*opts.ImageSize*core.Channels)
	measured, skipped := 0, 0
	for _, i := range order {
		if measured == opts.Sample {
			break
		}
		ex, err := src.Example(i)
		if err == nil {
			err = ex.Decode()
		}
		if err == nil && ex.Image != nil {
			err = core.PreprocessImage(ex.Image, opts.ImageSize, identityNorm, pixels)
		}
		if err != nil {
			if !opts.SkipBad {
				return core.ImageNorm{}, 0, fmt.Errorf("norm: %w", err)
			}
			skipped++
			logger.Warn("skipping bad example", "error", err)
			continue
		}
		if ex.Image == nil {
			continue
		}
		for p := 0; p < len(pixels); p += core.Channels {
			for c := range core.Channels {
				v := float64(pixels[p+c])
				sum[c] += v
				sumSquares[c] += v * v
			}
		}
		measured++
	}
	if measured == 0 {
		return core.ImageNorm{}, 0, fmt.Errorf("%w: norm: the source has no usable image (%d skipped)", ErrInvalidData, skipped)
	}

	var norm core.ImageNorm
	count := float64(measured * opts.ImageSize * opts.ImageSize)
	for c := range core.Channels {
		mean := sum[c] / count
		variance := max(sumSquares[c]/count-mean*mean, 0)
		norm.Mean[c] = float32(mean)
		norm.Std[c] = float32(math.Sqrt(variance))
	}
	if err := checkNorm(norm); err != nil {
		return core.ImageNorm{}, 0, fmt.Errorf("norm of %d images: %w: the images are one flat colour", measured, err)
	}
	return norm, measured, nil
}

// checkNorm rejects a normalization with a non-finite mean or a std that
// is not finite and positive.
func checkNorm(norm core.ImageNorm) error {
	for c := range core.Channels {
		mean, std := float64(norm.Mean[c]), float64(norm.Std[c])
		if math.IsNaN(mean) || math.IsInf(mean, 0) {
			return fmt.Errorf("image norm mean[%d] = %v: want a finite value", c, mean)
		}
		if !(std > 0) || math.IsInf(std, 0) {
			return fmt.Errorf("image norm std[%d] = %v: want a finite positive value", c, std)
		}
	}
	return nil
}
