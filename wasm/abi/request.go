package abi

import (
	"fmt"
	"image"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Image kinds, the first byte of an encoded Image.
const (
	imageNone    = 0
	imageEncoded = 1 // u32 length, then PNG or JPEG bytes
	imagePixels  = 2 // u32 width, u32 height, then width*height*4 bytes of RGBA
)

// Image is the image of a request: encoded PNG or JPEG bytes, or decoded
// pixels. At most one may be set, and neither means no image.
type Image struct {
	// Encoded is a PNG or JPEG file, decoded by core.DecodeImage in the
	// guest, so every target decodes the same bytes the same way.
	Encoded []byte
	// Pixels are 8-bit RGBA pixels with straight (not premultiplied)
	// alpha, the layout of a browser's ImageData. Fully transparent pixels
	// are composited onto white like any other.
	Pixels *image.NRGBA
}

// Decode returns the image that core receives: nil for no image, the
// decoded file for Encoded, and Pixels as is.
func (img Image) Decode() (image.Image, error) {
	switch {
	case img.Encoded != nil && img.Pixels != nil:
		return nil, fmt.Errorf("%w: image has both encoded bytes and pixels: set one", core.ErrInvalidInput)
	case img.Encoded != nil:
		return core.DecodeImage(img.Encoded)
	case img.Pixels != nil:
		return img.Pixels, nil
	default:
		return nil, nil
	}
}

// EmbedRequest is a request for the representation of an image, a caption
// or both, as core.Pipeline.Embed computes it.
type EmbedRequest struct {
	Image   Image
	Text    string
	Pooling core.Pooling
}

// ReconstructRequest is a request for a masked reconstruction, as
// core.Pipeline.Reconstruct computes it.
type ReconstructRequest struct {
	Image   Image
	Text    string
	Options core.ReconstructOptions
}

// EncodeEmbedRequest returns the bytes of req for m3ae_embed.
func EncodeEmbedRequest(req EmbedRequest) ([]byte, error) {
	var e encoder
	if err := encodeImageAndText(&e, req.Image, req.Text); err != nil {
		return nil, err
	}
	if req.Pooling != core.PoolCLS && req.Pooling != core.PoolMean {
		return nil, fmt.Errorf("%w: pooling %d is unknown: use core.PoolCLS or core.PoolMean", core.ErrInvalidInput, int(req.Pooling))
	}
	e.u8(uint8(req.Pooling))
	return e.buf, checkRequestSize(len(e.buf))
}

// DecodeEmbedRequest decodes the bytes of an m3ae_embed request. The
// result's Image aliases data. Every error wraps ErrInvalidRequest.
func DecodeEmbedRequest(data []byte) (EmbedRequest, error) {
	if err := checkRequestSize(len(data)); err != nil {
		return EmbedRequest{}, err
	}
	d := newDecoder(data, ErrInvalidRequest, "embed request")
	var req EmbedRequest
	req.Image, req.Text = decodeImageAndText(d)
	switch pooling := d.u8("pooling"); pooling {
	case uint8(core.PoolCLS), uint8(core.PoolMean):
		req.Pooling = core.Pooling(pooling)
	default:
		d.fail("pooling", "pooling %d is unknown, want 0 (cls) or 1 (mean)", pooling)
	}
	if err := d.finish(); err != nil {
		return EmbedRequest{}, err
	}
	return req, nil
}

// EncodeReconstructRequest returns the bytes of req for m3ae_reconstruct.
func EncodeReconstructRequest(req ReconstructRequest) ([]byte, error) {
	var e encoder
	if err := encodeImageAndText(&e, req.Image, req.Text); err != nil {
		return nil, err
	}
	opts := req.Options
	if opts.TopK < 0 {
		return nil, fmt.Errorf("%w: top-k %d is negative: use 0 for the default or a positive count", core.ErrInvalidInput, opts.TopK)
	}
	e.f64(opts.ImageMaskRatio)
	e.f64(opts.TextMaskRatio)
	e.u64(opts.Seed)
	e.u32(uint32(min(opts.TopK, 1<<31)))
	e.flag(opts.Masks != nil)
	if opts.Masks != nil {
		e.bools(opts.Masks.Image)
		e.bools(opts.Masks.Text)
	}
	return e.buf, checkRequestSize(len(e.buf))
}

// DecodeReconstructRequest decodes the bytes of an m3ae_reconstruct
// request. The result's Image aliases data. Every error wraps
// ErrInvalidRequest.
func DecodeReconstructRequest(data []byte) (ReconstructRequest, error) {
	if err := checkRequestSize(len(data)); err != nil {
		return ReconstructRequest{}, err
	}
	d := newDecoder(data, ErrInvalidRequest, "reconstruct request")
	var req ReconstructRequest
	req.Image, req.Text = decodeImageAndText(d)
	opts := &req.Options
	opts.ImageMaskRatio = d.f64("image mask ratio")
	opts.TextMaskRatio = d.f64("text mask ratio")
	opts.Seed = d.u64("seed")
	opts.TopK = int(d.u32("top-k"))
	if d.flag("masks flag") {
		opts.Masks = &core.Masks{
			Image: d.bools("image mask", MaxRequestBytes),
			Text:  d.bools("text mask", MaxRequestBytes),
		}
	}
	if err := d.finish(); err != nil {
		return ReconstructRequest{}, err
	}
	return req, nil
}

func checkRequestSize(n int) error {
	if n > MaxRequestBytes {
		return fmt.Errorf("%w: request is %d bytes, over the limit of %d (MaxRequestBytes): send a smaller image or caption",
			ErrInvalidRequest, n, MaxRequestBytes)
	}
	return nil
}

// encodeImageAndText writes the image and the caption, the start of every
// request.
func encodeImageAndText(e *encoder, img Image, text string) error {
	switch {
	case img.Encoded != nil && img.Pixels != nil:
		return fmt.Errorf("%w: image has both encoded bytes and pixels: set one", core.ErrInvalidInput)
	case img.Encoded != nil:
		if len(img.Encoded) > core.MaxImageBytes {
			return fmt.Errorf("%w: image data is %d bytes, over the limit of %d (core.MaxImageBytes): downscale or recompress the image",
				core.ErrInvalidImage, len(img.Encoded), core.MaxImageBytes)
		}
		e.u8(imageEncoded)
		e.bytes(img.Encoded)
	case img.Pixels != nil:
		if err := encodePixels(e, img.Pixels); err != nil {
			return err
		}
	default:
		e.u8(imageNone)
	}
	if len(text) > MaxTextBytes {
		return fmt.Errorf("%w: caption is %d bytes, over the limit of %d (MaxTextBytes): shorten it, since the tokenizer reads only the first %d bytes",
			core.ErrInvalidInput, len(text), MaxTextBytes, core.MaxInputBytes)
	}
	e.str(text)
	return nil
}

// encodePixels writes img's rows without its stride padding, so any
// NRGBA, sub-images included, encodes as width*height*4 bytes.
func encodePixels(e *encoder, img *image.NRGBA) error {
	bounds := img.Bounds()
	width, height := bounds.Dx(), bounds.Dy()
	if err := checkPixelSize(width, height); err != nil {
		return err
	}
	e.u8(imagePixels)
	e.u32(uint32(width))
	e.u32(uint32(height))
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		start := img.PixOffset(bounds.Min.X, y)
		e.buf = append(e.buf, img.Pix[start:start+4*width]...)
	}
	return nil
}

func checkPixelSize(width, height int) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("%w: pixels are %dx%d: width and height must be positive", core.ErrInvalidImage, width, height)
	}
	if int64(width)*int64(height) > core.MaxImagePixels {
		return fmt.Errorf("%w: pixels are %dx%d, over the limit of %d pixels (core.MaxImagePixels): downscale the image",
			core.ErrInvalidImage, width, height, core.MaxImagePixels)
	}
	return nil
}

func decodeImageAndText(d *decoder) (Image, string) {
	var img Image
	switch kind := d.u8("image kind"); kind {
	case imageNone:
	case imageEncoded:
		img.Encoded = d.bytes("image bytes", core.MaxImageBytes)
		if img.Encoded == nil && d.err == nil {
			img.Encoded = []byte{} // present but empty, which core rejects with its own message
		}
	case imagePixels:
		width, height := d.u32("pixel width"), d.u32("pixel height")
		if d.err != nil {
			break
		}
		if err := checkPixelSize(int(width), int(height)); err != nil {
			d.fail("pixels", "%v", err)
			break
		}
		pix := d.take("pixels", 4*uint64(width)*uint64(height))
		if d.err != nil {
			break
		}
		img.Pixels = &image.NRGBA{
			Pix:    pix,
			Stride: 4 * int(width),
			Rect:   image.Rect(0, 0, int(width), int(height)),
		}
	default:
		d.fail("image kind", "kind %d is unknown, want 0 (none), 1 (encoded) or 2 (pixels)", kind)
	}
	text := d.str("text", MaxTextBytes)
	return img, text
}
