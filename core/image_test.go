package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fixtures under testdata/images are written by
//
//	go run testdata/images/gen.go
//
// and the Pillow references under testdata/images/golden by
//
//	/usr/bin/python3 testdata/images/golden.py
//
// both run from the repository root.
const imageFixtureDir = "../testdata/images"

func readImageFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(imageFixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func decodeImageFixture(t testing.TB, name string) image.Image {
	t.Helper()
	img, err := DecodeImage(readImageFixture(t, name))
	if err != nil {
		t.Fatalf("DecodeImage(%s) error: %v", name, err)
	}
	return img
}

// unitNorm maps [0, 1] to [-1, 1] with values that float32 holds exactly,
// so expected outputs can be worked out by hand.
var unitNorm = ImageNorm{
	Mean: [Channels]float32{0.5, 0.5, 0.5},
	Std:  [Channels]float32{0.5, 0.5, 0.5},
}

// normalizeLevel applies ToTensor and Normalize, as torchvision does in
// float32, to one 8-bit level of channel c.
func normalizeLevel(level uint8, c int, norm ImageNorm) float32 {
	return (float32(level)/255 - norm.Mean[c]) / norm.Std[c]
}

func TestDecodeImageRejectsBadInput(t *testing.T) {
	pngFile := readImageFixture(t, "small16.png")
	oversized := make([]byte, MaxImageBytes+1)
	copy(oversized, pngFile)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "image data is empty"},
		{"random bytes", readImageFixture(t, "random.bin"), "unknown image format"},
		{"gif", readImageFixture(t, "tiny.gif"), "gif images are not supported"},
		{"bmp", readImageFixture(t, "tiny.bmp"), "bmp images are not supported"},
		{"webp", readImageFixture(t, "tiny.webp"), "webp images are not supported"},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), "tiff images are not supported"},
		{"heif", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), "heif images are not supported"},
		{"truncated png", readImageFixture(t, "truncated.png"), "png pixel data is corrupt or truncated"},
		{"truncated jpeg", readImageFixture(t, "truncated.jpg"), "jpeg pixel data is corrupt or truncated"},
		{"png bad checksum", readImageFixture(t, "bad_crc.png"), "png pixel data is corrupt"},
		{"png signature only", pngFile[:8], "png header is corrupt or truncated"},
		{"jpeg start marker only", []byte{0xff, 0xd8}, "jpeg header is corrupt or truncated"},
		{"png zero width", readImageFixture(t, "zero_width.png"), "non-positive dimension"},
		{"jpeg zero height", readImageFixture(t, "zero_height.jpg"), "16x0 pixels: width and height must be at least 1"},
		{"png over pixel limit", readImageFixture(t, "huge_header.png"), "100000x100000 = 10000000000 pixels, over the limit of 40000000"},
		{"jpeg over pixel limit", readImageFixture(t, "huge_header.jpg"), "65000x65000 = 4225000000 pixels, over the limit"},
		{"over byte limit", oversized, "67108865 bytes, over the limit of 67108864"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := DecodeImage(tt.data)
			if err == nil {
				t.Fatalf("DecodeImage(%s) = %T with bounds %v, want an error", tt.name, img, img.Bounds())
			}
			if !errors.Is(err, ErrInvalidImage) {
				t.Errorf("DecodeImage(%s) error = %v, want it to wrap ErrInvalidImage", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeImage(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestDecodeImageTruncatedPrefixes feeds every proper prefix of a PNG and a
// JPEG to the decoder: each must return an error, and none may panic.
func TestDecodeImageTruncatedPrefixes(t *testing.T) {
	for _, name := range []string{"small16.png", "small16.jpg"} {
		data := readImageFixture(t, name)
		for n := range len(data) {
			if _, err := DecodeImage(data[:n]); !errors.Is(err, ErrInvalidImage) {
				t.Errorf("DecodeImage(%s[:%d]) error = %v, want ErrInvalidImage", name, n, err)
			}
		}
		if _, err := DecodeImage(data); err != nil {
			t.Errorf("DecodeImage(%s) error = %v, want nil", name, err)
		}
	}
}

func TestDecodeImagePixelLimit(t *testing.T) {
	emoji := readImageFixture(t, "emoji64.png")
	if _, err := decodeImage(emoji, 64*64); err != nil {
		t.Errorf("decodeImage(emoji64.png, limit 4096) error = %v, want nil", err)
	}
	_, err := decodeImage(emoji, 64*64-1)
	if !errors.Is(err, ErrInvalidImage) {
		t.Errorf("decodeImage(emoji64.png, limit 4095) error = %v, want ErrInvalidImage", err)
	}
	if err != nil && !strings.Contains(err.Error(), "4096 pixels, over the limit of 4095") {
		t.Errorf("decodeImage(emoji64.png, limit 4095) error = %v, want the pixel limit error", err)
	}

	// These headers come without pixel data. At the limit the header
	// passes and the missing data fails, and one row more fails the limit.
	_, err = DecodeImage(pngHeader(8000, 5000))
	if want := "png pixel data is corrupt or truncated"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeImage(8000x5000 header) error = %v, want one containing %q", err, want)
	}
	_, err = DecodeImage(pngHeader(8000, 5001))
	if want := "40008000 pixels, over the limit of 40000000"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeImage(8000x5001 header) error = %v, want one containing %q", err, want)
	}
}

// pngHeader returns a PNG signature and an 8-bit RGBA IHDR chunk for the
// given size, with no pixel data.
func pngHeader(width, height uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 1, 1))); err != nil {
		panic(err)
	}
	// Signature (8 bytes), IHDR length and type (8), IHDR data (13), CRC (4).
	header := bytes.Clone(buf.Bytes()[:33])
	binary.BigEndian.PutUint32(header[16:], width)
	binary.BigEndian.PutUint32(header[20:], height)
	crc := crc32IEEE(header[12:29])
	binary.BigEndian.PutUint32(header[29:], crc)
	return header
}

func crc32IEEE(data []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range data {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0xedb88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestDecodeImageFormats(t *testing.T) {
	tests := []struct {
		name   string
		bounds image.Rectangle
		model  color.Model
	}{
		{"emoji64.png", image.Rect(0, 0, 64, 64), color.NRGBAModel},
		{"photo512x384.jpg", image.Rect(0, 0, 512, 384), color.YCbCrModel},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), color.RGBAModel},
		{"gray64.png", image.Rect(0, 0, 64, 64), color.GrayModel},
		{"gray16_32.png", image.Rect(0, 0, 32, 32), color.Gray16Model},
		{"rgba16_32.png", image.Rect(0, 0, 32, 32), color.NRGBA64Model},
	}
	for _, tt := range tests {
		img := decodeImageFixture(t, tt.name)
		if img.Bounds() != tt.bounds {
			t.Errorf("DecodeImage(%s).Bounds() = %v, want %v", tt.name, img.Bounds(), tt.bounds)
		}
		if img.ColorModel() != tt.model {
			t.Errorf("DecodeImage(%s).ColorModel() = %T, want the model of %T", tt.name, img.ColorModel(), tt.model)
		}
	}
	if _, ok := decodeImageFixture(t, "paletted64.png").(*image.Paletted); !ok {
		t.Errorf("DecodeImage(paletted64.png) is not *image.Paletted")
	}
}

// TestPreprocessImageHandComputed works a 2x2 image through by hand: black,
// white, transparent red over white, and half-transparent blue over white,
// which mixes to (127, 127, 255) because 255*(1 - 128/255) = 127.
func TestPreprocessImageHandComputed(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	img.SetNRGBA(0, 0, color.NRGBA{0, 0, 0, 255})
	img.SetNRGBA(1, 0, color.NRGBA{255, 255, 255, 255})
	img.SetNRGBA(0, 1, color.NRGBA{255, 0, 0, 0})
	img.SetNRGBA(1, 1, color.NRGBA{0, 0, 255, 128})

	got, err := ImagePixels(img, 2, unitNorm)
	if err != nil {
		t.Fatal(err)
	}
	mixed := float32(127)/255*2 - 1
	want := []float32{
		-1, -1, -1, 1, 1, 1,
		1, 1, 1, mixed, mixed, 1,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ImagePixels(2x2)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestScalingMatchesToTensor checks that the 16-bit scaling gives the bits
// of torchvision's ToTensor, float32(level)/255, for every 8-bit level.
func TestScalingMatchesToTensor(t *testing.T) {
	for level := range 256 {
		got := float32(level*257) / whiteLevel
		want := float32(level) / 255
		if got != want {
			t.Errorf("float32(%d*257)/65535 = %v, want %v", level, got, want)
		}
	}
}

// colourImages returns one image of each standard colour type holding the
// same pixels, the opaque 8-bit colours in row-major order over a 3x2 grid.
func colourImages(colours []color.NRGBA) map[string]image.Image {
	rect := image.Rect(0, 0, 3, 2)
	nrgba := image.NewNRGBA(rect)
	rgba := image.NewRGBA(rect)
	nrgba64 := image.NewNRGBA64(rect)
	rgba64 := image.NewRGBA64(rect)
	cmyk := image.NewCMYK(rect)
	palette := make(color.Palette, len(colours))
	for i, c := range colours {
		palette[i] = c
	}
	paletted := image.NewPaletted(rect, palette)
	for i, c := range colours {
		x, y := i%3, i/3
		nrgba.SetNRGBA(x, y, c)
		rgba.SetRGBA(x, y, color.RGBA{c.R, c.G, c.B, 255})
		nrgba64.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
		rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
		cyan, magenta, yellow, black := color.RGBToCMYK(c.R, c.G, c.B)
		cmyk.SetCMYK(x, y, color.CMYK{cyan, magenta, yellow, black})
		paletted.SetColorIndex(x, y, uint8(i))
	}
	return map[string]image.Image{
		"NRGBA": nrgba, "RGBA": rgba, "NRGBA64": nrgba64, "RGBA64": rgba64,
		"CMYK": cmyk, "Paletted": paletted, "generic": plainImage{nrgba},
	}
}

// plainImage hides every method but those of image.Image, so the generic
// color.Color path is used.
type plainImage struct{ img image.Image }

func (p plainImage) ColorModel() color.Model { return p.img.ColorModel() }
func (p plainImage) Bounds() image.Rectangle { return p.img.Bounds() }
func (p plainImage) At(x, y int) color.Color { return p.img.At(x, y) }

func TestPreprocessImageColourTypes(t *testing.T) {
	// CMYK holds these colours exactly. YCbCr does not, so the next test
	// checks it with a tolerance.
	colours := []color.NRGBA{
		{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255},
		{0, 0, 0, 255}, {255, 255, 255, 255}, {255, 255, 0, 255},
	}
	// Size 2 crops the 3x2 image to its columns 0 and 1, because the
	// offset is round(1/2) = 0.
	var want []float32
	for _, i := range []int{0, 1, 3, 4} {
		c := colours[i]
		for ch, level := range []uint8{c.R, c.G, c.B} {
			want = append(want, normalizeLevel(level, ch, CC12MNorm))
		}
	}
	for name, img := range colourImages(colours) {
		got, err := ImagePixels(img, 2, CC12MNorm)
		if err != nil {
			t.Fatalf("ImagePixels(%s) error: %v", name, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("ImagePixels(%s)[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
}

func TestPreprocessImageGrayAndYCbCr(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 2))
	gray16 := image.NewGray16(image.Rect(0, 0, 2, 2))
	levels := []uint8{0, 77, 200, 255}
	for i, level := range levels {
		gray.SetGray(i%2, i/2, color.Gray{level})
		gray16.SetGray16(i%2, i/2, color.Gray16{uint16(level) * 257})
	}
	for name, img := range map[string]image.Image{"Gray": gray, "Gray16": gray16} {
		got, err := ImagePixels(img, 2, CC12MNorm)
		if err != nil {
			t.Fatal(err)
		}
		for i, level := range levels {
			for c := range Channels {
				if want := normalizeLevel(level, c, CC12MNorm); got[i*Channels+c] != want {
					t.Errorf("ImagePixels(%s)[%d] = %v, want %v", name, i*Channels+c, got[i*Channels+c], want)
				}
			}
		}
	}

	// YCbCr holds RGB only approximately: the conversion there and back
	// moves a channel by up to ycbcrLevelTolerance levels.
	const ycbcrLevelTolerance = 2
	colours := [][3]uint8{{255, 0, 0}, {10, 200, 90}, {128, 128, 128}, {250, 240, 30}}
	ycbcr := image.NewYCbCr(image.Rect(0, 0, 2, 2), image.YCbCrSubsampleRatio444)
	for i, c := range colours {
		yy, cb, cr := color.RGBToYCbCr(c[0], c[1], c[2])
		ycbcr.Y[i] = yy
		ycbcr.Cb[i] = cb
		ycbcr.Cr[i] = cr
	}
	got, err := ImagePixels(ycbcr, 2, unitNorm)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range colours {
		for ch := range Channels {
			level := (got[i*Channels+ch] + 1) / 2 * 255
			if diff := math.Abs(float64(level) - float64(c[ch])); diff > ycbcrLevelTolerance {
				t.Errorf("ImagePixels(YCbCr %v) channel %d = level %.2f, want %d within %d", c, ch, level, c[ch], ycbcrLevelTolerance)
			}
		}
	}
}

func TestPreprocessImageTransparency(t *testing.T) {
	tests := []struct {
		name string
		img  image.Image
		want [Channels]float32
	}{
		{"transparent NRGBA with a colour", nrgbaPixel(color.NRGBA{200, 10, 30, 0}), [Channels]float32{1, 1, 1}},
		{"transparent RGBA", rgbaPixel(color.RGBA{0, 0, 0, 0}), [Channels]float32{1, 1, 1}},
		{"half blue NRGBA", nrgbaPixel(color.NRGBA{0, 0, 255, 128}), [Channels]float32{-0.003921628, -0.003921628, 1}},
		{"half blue RGBA", rgbaPixel(color.RGBA{0, 0, 128, 128}), [Channels]float32{-0.003921628, -0.003921628, 1}},
		{"quarter black NRGBA", nrgbaPixel(color.NRGBA{0, 0, 0, 64}), [Channels]float32{float32(191)/255*2 - 1, float32(191)/255*2 - 1, float32(191)/255*2 - 1}},
		{"alpha-only image", alphaPixel(90), [Channels]float32{1, 1, 1}},
		{"malformed premultiplied", rgbaPixel(color.RGBA{255, 0, 0, 10}), [Channels]float32{1, float32(245)/255*2 - 1, float32(245)/255*2 - 1}},
	}
	for _, tt := range tests {
		got, err := ImagePixels(tt.img, 1, unitNorm)
		if err != nil {
			t.Fatal(err)
		}
		for c := range Channels {
			if math.Abs(float64(got[c]-tt.want[c])) > 1e-6 {
				t.Errorf("ImagePixels(%s) channel %d = %v, want %v", tt.name, c, got[c], tt.want[c])
			}
		}
	}
}

func nrgbaPixel(c color.NRGBA) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.SetNRGBA(0, 0, c)
	return img
}

func rgbaPixel(c color.RGBA) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.SetRGBA(0, 0, c)
	return img
}

func alphaPixel(alpha uint8) image.Image {
	img := image.NewAlpha(image.Rect(0, 0, 1, 1))
	img.SetAlpha(0, 0, color.Alpha{alpha})
	return img
}

func TestCenterCropOffset(t *testing.T) {
	// Python 3: int(round(excess / 2.0)) rounds halves to even.
	tests := []struct{ excess, want int }{
		{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 2}, {6, 3}, {7, 4}, {9, 4}, {11, 6}, {64, 32},
	}
	for _, tt := range tests {
		if got := centerCropOffset(tt.excess); got != tt.want {
			t.Errorf("centerCropOffset(%d) = %d, want %d", tt.excess, got, tt.want)
		}
	}
}

func TestResizedSize(t *testing.T) {
	tests := []struct {
		width, height, size   int
		wantWidth, wantHeight int
	}{
		{64, 64, 64, 64, 64},
		{512, 384, 256, 341, 256},
		{384, 512, 256, 256, 341},
		{96, 72, 32, 42, 32},
		{24, 18, 32, 42, 32},
		{69, 64, 64, 69, 64},
		{100, 100, 7, 7, 7},
		{1, 3, 5, 5, 15},
	}
	for _, tt := range tests {
		gotWidth, gotHeight := resizedSize(tt.width, tt.height, tt.size)
		if gotWidth != tt.wantWidth || gotHeight != tt.wantHeight {
			t.Errorf("resizedSize(%d, %d, %d) = %d, %d, want %d, %d",
				tt.width, tt.height, tt.size, gotWidth, gotHeight, tt.wantWidth, tt.wantHeight)
		}
	}
}

// TestPreprocessImageCropOffset reads the crop offset off the first output
// pixel of images whose red channel is 3*column and green is 3*row.
func TestPreprocessImageCropOffset(t *testing.T) {
	tests := []struct {
		name               string
		wantRed, wantGreen uint8
	}{
		{"wide69x64.png", 3 * 2, 0}, // excess 5, offset round(2.5) = 2
		{"tall64x67.png", 0, 3 * 2}, // excess 3, offset round(1.5) = 2
	}
	for _, tt := range tests {
		got, err := ImagePixels(decodeImageFixture(t, tt.name), 64, unitNorm)
		if err != nil {
			t.Fatal(err)
		}
		if want := normalizeLevel(tt.wantRed, 0, unitNorm); got[0] != want {
			t.Errorf("ImagePixels(%s) red at (0, 0) = %v, want %v", tt.name, got[0], want)
		}
		if want := normalizeLevel(tt.wantGreen, 1, unitNorm); got[1] != want {
			t.Errorf("ImagePixels(%s) green at (0, 0) = %v, want %v", tt.name, got[1], want)
		}
	}
}

// TestPreprocessImageNonSquareResize resizes three equal bands (red, green,
// blue) across the long side: the centre crop must show the green band,
// with equal bleed from the red and blue bands at its two ends.
func TestPreprocessImageNonSquareResize(t *testing.T) {
	// bleedTolerance allows one 8-bit level of asymmetry from the
	// resampler's integer rounding, in unitNorm units.
	const bleedTolerance = 2.0 / 255
	const size = 16
	bands := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}}
	for _, wide := range []bool{true, false} {
		img := image.NewNRGBA(image.Rect(0, 0, 96, 32))
		if !wide {
			img = image.NewNRGBA(image.Rect(0, 0, 32, 96))
		}
		for y := range img.Rect.Dy() {
			for x := range img.Rect.Dx() {
				along := x
				if !wide {
					along = y
				}
				img.SetNRGBA(x, y, bands[along/32])
			}
		}
		got, err := ImagePixels(img, size, unitNorm)
		if err != nil {
			t.Fatal(err)
		}
		at := func(along, across, c int) float32 {
			if wide {
				return got[(across*size+along)*Channels+c]
			}
			return got[(along*size+across)*Channels+c]
		}
		name := map[bool]string{true: "96x32 bands", false: "32x96 bands"}[wide]
		for across := range size {
			for _, c := range []int{0, 2} {
				if v := at(size/2, across, c); v != -1 {
					t.Errorf("ImagePixels(%s) channel %d at the centre = %v, want -1", name, c, v)
				}
			}
			if v := at(size/2, across, 1); v != 1 {
				t.Errorf("ImagePixels(%s) green at the centre = %v, want 1", name, v)
			}
			redBleed, blueBleed := at(0, across, 0), at(size-1, across, 2)
			if redBleed <= -1 {
				t.Errorf("ImagePixels(%s) red at the first column = %v, want red bleeding in above -1", name, redBleed)
			}
			if math.Abs(float64(redBleed-blueBleed)) > bleedTolerance {
				t.Errorf("ImagePixels(%s) red at the first column = %v, blue at the last = %v, want equal bleed", name, redBleed, blueBleed)
			}
		}
	}
}

func TestPreprocessImageSubImage(t *testing.T) {
	full := decodeImageFixture(t, "photo512x384.jpg").(*image.YCbCr)
	tests := []struct {
		rect image.Rectangle
		size int
	}{
		{image.Rect(100, 50, 164, 114), 64}, // no resize
		{image.Rect(33, 17, 133, 107), 32},  // resize and crop
	}
	for _, tt := range tests {
		sub := full.SubImage(tt.rect)
		// RGBA64 keeps the 16 bits that YCbCr's conversion to RGB gives.
		copied := image.NewRGBA64(image.Rect(0, 0, tt.rect.Dx(), tt.rect.Dy()))
		for y := range tt.rect.Dy() {
			for x := range tt.rect.Dx() {
				copied.Set(x, y, sub.At(tt.rect.Min.X+x, tt.rect.Min.Y+y))
			}
		}
		got, err := ImagePixels(sub, tt.size, CC12MNorm)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ImagePixels(copied, tt.size, CC12MNorm)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ImagePixels(SubImage(%v))[%d] = %v, want %v as for a copy at the origin", tt.rect, i, got[i], want[i])
			}
		}
	}
}

// hugeImage claims a size without holding pixels.
type hugeImage struct{ rect image.Rectangle }

func (h hugeImage) ColorModel() color.Model { return color.RGBAModel }
func (h hugeImage) Bounds() image.Rectangle { return h.rect }
func (h hugeImage) At(x, y int) color.Color { return color.White }

func TestPreprocessImageRejectsBadArguments(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	badStd := CC12MNorm
	badStd.Std[1] = 0
	infStd := CC12MNorm
	infStd.Std[2] = float32(math.Inf(1))
	nanMean := CC12MNorm
	nanMean.Mean[0] = float32(math.NaN())

	tests := []struct {
		name    string
		img     image.Image
		size    int
		norm    ImageNorm
		dstLen  int
		wantErr error
		want    string
	}{
		{"nil image", nil, 8, CC12MNorm, 192, ErrInvalidInput, "image is nil"},
		{"zero size", img, 0, CC12MNorm, 0, ErrInvalidInput, "image size 0"},
		{"negative size", img, -4, CC12MNorm, 0, ErrInvalidInput, "image size -4"},
		{"short dst", img, 8, CC12MNorm, 191, ErrInvalidInput, "dst has 191 elements, want size*size*3 = 192"},
		{"zero std", img, 8, badStd, 192, ErrInvalidInput, "std[1] = 0"},
		{"infinite std", img, 8, infStd, 192, ErrInvalidInput, "std[2] = +Inf"},
		{"NaN mean", img, 8, nanMean, 192, ErrInvalidInput, "mean[0] = NaN"},
		{"empty image", image.NewNRGBA(image.Rect(0, 0, 0, 5)), 8, CC12MNorm, 192, ErrInvalidImage, "0x5 pixels"},
		{"over pixel limit", hugeImage{image.Rect(0, 0, 10000, 10000)}, 8, CC12MNorm, 192, ErrInvalidImage, "over the limit of 40000000"},
		{"elongated", image.NewGray(image.Rect(0, 0, 1, 200000)), 256, CC12MNorm, 256 * 256 * 3, ErrInvalidImage, "256x51200000"},
	}
	for _, tt := range tests {
		err := PreprocessImage(tt.img, tt.size, tt.norm, make([]float32, tt.dstLen))
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("PreprocessImage(%s) error = %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PreprocessImage(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// TestPreprocessImageMatchesPillow compares with Pillow's composite, resize
// and crop (CASES in golden.py). Pillow composites and resizes in 8 bits.
// The resizing path rounds its 16-bit composite to 8 bits and then
// resamples as Pillow does, so it must give Pillow's bits exactly.
// Without resizing the 16-bit composite is normalized directly: opaque and
// fully transparent pixels still give Pillow's bits, and partly
// transparent ones differ by up to compositeLevelTolerance.
func TestPreprocessImageMatchesPillow(t *testing.T) {
	const compositeLevelTolerance = 0.51
	tests := []struct {
		name   string
		size   int
		resize bool
	}{
		{"emoji64.png", 64, false},
		{"paletted64.png", 64, false},
		{"gray64.png", 64, false},
		{"wide69x64.png", 64, false},
		{"tall64x67.png", 64, false},
		{"emoji64.png", 32, true},
		{"scene96x72.png", 64, true},
		{"scene96x72.png", 32, true},
		{"tiny24x18.png", 32, true},
	}
	for _, tt := range tests {
		src := decodeImageFixture(t, tt.name)
		got, err := ImagePixels(src, tt.size, CC12MNorm)
		if err != nil {
			t.Fatal(err)
		}
		goldenName := filepath.Join("golden", strings.TrimSuffix(tt.name, ".png")+"_"+strconv.Itoa(tt.size)+".png")
		golden := decodeImageFixture(t, goldenName)
		if golden.Bounds() != image.Rect(0, 0, tt.size, tt.size) {
			t.Fatalf("%s has bounds %v, want %dx%d", goldenName, golden.Bounds(), tt.size, tt.size)
		}
		bounds := src.Bounds()
		left := centerCropOffset(bounds.Dx() - tt.size)
		top := centerCropOffset(bounds.Dy() - tt.size)

		var maxLevels float64
		mismatches := 0
		for y := range tt.size {
			for x := range tt.size {
				r, g, b, _ := golden.At(x, y).RGBA()
				_, _, _, alpha := src.At(left+x, top+y).RGBA()
				exact := tt.resize || alpha == 0 || alpha == 0xffff
				for c, level := range []uint32{r >> 8, g >> 8, b >> 8} {
					i := (y*tt.size+x)*Channels + c
					want := normalizeLevel(uint8(level), c, CC12MNorm)
					if exact && got[i] != want {
						mismatches++
						if mismatches <= 3 {
							t.Errorf("ImagePixels(%s, %d)[%d] = %v, want %v as Pillow gives", tt.name, tt.size, i, got[i], want)
						}
					}
					levels := math.Abs(float64(got[i]-want)) * float64(CC12MNorm.Std[c]) * 255
					maxLevels = max(maxLevels, levels)
				}
			}
		}
		if mismatches > 3 {
			t.Errorf("ImagePixels(%s, %d) differs from Pillow at %d values in all", tt.name, tt.size, mismatches)
		}
		if maxLevels > compositeLevelTolerance {
			t.Errorf("ImagePixels(%s, %d) differs from Pillow by %.3f levels, want at most %v", tt.name, tt.size, maxLevels, compositeLevelTolerance)
		}
	}
}

// TestCompositeOnWhiteMatchesPillow composites every pair of 8-bit colour
// level and alpha over white. Rounded to 8 bits, the 16-bit composite must
// equal Pillow's Image.alpha_composite, which golden.py saved as
// golden/composite_levels.png. This is why the resizing path gives
// Pillow's bits for partly transparent 8-bit images too.
func TestCompositeOnWhiteMatchesPillow(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for alpha := range 256 {
		for level := range 256 {
			src.SetNRGBA(level, alpha, color.NRGBA{uint8(level), uint8(255 - level), uint8(7 * level), uint8(alpha)})
		}
	}
	golden := decodeImageFixture(t, filepath.Join("golden", "composite_levels.png"))
	got := compositeOnWhite(src)
	mismatches := 0
	for alpha := range 256 {
		for level := range 256 {
			r, g, b, _ := golden.At(level, alpha).RGBA()
			want := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
			if pixel := got.RGBAAt(level, alpha); pixel != want {
				mismatches++
				if mismatches <= 3 {
					t.Errorf("compositeOnWhite(%v) = %v, want %v as Pillow gives", src.NRGBAAt(level, alpha), pixel, want)
				}
			}
		}
	}
	if mismatches > 3 {
		t.Errorf("compositeOnWhite differs from Pillow at %d of 65536 pixels", mismatches)
	}
}

// TestPreprocessImageHashes pins the output bits of the direct and the
// resizing path. The hashes must be the same on every target, including
// GOOS=js and GOOS=wasip1 under GOARCH=wasm, and amd64 with GOAMD64=v3 and
// arm64, where the compiler may emit FMA instructions. Run other targets
// by hand, for example with
//
//	GOAMD64=v3 go test ./core -run 'Hash'
//	PATH=$PATH:$(go env GOROOT)/lib/wasm GOOS=js GOARCH=wasm go test ./core -run 'Hash'
func TestPreprocessImageHashes(t *testing.T) {
	tests := []struct {
		name string
		size int
		want string
	}{
		{"emoji64.png", 64, "a098df767078bea9"},
		{"photo512x384.jpg", 256, "e5858abdde31453f"},
		{"scene96x72.png", 32, "f2b141193c4da4b3"},
		{"rgba16_32.png", 16, "219ffbe4c4c87c4b"},
	}
	for _, tt := range tests {
		got, err := ImagePixels(decodeImageFixture(t, tt.name), tt.size, CC12MNorm)
		if err != nil {
			t.Fatal(err)
		}
		if hash := hashFloats(got); hash != tt.want {
			t.Errorf("sha256(ImagePixels(%s, %d)) = %s, want %s", tt.name, tt.size, hash, tt.want)
		}
	}
}

// hashFloats returns the first 16 hex digits of the SHA-256 of values as
// little-endian float32 bits.
func hashFloats(values []float32) string {
	h := sha256.New()
	var buf [4]byte
	for _, v := range values {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
		h.Write(buf[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func TestDenormalizeImageRoundTrip(t *testing.T) {
	norms := map[string]ImageNorm{
		"cc12m": CC12MNorm,
		"unit":  unitNorm,
		"imagenet": {
			Mean: [Channels]float32{0.485, 0.456, 0.406},
			Std:  [Channels]float32{0.229, 0.224, 0.225},
		},
	}
	// 256 pixels: every level in every channel, with the channels shifted.
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range 256 {
		img.SetRGBA(i%16, i/16, color.RGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255})
	}
	for name, norm := range norms {
		pixels, err := ImagePixels(img, 16, norm)
		if err != nil {
			t.Fatal(err)
		}
		back := DenormalizeImage(pixels, 16, norm)
		if !bytes.Equal(back.Pix, img.Pix) {
			t.Errorf("DenormalizeImage(ImagePixels(all levels), %s) differs from the input", name)
		}
	}
}

func TestDenormalizeImageClampsAndRounds(t *testing.T) {
	tests := []struct {
		name  string
		value float32
		want  uint8
	}{
		{"zero", -1, 0},
		{"one", 1, 255},
		{"below zero", -3, 0},
		{"above one", 7, 255},
		{"NaN", float32(math.NaN()), 0},
		{"+Inf", float32(math.Inf(1)), 255},
		{"-Inf", float32(math.Inf(-1)), 0},
		// unitNorm maps v to (v+1)/2, so 2*(k+0.5)/255 - 1 sits half a
		// level above k; float32 rounding puts it just below or above.
		{"level 100", float32(100)/255*2 - 1, 100},
		{"level 100.4", float32(100.4)/255*2 - 1, 100},
		{"level 100.6", float32(100.6)/255*2 - 1, 101},
	}
	for _, tt := range tests {
		pixels := []float32{tt.value, tt.value, tt.value}
		got := DenormalizeImage(pixels, 1, unitNorm).Pix
		if want := []uint8{tt.want, tt.want, tt.want, 255}; !bytes.Equal(got, want) {
			t.Errorf("DenormalizeImage(%s) = %v, want %v", tt.name, got, want)
		}
	}
}

func TestDenormalizeImagePanicsOnWrongLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("DenormalizeImage(11 values, size 2) did not panic")
		}
	}()
	DenormalizeImage(make([]float32, 11), 2, unitNorm)
}

func BenchmarkPreprocessImage(b *testing.B) {
	benchmarks := []struct {
		name string
		file string
		size int
	}{
		{"emoji64.png_to_64", "emoji64.png", 64},
		{"photo512x384.jpg_to_256", "photo512x384.jpg", 256},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			img := decodeImageFixture(b, bm.file)
			dst := make([]float32, bm.size*bm.size*Channels)
			b.ReportAllocs()
			for b.Loop() {
				if err := PreprocessImage(img, bm.size, CC12MNorm, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
