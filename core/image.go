package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
)

// MaxImageBytes is the largest encoded image DecodeImage accepts, 64 MiB.
// That holds a high-quality JPEG at MaxImagePixels, an estimated 10 to 25
// MB, and it bounds the copy of the upload that a browser page or a plugin
// host passes in.
const MaxImageBytes = 64 << 20

// MaxImagePixels is the largest width*height that DecodeImage and
// PreprocessImage accept: 40 megapixels, enough for a full-resolution photo
// from a 40-megapixel camera. Judging by the buffers of the standard
// library decoders, decoding takes at most about 20 bytes per pixel, for a
// progressive CMYK JPEG that keeps 4 bytes of DCT coefficients per pixel
// and channel beside the pixels. Compositing adds 4 bytes per pixel, and
// resizing at most 8 more for its intermediate and output images. So at
// this limit the peak is an estimated 1.3 GB, inside the 4 GiB that 32-bit
// WebAssembly can address. The resampler's weight tables add at most 16
// bytes per source pixel and 28 per output pixel along each resized side,
// which matters only for an image a few pixels wide.
const MaxImagePixels = 40_000_000

// whiteLevel is the 16-bit channel value of the opaque white background
// that transparent pixels are composited onto.
const whiteLevel = 0xffff

// DecodeImage decodes a PNG or JPEG image. It reads the header first and
// rejects, before allocating any pixels, an image with zero width or height
// or with more than MaxImagePixels pixels. Every error wraps
// ErrInvalidImage.
func DecodeImage(data []byte) (image.Image, error) {
	return decodeImage(data, MaxImagePixels)
}

// decodeImage is DecodeImage with the pixel limit as a parameter, so the
// fuzz test can keep each decode small.
func decodeImage(data []byte, maxPixels int64) (image.Image, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: image data is empty: pass the bytes of a PNG or JPEG file", ErrInvalidImage)
	}
	if len(data) > MaxImageBytes {
		return nil, fmt.Errorf("%w: image data is %d bytes, over the limit of %d (MaxImageBytes): downscale or recompress the image",
			ErrInvalidImage, len(data), MaxImageBytes)
	}

	// Pick the decoder from the file signature instead of image.Decode, so
	// formats that other packages register (GIF, WebP) stay rejected.
	format := sniffImageFormat(data)
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	switch format {
	case "png":
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case "jpeg":
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	case "":
		return nil, fmt.Errorf("%w: unknown image format (first bytes % x): pass a PNG or JPEG file",
			ErrInvalidImage, data[:min(len(data), 8)])
	default:
		return nil, fmt.Errorf("%w: %s images are not supported: convert the image to PNG or JPEG", ErrInvalidImage, format)
	}

	if format == "png" {
		if err := checkPNGSize(data, maxPixels); err != nil {
			return nil, err
		}
	}
	header, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, decodeError(format, "header", err)
	}
	if err := checkImageSize(format+" image", header.Width, header.Height, maxPixels); err != nil {
		return nil, err
	}
	if format == "jpeg" {
		if err := checkJPEGScans(data, maxJPEGScans); err != nil {
			return nil, err
		}
	}

	// The stdlib decoders return errors for truncated and corrupt data
	// instead of panicking (the tests feed them every prefix of a PNG and a
	// JPEG), so no recover is needed here.
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, decodeError(format, "pixel data", err)
	}
	return img, nil
}

// checkPNGSize applies checkImageSize to the width and height in a PNG's
// IHDR chunk. On 32-bit targets png.DecodeConfig rejects more than 2^28
// pixels as an unsupported feature, so this check runs first and gives the
// same error on every target. It leaves a missing or malformed IHDR to
// png.DecodeConfig.
func checkPNGSize(data []byte, maxPixels int64) error {
	// The 8-byte signature, the IHDR length and type, then width and height.
	if len(data) < 24 || string(data[12:16]) != "IHDR" {
		return nil
	}
	width := binary.BigEndian.Uint32(data[16:20])
	height := binary.BigEndian.Uint32(data[20:24])
	if width == 0 || height == 0 || width > math.MaxInt32 || height > math.MaxInt32 {
		return nil
	}
	return checkImageSize("png image", int(width), int(height), maxPixels)
}

// sniffImageFormat returns the format named by the first bytes of data:
// "png" or "jpeg", the name of a known unsupported format, or "" when no
// signature matches.
func sniffImageFormat(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("GIF8")):
		return "gif"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		switch string(data[8:12]) {
		case "avif", "avis":
			return "avif"
		case "heic", "heix", "mif1", "msf1":
			return "heif"
		}
	}
	return ""
}

// decodeError wraps an error of the png or jpeg package with the step that
// failed and what the caller can do about it.
func decodeError(format, step string, err error) error {
	var pngUnsupported png.UnsupportedError
	var jpegUnsupported jpeg.UnsupportedError
	if errors.As(err, &pngUnsupported) || errors.As(err, &jpegUnsupported) {
		return fmt.Errorf("%w: %s %s uses a feature the decoder does not support (%w): re-save the image as an 8-bit PNG or a baseline JPEG",
			ErrInvalidImage, format, step, err)
	}
	return fmt.Errorf("%w: %s %s is corrupt or truncated (%w): check that the whole file was read",
		ErrInvalidImage, format, step, err)
}

// checkImageSize rejects an image with no pixels or with more than
// maxPixels pixels. name is how the message refers to the image.
func checkImageSize(name string, width, height int, maxPixels int64) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("%w: %s is %dx%d pixels: width and height must be at least 1", ErrInvalidImage, name, width, height)
	}
	if pixels := int64(width) * int64(height); pixels > maxPixels {
		return fmt.Errorf("%w: %s is %dx%d = %d pixels, over the limit of %d: downscale the image before loading it",
			ErrInvalidImage, name, width, height, pixels, maxPixels)
	}
	return nil
}

// PreprocessImage writes img into dst as model input, in the order of
// torchvision's Resize(size, BICUBIC), CenterCrop(size), ToTensor and
// Normalize, after one step of its own that comes first:
//
//  1. Composite every pixel over opaque white (255, 255, 255). Emoji
//     pickers draw emoji on white, and the emoji PNGs hold random colours
//     under fully transparent pixels, which must not reach the model.
//  2. Resize with Pillow's bicubic filter so the shorter side is size.
//     Pillow resizes 8-bit images, so the composite is rounded to 8 bits
//     first. For an 8-bit image, transparent or not, that gives the levels
//     of Pillow's alpha_composite, and the resized pixels equal Pillow
//     9.4's bit for bit. An image whose shorter side is already size is
//     not resampled, so a square image of the model's size passes through
//     untouched, 16-bit channels included.
//  3. Crop the centre size x size pixels. The offset is
//     round((side - size) / 2) with halves rounded to even, as Python's
//     round does in torchvision's center_crop.
//  4. Scale each channel to [0, 1] and normalize it: (x - Mean) / Std.
//
// dst has layout [size, size, C]: channel c of the pixel at column x and
// row y is dst[(y*size + x)*C + c]. Compositing and resampling run in
// integer arithmetic, the resampler's weights in float64 with every
// product rounded on its own, and normalization in float32 in a fixed
// order. So every target gives the same bits, and the tests check amd64
// with GOAMD64=v1 and v3, js/wasm and wasip1/wasm.
//
// Bad arguments return an error wrapping ErrInvalidInput, and an image
// that is empty, over MaxImagePixels, or so elongated that its resized copy
// would exceed MaxImagePixels returns one wrapping ErrInvalidImage.
func PreprocessImage(img image.Image, size int, norm ImageNorm, dst []float32) error {
	if err := checkPreprocessArgs(img, size, norm, len(dst)); err != nil {
		return err
	}
	bounds := img.Bounds()
	width, height := bounds.Dx(), bounds.Dy()
	if err := checkImageSize("image", width, height, MaxImagePixels); err != nil {
		return err
	}

	// The crop needs only size x size pixels, so an image that needs no
	// resampling is composited and normalized straight from the crop window.
	newWidth, newHeight := resizedSize(width, height, size)
	if newWidth == width && newHeight == height {
		left := bounds.Min.X + centerCropOffset(width-size)
		top := bounds.Min.Y + centerCropOffset(height-size)
		writeNormalized(dst, rgba64Source(img), left, top, size, norm)
		return nil
	}

	if pixels := int64(newWidth) * int64(newHeight); pixels > MaxImagePixels {
		return fmt.Errorf("%w: image is %dx%d pixels, and resizing its shorter side to %d gives %dx%d = %d pixels, over the limit of %d: crop the image closer to square first",
			ErrInvalidImage, width, height, size, newWidth, newHeight, pixels, MaxImagePixels)
	}
	resized := resizeBicubic(compositeOnWhite(img), newWidth, newHeight)
	left := centerCropOffset(newWidth - size)
	top := centerCropOffset(newHeight - size)
	writeNormalized(dst, rgba64Source(resized), left, top, size, norm)
	return nil
}

// ImagePixels returns img preprocessed into a new [size, size, C] buffer.
// PreprocessImage describes the steps and the errors.
func ImagePixels(img image.Image, size int, norm ImageNorm) ([]float32, error) {
	if err := checkOutputSize(size); err != nil {
		return nil, err
	}
	dst := make([]float32, size*size*Channels)
	if err := PreprocessImage(img, size, norm, dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// checkPreprocessArgs checks the arguments of PreprocessImage that do not
// depend on the pixels.
func checkPreprocessArgs(img image.Image, size int, norm ImageNorm, dstLen int) error {
	if img == nil {
		return fmt.Errorf("%w: image is nil: decode it with DecodeImage first", ErrInvalidInput)
	}
	if err := checkOutputSize(size); err != nil {
		return err
	}
	if want := size * size * Channels; dstLen != want {
		return fmt.Errorf("%w: dst has %d elements, want size*size*%d = %d", ErrInvalidInput, dstLen, Channels, want)
	}
	for c := range Channels {
		mean, std := float64(norm.Mean[c]), float64(norm.Std[c])
		if math.IsNaN(mean) || math.IsInf(mean, 0) {
			return fmt.Errorf("%w: image norm mean[%d] = %v: want a finite value", ErrInvalidInput, c, mean)
		}
		if !(std > 0) || math.IsInf(std, 0) {
			return fmt.Errorf("%w: image norm std[%d] = %v: want a finite positive value", ErrInvalidInput, c, std)
		}
	}
	return nil
}

// maxOutputSize is the largest preprocessing size whose square output is
// within MaxImagePixels, the integer square root of MaxImagePixels. A
// larger size cannot succeed, because the image or its resized copy would
// have at least size*size pixels.
const maxOutputSize = 6324

// checkOutputSize rejects a preprocessing size that no image can be
// preprocessed to, before ImagePixels allocates size*size*C values.
func checkOutputSize(size int) error {
	if size < 1 || size > maxOutputSize {
		return fmt.Errorf("%w: image size %d: want 1 to %d, so that size*size is within MaxImagePixels; it is usually the model's image_size",
			ErrInvalidInput, size, maxOutputSize)
	}
	return nil
}

// resizedSize returns the size of the image after scaling its shorter side
// to size, keeping the aspect ratio and truncating the longer side as
// torchvision's int(size * long / short) does.
func resizedSize(width, height, size int) (newWidth, newHeight int) {
	if width <= height {
		return size, int(int64(size) * int64(height) / int64(width))
	}
	return int(int64(size) * int64(width) / int64(height)), size
}

// centerCropOffset returns where a centre crop starts along a side that is
// excess pixels longer than the crop: round(excess / 2) with halves rounded
// to even, which matches torchvision's int(round((side - size) / 2.0)) in
// Python 3. For example excess 1 gives 0, 3 gives 2 and 5 gives 2.
func centerCropOffset(excess int) int {
	half := excess / 2
	if excess%2 == 1 && half%2 == 1 {
		half++
	}
	return half
}

// compositeOnWhite returns img drawn over opaque white as a new opaque
// 8-bit image with bounds starting at (0, 0). It composites in 16 bits and
// rounds each channel to the nearest 8-bit level, which gives back the
// levels of an opaque 8-bit image unchanged.
func compositeOnWhite(img image.Image) *image.RGBA {
	bounds := img.Bounds()
	width, height := bounds.Dx(), bounds.Dy()
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	src := rgba64Source(img)
	for y := range height {
		row := out.Pix[y*out.Stride : y*out.Stride+width*4]
		for x := range width {
			rgb := overWhite(src.RGBA64At(bounds.Min.X+x, bounds.Min.Y+y))
			pixel := row[x*4 : x*4+4]
			for c, v := range rgb {
				// A level is 257 16-bit steps, and 128 steps round to
				// nearest. No value lies halfway between two levels.
				pixel[c] = uint8((v + 128) / 257)
			}
			pixel[3] = 0xff
		}
	}
	return out
}

// overWhite returns the 16-bit red, green and blue of c drawn over opaque
// white. c is alpha-premultiplied, so the background shows through with
// weight whiteLevel - A and each channel is c + (whiteLevel - A), exact in
// integers. A malformed premultiplied colour, with a channel above its
// alpha, is clamped to whiteLevel.
func overWhite(c color.RGBA64) [Channels]uint32 {
	background := whiteLevel - uint32(c.A)
	return [Channels]uint32{
		min(uint32(c.R)+background, whiteLevel),
		min(uint32(c.G)+background, whiteLevel),
		min(uint32(c.B)+background, whiteLevel),
	}
}

// writeNormalized composites the size x size window of src whose top-left
// pixel is (left, top) over white and writes it normalized into dst, laid
// out as PreprocessImage documents.
func writeNormalized(dst []float32, src image.RGBA64Image, left, top, size int, norm ImageNorm) {
	for y := range size {
		for x := range size {
			rgb := overWhite(src.RGBA64At(left+x, top+y))
			out := dst[(y*size+x)*Channels : (y*size+x+1)*Channels]
			for c, v := range rgb {
				// For an 8-bit value v8, float32(v8*257)/65535 rounds the
				// same real number as float32(v8)/255, so 8-bit images
				// give ToTensor's bits.
				scaled := float32(v) / whiteLevel
				out[c] = (scaled - norm.Mean[c]) / norm.Std[c]
			}
		}
	}
}

// rgba64Source returns img as an image.RGBA64Image, which every image type
// of the standard library implements. Other types are read through At.
func rgba64Source(img image.Image) image.RGBA64Image {
	if src, ok := img.(image.RGBA64Image); ok {
		return src
	}
	return colorModelImage{img}
}

// colorModelImage reads any image.Image through the generic color.Color
// conversion.
type colorModelImage struct {
	image.Image
}

func (m colorModelImage) RGBA64At(x, y int) color.RGBA64 {
	r, g, b, a := m.At(x, y).RGBA()
	return color.RGBA64{uint16(r), uint16(g), uint16(b), uint16(a)}
}

// DenormalizeImage converts a [size, size, C] buffer, laid out as
// PreprocessImage writes it, back into an opaque 8-bit image. Each value
// becomes x = value*Std + Mean, clamped to [0, 1] with NaN mapped to 0. It
// then rounds to the 8-bit level uint8(x*255 + 0.5), truncating. For a buffer
// that PreprocessImage wrote from an opaque 8-bit image without resizing,
// this returns the original pixels exactly, because the float32 round trip
// is off by far less than half a level.
//
// It panics if len(pixels) != size*size*C, a programming error.
func DenormalizeImage(pixels []float32, size int, norm ImageNorm) *image.RGBA {
	if size < 0 || len(pixels) != size*size*Channels {
		panic(fmt.Sprintf("core.DenormalizeImage: pixels has %d elements, want size*size*%d for size %d", len(pixels), Channels, size))
	}
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range size * size {
		pixel := out.Pix[i*4 : i*4+4]
		for c := range Channels {
			// The explicit float32 conversion keeps the compiler from
			// fusing the multiply and add, which would round differently
			// on targets with FMA.
			x := float32(pixels[i*Channels+c]*norm.Std[c]) + norm.Mean[c]
			if !(x > 0) {
				x = 0
			}
			if x > 1 {
				x = 1
			}
			pixel[c] = uint8(float32(x*255) + 0.5)
		}
		pixel[3] = 0xff
	}
	return out
}

// CompositeOnWhite returns img drawn over opaque white as a new opaque
// 8-bit image with bounds starting at (0, 0), the first step of
// PreprocessImage. Training pipelines call it so their augmented views
// start from the same pixels as inference.
func CompositeOnWhite(img image.Image) *image.RGBA { return compositeOnWhite(img) }

// ResizeBicubic resamples src to width x height with Pillow's bicubic
// filter, the resize step of PreprocessImage, and returns a new image with
// the same bits on every target. It panics if width, height or a side of
// src is below 1.
func ResizeBicubic(src *image.RGBA, width, height int) *image.RGBA {
	return resizeBicubic(src, width, height)
}
