//go:build ignore

// Command gen writes the image fixtures of this folder: small valid PNG and
// JPEG files of every colour type the decoder returns, and malformed files
// that the decoder must reject. Every file is derived from fixed formulas and
// a fixed PRNG seed, so a rerun with the same Go version writes the same
// bytes.
//
// Run from the repository root:
//
//	go run testdata/images/gen.go
package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

const dir = "testdata/images"

func main() {
	rng := rand.New(rand.NewPCG(1, 2))

	emoji := encodePNG(emojiLike(rng, 64))
	write("emoji64.png", emoji)
	photo := encodeJPEG(photoLike(rng, 512, 384), 90)
	write("photo512x384.jpg", photo)

	write("scene96x72.png", encodePNG(sceneLike(96, 72)))
	write("tiny24x18.png", encodePNG(blocks(rng, 24, 18)))
	write("wide69x64.png", encodePNG(coordinates(69, 64)))
	write("tall64x67.png", encodePNG(coordinates(64, 67)))
	write("gray64.png", encodePNG(grayRamp(64)))
	write("paletted64.png", encodePNG(palettedSprite(rng, 64)))
	write("rgba16_32.png", encodePNG(deepColour(32)))
	write("gray16_32.png", encodePNG(deepGray(32)))

	small := encodePNG(emojiLike(rng, 16))
	write("small16.png", small)
	smallJPEG := encodeJPEG(photoLike(rng, 16, 16), 90)
	write("small16.jpg", smallJPEG)

	// Malformed files.
	write("truncated.png", emoji[:len(emoji)/2])
	write("truncated.jpg", photo[:len(photo)/2])
	random := make([]byte, 256)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	write("random.bin", random)
	write("tiny.gif", encodeGIF())
	write("tiny.bmp", tinyBMP())
	write("tiny.webp", tinyWebPHeader())
	write("huge_header.png", pngHeaderOnly(100000, 100000))
	write("zero_width.png", pngHeaderOnly(0, 64))
	write("huge_header.jpg", patchJPEGSize(smallJPEG, 65000, 65000))
	write("zero_height.jpg", patchJPEGSize(smallJPEG, 16, 0))
	write("bad_crc.png", flipIDATByte(small))
}

func write(name string, data []byte) {
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		log.Fatal(err)
	}
}

func encodePNG(img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(img image.Image, quality int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func encodeGIF() []byte {
	palette := color.Palette{color.Black, color.White}
	img := image.NewPaletted(image.Rect(0, 0, 4, 4), palette)
	img.SetColorIndex(1, 1, 1)
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

// emojiLike draws an anti-aliased disc on a transparent background, as
// emoji PNGs are: alpha falls from 255 to 0 across a one-pixel ring, and
// fully transparent pixels hold random colours.
func emojiLike(rng *rand.Rand, side int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	centre := float64(side) / 2
	radius := float64(side) * 0.375
	for y := range side {
		for x := range side {
			dx, dy := float64(x)+0.5-centre, float64(y)+0.5-centre
			coverage := math.Min(math.Max(radius-math.Hypot(dx, dy), 0), 1)
			alpha := uint8(math.Round(coverage * 255))
			if alpha == 0 {
				img.SetNRGBA(x, y, color.NRGBA{uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), 0})
				continue
			}
			shade := uint8(255 - 2*y)
			img.SetNRGBA(x, y, color.NRGBA{255, shade, uint8(4 * x), alpha})
		}
	}
	return img
}

// photoLike draws smooth gradients, a few hard-edged shapes and mild noise,
// so a resize has both flat areas and edges to handle.
func photoLike(rng *rand.Rand, width, height int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			r := 255 * float64(x) / float64(width)
			g := 255 * float64(y) / float64(height)
			b := 128 + 100*math.Sin(float64(x+y)/23)
			if (x/(width/8+1)+y/(height/6+1))%5 == 0 {
				r, g, b = 240, 230, 40
			}
			noise := float64(rng.IntN(9)) - 4
			img.SetRGBA(x, y, color.RGBA{clampByte(r + noise), clampByte(g + noise), clampByte(b + noise), 255})
		}
	}
	return img
}

// sceneLike draws a checkerboard over a gradient: sharp edges every 6
// pixels, so resampling differences show.
func sceneLike(width, height int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			base := uint8(255 * x / width)
			if (x/6+y/6)%2 == 0 {
				img.SetRGBA(x, y, color.RGBA{base, 40, 255 - base, 255})
			} else {
				img.SetRGBA(x, y, color.RGBA{30, uint8(255 * y / height), 90, 255})
			}
		}
	}
	return img
}

// blocks fills 3x3 blocks with random opaque colours.
func blocks(rng *rand.Rand, width, height int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for by := 0; by < height; by += 3 {
		for bx := 0; bx < width; bx += 3 {
			c := color.RGBA{uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), 255}
			for y := by; y < min(by+3, height); y++ {
				for x := bx; x < min(bx+3, width); x++ {
					img.SetRGBA(x, y, c)
				}
			}
		}
	}
	return img
}

// coordinates encodes each pixel's column in red and row in green, so a
// crop's offset can be read off its first pixel.
func coordinates(width, height int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			img.SetRGBA(x, y, color.RGBA{uint8(3 * x), uint8(3 * y), uint8(x * y), 255})
		}
	}
	return img
}

func grayRamp(side int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			img.SetGray(x, y, color.Gray{uint8((x*4 + y) % 256)})
		}
	}
	return img
}

// palettedSprite uses a palette with one fully transparent entry that holds
// a colour, one half-transparent entry and opaque entries.
func palettedSprite(rng *rand.Rand, side int) *image.Paletted {
	palette := color.Palette{
		color.NRGBA{200, 10, 30, 0},
		color.NRGBA{0, 0, 255, 128},
		color.NRGBA{255, 0, 0, 255},
		color.NRGBA{0, 160, 0, 255},
		color.NRGBA{20, 20, 20, 255},
	}
	img := image.NewPaletted(image.Rect(0, 0, side, side), palette)
	for y := range side {
		for x := range side {
			img.SetColorIndex(x, y, uint8(rng.IntN(len(palette))))
		}
	}
	return img
}

func deepColour(side int) *image.NRGBA64 {
	img := image.NewNRGBA64(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			img.SetNRGBA64(x, y, color.NRGBA64{
				uint16(x * 2000), uint16(y * 2000), uint16(x*y*61 + 7), uint16(65535 - x*y*40),
			})
		}
	}
	return img
}

func deepGray(side int) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			img.SetGray16(x, y, color.Gray16{uint16(x*2048 + y*7)})
		}
	}
	return img
}

func clampByte(v float64) uint8 {
	return uint8(math.Min(math.Max(math.Round(v), 0), 255))
}

// pngHeaderOnly writes a PNG signature and an IHDR chunk (8-bit RGBA) with a
// valid CRC and no pixel data.
func pngHeaderOnly(width, height uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], width)
	binary.BigEndian.PutUint32(ihdr[4:], height)
	ihdr[8], ihdr[9] = 8, 6 // bit depth 8, colour type RGBA
	writeChunk(&buf, "IHDR", ihdr)
	return buf.Bytes()
}

func writeChunk(buf *bytes.Buffer, kind string, data []byte) {
	var length [4]byte
	binary.BigEndian.PutUint32(length[:], uint32(len(data)))
	buf.Write(length[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(kind))
	crc.Write(data)
	buf.WriteString(kind)
	buf.Write(data)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	buf.Write(sum[:])
}

// patchJPEGSize copies a baseline JPEG and rewrites the height and width in
// its SOF0 segment.
func patchJPEGSize(data []byte, width, height uint16) []byte {
	out := bytes.Clone(data)
	sof := bytes.Index(out, []byte{0xff, 0xc0})
	if sof < 0 {
		log.Fatal("no SOF0 marker")
	}
	// Marker (2 bytes), length (2), precision (1), then height and width.
	binary.BigEndian.PutUint16(out[sof+5:], height)
	binary.BigEndian.PutUint16(out[sof+7:], width)
	return out
}

// flipIDATByte inverts one byte of the first IDAT chunk's data, which
// breaks the chunk's CRC.
func flipIDATByte(data []byte) []byte {
	out := bytes.Clone(data)
	idat := bytes.Index(out, []byte("IDAT"))
	if idat < 0 {
		log.Fatal("no IDAT chunk")
	}
	out[idat+6] ^= 0xff
	return out
}

// tinyBMP is the 14-byte file header and 40-byte info header of a 1x1
// 24-bit BMP, followed by one pixel row.
func tinyBMP() []byte {
	b := make([]byte, 58)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[2:], 58)
	binary.LittleEndian.PutUint32(b[10:], 54)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], 1)
	binary.LittleEndian.PutUint32(b[22:], 1)
	binary.LittleEndian.PutUint16(b[26:], 1)
	binary.LittleEndian.PutUint16(b[28:], 24)
	return b
}

// tinyWebPHeader is the RIFF container header of a WebP file with an empty
// VP8L chunk, which is enough for a format sniffer to recognise it.
func tinyWebPHeader() []byte {
	b := make([]byte, 20)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], 12)
	copy(b[8:], "WEBPVP8L")
	return b
}
