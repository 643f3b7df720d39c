package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"testing"
)

// TestResizeBicubicMatchesPillow compares resizeBicubic bit for bit with
// Pillow's Image.resize(BICUBIC) on 8-bit RGB images. The references come
// from RESIZE_CASES in testdata/images/golden.py, regenerated from the
// repository root with
//
//	/usr/bin/python3 testdata/images/golden.py
func TestResizeBicubicMatchesPillow(t *testing.T) {
	tests := []struct {
		name          string
		box           image.Rectangle
		width, height int
	}{
		{"tiny24x18.png", image.Rect(0, 0, 24, 18), 42, 32},
		{"tiny24x18.png", image.Rect(0, 0, 24, 18), 7, 5},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), 64, 48},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), 33, 50},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), 96, 20},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), 20, 72},
		{"scene96x72.png", image.Rect(0, 0, 96, 72), 1, 1},
		{"scene96x72.png", image.Rect(40, 0, 41, 72), 5, 30},
		{"scene96x72.png", image.Rect(40, 0, 41, 72), 1, 9},
		{"scene96x72.png", image.Rect(0, 30, 96, 31), 13, 3},
		{"scene96x72.png", image.Rect(17, 5, 18, 6), 4, 3},
		{"wide69x64.png", image.Rect(0, 0, 69, 64), 31, 29},
		{"gray64.png", image.Rect(0, 0, 64, 64), 100, 37},
	}
	for _, tt := range tests {
		full := decodeImageFixture(t, tt.name)
		// The fixtures are opaque 8-bit images, so compositing only
		// converts them to *image.RGBA.
		src := compositeOnWhite(full).SubImage(tt.box).(*image.RGBA)
		goldenName := fmt.Sprintf("resize_%s_%d-%d-%d-%d_%dx%d.png", strings.TrimSuffix(tt.name, ".png"),
			tt.box.Min.X, tt.box.Min.Y, tt.box.Max.X, tt.box.Max.Y, tt.width, tt.height)
		golden := decodeImageFixture(t, filepath.Join("golden", goldenName))
		if golden.Bounds() != image.Rect(0, 0, tt.width, tt.height) {
			t.Fatalf("%s has bounds %v, want %dx%d", goldenName, golden.Bounds(), tt.width, tt.height)
		}

		got := resizeBicubic(src, tt.width, tt.height)
		if got.Rect != image.Rect(0, 0, tt.width, tt.height) {
			t.Fatalf("resizeBicubic(%s %v, %dx%d) has bounds %v, want (0,0)-(%d,%d)",
				tt.name, tt.box, tt.width, tt.height, got.Rect, tt.width, tt.height)
		}
		mismatches := 0
		for y := range tt.height {
			for x := range tt.width {
				r, g, b, _ := golden.At(x, y).RGBA()
				want := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
				if pixel := got.RGBAAt(x, y); pixel != want {
					mismatches++
					if mismatches <= 3 {
						t.Errorf("resizeBicubic(%s %v, %dx%d) at (%d, %d) = %v, want %v as Pillow gives",
							tt.name, tt.box, tt.width, tt.height, x, y, pixel, want)
					}
				}
			}
		}
		if mismatches > 3 {
			t.Errorf("resizeBicubic(%s %v, %dx%d) differs from Pillow at %d pixels in all",
				tt.name, tt.box, tt.width, tt.height, mismatches)
		}
	}
}

// TestResizeBicubicKeepsConstantImages resizes images of one colour up,
// down and along one axis: every output pixel must keep the colour,
// including the extreme levels where the rounding of the fixed-point
// weights could push a sum past 255 or below 0.
func TestResizeBicubicKeepsConstantImages(t *testing.T) {
	sizes := []struct{ srcWidth, srcHeight, width, height int }{
		{1, 1, 7, 3}, {5, 4, 1, 1}, {24, 18, 42, 32}, {512, 384, 341, 256}, {3, 100, 3, 7}, {100, 3, 9, 3}, {2, 2, 255, 1},
	}
	colours := []color.RGBA{{0, 0, 0, 255}, {255, 255, 255, 255}, {1, 128, 254, 255}}
	for _, s := range sizes {
		for _, c := range colours {
			src := image.NewRGBA(image.Rect(0, 0, s.srcWidth, s.srcHeight))
			for i := 0; i < len(src.Pix); i += 4 {
				src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = c.R, c.G, c.B, c.A
			}
			got := resizeBicubic(src, s.width, s.height)
			for i := 0; i < len(got.Pix); i += 4 {
				pixel := color.RGBA{got.Pix[i], got.Pix[i+1], got.Pix[i+2], got.Pix[i+3]}
				if pixel != c {
					t.Errorf("resizeBicubic(%dx%d of %v, %dx%d) pixel %d = %v, want %v",
						s.srcWidth, s.srcHeight, c, s.width, s.height, i/4, pixel, c)
					break
				}
			}
		}
	}
}

// TestResizeBicubicSameSizeCopies checks that a resize to the source's own
// size copies the pixels, from a sub-image whose bounds do not start at
// the origin, into a new image at the origin.
func TestResizeBicubicSameSizeCopies(t *testing.T) {
	full := compositeOnWhite(decodeImageFixture(t, "tiny24x18.png"))
	box := image.Rect(3, 2, 13, 9)
	sub := full.SubImage(box).(*image.RGBA)
	got := resizeBicubic(sub, box.Dx(), box.Dy())
	if got.Rect != image.Rect(0, 0, box.Dx(), box.Dy()) {
		t.Fatalf("resizeBicubic(SubImage(%v), same size).Rect = %v, want it at the origin", box, got.Rect)
	}
	for y := range box.Dy() {
		for x := range box.Dx() {
			if pixel, want := got.RGBAAt(x, y), sub.RGBAAt(box.Min.X+x, box.Min.Y+y); pixel != want {
				t.Errorf("resizeBicubic(SubImage(%v), same size) at (%d, %d) = %v, want %v", box, x, y, pixel, want)
			}
		}
	}
	got.Pix[0]++
	if got.Pix[0] == sub.Pix[0] {
		t.Errorf("resizeBicubic(SubImage(%v), same size) shares pixels with its source, want a copy", box)
	}
}

// TestResizeBicubicSubImage checks that resizing a sub-image gives the
// same pixels as resizing a copy of it at the origin, for each mix of
// passes.
func TestResizeBicubicSubImage(t *testing.T) {
	full := compositeOnWhite(decodeImageFixture(t, "scene96x72.png"))
	box := image.Rect(11, 7, 60, 41)
	sub := full.SubImage(box).(*image.RGBA)
	copied := resizeBicubic(sub, box.Dx(), box.Dy())
	for _, size := range []image.Point{{20, 15}, {80, 34}, {49, 60}, {7, 34}} {
		got := resizeBicubic(sub, size.X, size.Y)
		want := resizeBicubic(copied, size.X, size.Y)
		if string(got.Pix) != string(want.Pix) {
			t.Errorf("resizeBicubic(SubImage(%v), %dx%d) differs from resizing a copy at the origin", box, size.X, size.Y)
		}
	}
}

func TestResizeBicubicPanicsOnEmptySize(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 4, 4))
	tests := []struct {
		name          string
		src           *image.RGBA
		width, height int
	}{
		{"zero width", src, 0, 4},
		{"zero height", src, 4, 0},
		{"empty source", image.NewRGBA(image.Rect(0, 0, 0, 4)), 4, 4},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("resizeBicubic(%s) did not panic", tt.name)
				}
			}()
			resizeBicubic(tt.src, tt.width, tt.height)
		}()
	}
}

func TestBicubicKernel(t *testing.T) {
	tests := []struct{ x, want float64 }{
		{0, 1},
		{0.5, 0.5625},
		{-0.5, 0.5625},
		{1, 0},
		{1.5, -0.0625},
		{-1.5, -0.0625},
		{2, 0},
		{3, 0},
	}
	for _, tt := range tests {
		if got := bicubicKernel(tt.x); got != tt.want {
			t.Errorf("bicubicKernel(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
}

// TestAxisWeightsRows checks every filter table between sides of 1 to
// maxSide pixels: spans stay inside the source, each row sums to one in
// fixed point up to the rounding of its weights, and no weighted sum of
// 8-bit levels can overflow the int32 accumulator.
func TestAxisWeightsRows(t *testing.T) {
	const maxSide = 70
	for inSize := 1; inSize <= maxSide; inSize++ {
		for outSize := 1; outSize <= maxSide; outSize++ {
			w := newAxisWeights(inSize, outSize)
			for i, span := range w.spans {
				start, count := int(span.start), int(span.count)
				if start < 0 || count < 1 || count > w.taps || start+count > inSize {
					t.Fatalf("newAxisWeights(%d, %d) span %d = %+v with %d taps, want it inside [0, %d)",
						inSize, outSize, i, span, w.taps, inSize)
				}
				var sum, positive, negative int64
				for _, weight := range w.weights[i*w.taps : i*w.taps+count] {
					sum += int64(weight)
					if weight > 0 {
						positive += int64(weight)
					} else {
						negative += int64(weight)
					}
				}
				// Each weight is rounded on its own, so the sum is off by
				// at most half a unit per tap.
				if diff := sum - 1<<weightBits; 2*diff > int64(count) || -2*diff > int64(count) {
					t.Errorf("newAxisWeights(%d, %d) row %d sums to %d, want %d within %d/2",
						inSize, outSize, i, sum, 1<<weightBits, count)
				}
				if maxSum := halfLevel + 255*positive; maxSum > 1<<31-1 {
					t.Errorf("newAxisWeights(%d, %d) row %d can sum to %d, want at most the int32 maximum",
						inSize, outSize, i, maxSum)
				}
				if minSum := halfLevel + 255*negative; minSum < -1<<31 {
					t.Errorf("newAxisWeights(%d, %d) row %d can sum to %d, want at least the int32 minimum",
						inSize, outSize, i, minSum)
				}
			}
		}
	}
}

// TestAxisWeightsHash pins the bits of the filter tables between sides of
// 1 to 70 pixels and of the sides that the benchmark photo and a long
// panorama resize. Each table comes from float64 arithmetic, so the hash
// fails if a target or compiler option fuses a multiply and an add (for
// example GOAMD64=v3 or arm64) where the code forbids it, or evaluates an
// expression in another order. Run it there with
//
//	GOAMD64=v3 go test ./core -run 'Hash'
//	PATH=$PATH:$(go env GOROOT)/lib/wasm GOOS=js GOARCH=wasm go test ./core -run 'Hash'
func TestAxisWeightsHash(t *testing.T) {
	const want = "6121dc50d88be389"
	h := sha256.New()
	var buf [4]byte
	write := func(v int32) {
		binary.LittleEndian.PutUint32(buf[:], uint32(v))
		h.Write(buf[:])
	}
	sides := [][2]int{{512, 341}, {384, 256}, {341, 512}, {4000, 224}, {6000, 1000}, {224, 4000}}
	for inSize := 1; inSize <= 70; inSize++ {
		for outSize := 1; outSize <= 70; outSize++ {
			sides = append(sides, [2]int{inSize, outSize})
		}
	}
	for _, s := range sides {
		w := newAxisWeights(s[0], s[1])
		write(int32(w.taps))
		for i, span := range w.spans {
			write(span.start)
			write(span.count)
			for _, weight := range w.weights[i*w.taps : (i+1)*w.taps] {
				write(weight)
			}
		}
	}
	if got := hex.EncodeToString(h.Sum(nil))[:16]; got != want {
		t.Errorf("sha256(newAxisWeights for %d side pairs) = %s, want %s", len(sides), got, want)
	}
}

// BenchmarkResizeBicubic resizes the 512x384 photo fixture to 341x256, the
// resize that PreprocessImage runs for a model of image size 256.
func BenchmarkResizeBicubic(b *testing.B) {
	src := compositeOnWhite(decodeImageFixture(b, "photo512x384.jpg"))
	b.ReportAllocs()
	for b.Loop() {
		resizeBicubic(src, 341, 256)
	}
}
