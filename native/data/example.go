package data

import (
	"errors"
	"fmt"
	"image"
	"log/slog"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// ErrInvalidData marks input data that cannot become an example: a bad
// line in a captions file, a missing or undecodable image, a corrupt tar
// shard or IDX file. Errors wrap it with the file, line or key involved.
var ErrInvalidData = errors.New("invalid data")

// Kind is the token groups an example has.
type Kind uint8

const (
	// Paired is an image with a caption.
	Paired Kind = iota
	// ImageOnly is an image without a caption.
	ImageOnly
	// TextOnly is a caption without an image.
	TextOnly
)

// String returns "paired", "image-only" or "text-only".
func (k Kind) String() string {
	switch k {
	case Paired:
		return "paired"
	case ImageOnly:
		return "image-only"
	case TextOnly:
		return "text-only"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// HasImage reports whether examples of kind k carry an image.
func (k Kind) HasImage() bool { return k == Paired || k == ImageOnly }

// HasText reports whether examples of kind k carry a caption.
func (k Kind) HasText() bool { return k == Paired || k == TextOnly }

// NoLabel is the Label of an example without a class label.
const NoLabel = -1

// Example is one training or evaluation example as a source returns it.
// A source sets ImageData (the encoded file) or Image (pixels it already
// holds), never both. Decode turns ImageData into Image, so the expensive
// step can run on the batcher's workers instead of in the source.
type Example struct {
	Kind Kind
	// ImageData is the encoded PNG or JPEG file, nil after Decode and for
	// text-only examples.
	ImageData []byte
	// Image is the decoded image. After Decode it is an opaque 8-bit
	// *image.RGBA, composited over white, with bounds starting at (0, 0).
	// A 16-bit image loses its low bits there, as it does in
	// core.PreprocessImage when it is resized.
	Image image.Image
	// Caption is the text of a paired or text-only example.
	Caption string
	// Label is the class label, or NoLabel.
	Label int
	// Origin names where the example came from, such as
	// "captions.jsonl:12" or "shard-00001.tar:000000123", for messages.
	Origin string

	// composited is set once Image holds the output of core.CompositeOnWhite.
	composited bool
}

// Decode decodes ImageData with core.DecodeImage, composites the result
// over opaque white and stores it in Image. An example that already holds
// an Image is composited in place, and one without an image is left as is.
// Errors wrap ErrInvalidData and name the example's Origin.
func (e *Example) Decode() error {
	if e.ImageData != nil {
		img, err := core.DecodeImage(e.ImageData)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidData, e.Origin, err)
		}
		e.Image, e.ImageData = img, nil
	}
	if e.Image == nil {
		if e.Kind.HasImage() {
			return fmt.Errorf("%w: %s: %s example has no image", ErrInvalidData, e.Origin, e.Kind)
		}
		return nil
	}
	if !e.composited {
		e.Image, e.composited = core.CompositeOnWhite(e.Image), true
	}
	return nil
}

// Source is a dataset with random access to its examples. Example must be
// safe for concurrent use, because the batcher's workers call it in
// parallel, and it must return the same example for the same index every
// time.
type Source interface {
	// Len returns the number of examples.
	Len() int
	// Example returns example i, 0 <= i < Len(). Errors wrap
	// ErrInvalidData when the data behind the example is bad.
	Example(i int) (Example, error)
}

// checkIndex returns an error unless 0 <= i < n.
func checkIndex(sourceName string, i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("%s: example index %d is out of range [0, %d)", sourceName, i, n)
	}
	return nil
}

// whiteLevel is the 16-bit value of the white background.
const whiteLevel = 0xffff

// loggerOrDiscard returns logger, or a logger that drops every record when
// logger is nil.
func loggerOrDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}
