package harness

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"image"
	"image/draw"
	"math"
	"sort"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

// Ops of a Case.
const (
	OpEmbed       = "embed"
	OpReconstruct = "reconstruct"
)

// Case is one call, run the same way on every target. The JSON form is
// what the test page's worker reads.
type Case struct {
	Name string `json:"name"`
	// Op is OpEmbed or OpReconstruct.
	Op string `json:"op"`
	// Image names an entry of Inputs. Empty means no image.
	Image string `json:"image,omitempty"`
	// Pixels sends the image decoded, as straight-alpha RGBA pixels,
	// instead of as encoded bytes.
	Pixels bool   `json:"pixels,omitempty"`
	Text   string `json:"text"`
	// Pooling is "cls" or "mean", for OpEmbed.
	Pooling string `json:"pooling,omitempty"`
	// Reconstruction options, for OpReconstruct.
	ImageMaskRatio float64 `json:"imageMaskRatio"`
	TextMaskRatio  float64 `json:"textMaskRatio"`
	Seed           uint64  `json:"seed,string"`
	TopK           int     `json:"topK"`
	// SeedAsBigInt makes the browser pass Seed as a BigInt instead of a
	// Number.
	SeedAsBigInt bool `json:"seedAsBigInt,omitempty"`
}

// Inputs maps image names to encoded image files.
type Inputs map[string][]byte

// Pixels decodes the named image with core.DecodeImage and converts it to
// straight-alpha RGBA, the form a browser's ImageData has.
func (in Inputs) Pixels(name string) (*image.NRGBA, error) {
	data, ok := in[name]
	if !ok {
		return nil, fmt.Errorf("input image %q is missing", name)
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		return nil, err
	}
	bounds := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, bounds.Dx(), bounds.Dy()))
	draw.Draw(out, out.Bounds(), img, bounds.Min, draw.Src)
	return out, nil
}

// requestImage returns the image of c as a request carries it.
func (in Inputs) requestImage(c Case) (abi.Image, error) {
	if c.Image == "" {
		return abi.Image{}, nil
	}
	if c.Pixels {
		pixels, err := in.Pixels(c.Image)
		return abi.Image{Pixels: pixels}, err
	}
	data, ok := in[c.Image]
	if !ok {
		return abi.Image{}, fmt.Errorf("input image %q is missing", c.Image)
	}
	return abi.Image{Encoded: data}, nil
}

// Output is the result of one Case on one target. Error is the message of
// a failed call, which must also match across targets.
type Output struct {
	Embedding      []float32
	Reconstruction *abi.Reconstruction
	Error          string
}

func parsePooling(name string) (core.Pooling, error) {
	switch name {
	case "", "cls":
		return core.PoolCLS, nil
	case "mean":
		return core.PoolMean, nil
	default:
		return 0, fmt.Errorf("pooling %q is unknown: use cls or mean", name)
	}
}

func (c Case) options() core.ReconstructOptions {
	return core.ReconstructOptions{
		ImageMaskRatio: c.ImageMaskRatio,
		TextMaskRatio:  c.TextMaskRatio,
		Seed:           c.Seed,
		TopK:           c.TopK,
	}
}

// RunNative runs c on a Pipeline. An error from the core becomes
// Output.Error, and only a broken case returns an error.
func RunNative(p *core.Pipeline, c Case, in Inputs) (Output, error) {
	request, err := in.requestImage(c)
	if err != nil {
		return Output{}, err
	}
	pooling, err := parsePooling(c.Pooling)
	if err != nil {
		return Output{}, err
	}
	img, err := request.Decode()
	if err != nil {
		return Output{Error: err.Error()}, nil
	}
	switch c.Op {
	case OpEmbed:
		embedding, err := p.Embed(img, c.Text, pooling)
		if err != nil {
			return Output{Error: err.Error()}, nil
		}
		return Output{Embedding: embedding}, nil
	case OpReconstruct:
		result, err := p.Reconstruct(img, c.Text, c.options())
		if err != nil {
			return Output{Error: err.Error()}, nil
		}
		return Output{Reconstruction: abi.NewReconstruction(result)}, nil
	default:
		return Output{}, fmt.Errorf("case %s: op %q is unknown", c.Name, c.Op)
	}
}

// RunPlugin runs c on a Model of the wazero host. A *host.GuestError
// becomes Output.Error, with the guest's message, and any other error is
// returned.
func RunPlugin(ctx context.Context, m *host.Model, c Case, in Inputs) (Output, error) {
	request, err := in.requestImage(c)
	if err != nil {
		return Output{}, err
	}
	pooling, err := parsePooling(c.Pooling)
	if err != nil {
		return Output{}, err
	}
	var out Output
	switch c.Op {
	case OpEmbed:
		out.Embedding, err = m.Embed(ctx, host.EmbedRequest{Image: request, Text: c.Text, Pooling: pooling})
	case OpReconstruct:
		out.Reconstruction, err = m.Reconstruct(ctx, host.ReconstructRequest{Image: request, Text: c.Text, Options: c.options()})
	default:
		return Output{}, fmt.Errorf("case %s: op %q is unknown", c.Name, c.Op)
	}
	var guestErr *host.GuestError
	if errors.As(err, &guestErr) {
		return Output{Error: guestErr.Message}, nil
	}
	return out, err
}

// Digest returns the SHA-256 of each field of out, keyed by field name, so
// that a mismatch names the field that differs. Floats are hashed as their
// little-endian bits and an absent field as the word "absent".
func Digest(out Output) map[string]string {
	d := map[string]string{"error": hashOf(func(h hash.Hash) { h.Write([]byte(out.Error)) })}
	if out.Embedding != nil {
		d["embedding"] = hashOf(func(h hash.Hash) { writeFloats(h, out.Embedding) })
	}
	r := out.Reconstruction
	if r == nil {
		return d
	}
	d["imageMask"] = hashOf(func(h hash.Hash) { writeBools(h, r.Masks.Image) })
	d["textMask"] = hashOf(func(h hash.Hash) { writeBools(h, r.Masks.Text) })
	if r.Image != nil {
		d["original"] = hashOf(func(h hash.Hash) { writeRGBA(h, r.Image.Original) })
		d["masked"] = hashOf(func(h hash.Hash) { writeRGBA(h, r.Image.Masked) })
		d["reconstructed"] = hashOf(func(h hash.Hash) { writeRGBA(h, r.Image.Reconstructed) })
		d["pixelPred"] = hashOf(func(h hash.Hash) { writeFloats(h, r.PixelPred) })
	} else {
		d["image"] = "absent"
	}
	if r.Text == nil {
		d["text"] = "absent"
		return d
	}
	d["tokens"] = hashOf(func(h hash.Hash) {
		for i, token := range r.Text.Tokens {
			writeString(h, token)
			writeBools(h, r.Text.Hidden[i:i+1])
		}
	})
	d["predictions"] = hashOf(func(h hash.Hash) {
		for _, p := range r.Text.Predictions {
			writeUint32(h, uint32(p.Position))
			writeString(h, p.Original)
			for _, c := range p.Candidates {
				writeUint32(h, uint32(c.ID))
				writeString(h, c.Token)
				writeFloats(h, []float32{c.Prob})
			}
		}
	})
	return d
}

// DiffDigests lists the fields whose digests differ, sorted.
func DiffDigests(got, want map[string]string) []string {
	var fields []string
	for field, value := range want {
		if got[field] != value {
			fields = append(fields, field)
		}
	}
	for field := range got {
		if _, ok := want[field]; !ok {
			fields = append(fields, field)
		}
	}
	sort.Strings(fields)
	return fields
}

func hashOf(write func(hash.Hash)) string {
	h := sha256.New()
	write(h)
	return hex.EncodeToString(h.Sum(nil))
}

func writeUint32(h hash.Hash, v uint32) {
	h.Write(binary.LittleEndian.AppendUint32(nil, v))
}

func writeString(h hash.Hash, s string) {
	writeUint32(h, uint32(len(s)))
	h.Write([]byte(s))
}

func writeFloats(h hash.Hash, values []float32) {
	buf := make([]byte, 0, 4*len(values))
	for _, v := range values {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	writeUint32(h, uint32(len(values)))
	h.Write(buf)
}

func writeBools(h hash.Hash, values []bool) {
	writeUint32(h, uint32(len(values)))
	for _, v := range values {
		if v {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
}

func writeRGBA(h hash.Hash, img *image.RGBA) {
	bounds := img.Bounds()
	writeUint32(h, uint32(bounds.Dx()))
	writeUint32(h, uint32(bounds.Dy()))
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		start := img.PixOffset(bounds.Min.X, y)
		h.Write(img.Pix[start : start+4*bounds.Dx()])
	}
}
