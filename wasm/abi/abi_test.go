package abi

import (
	"errors"
	"image"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func TestPackUnpack(t *testing.T) {
	tests := []struct {
		packed   uint64
		wantPtr  uint32
		wantLen  uint32
		wantCode Code
		wantOK   bool
	}{
		{Pack(0x1000, 12), 0x1000, 12, CodeOK, true},
		{Pack(math.MaxUint32, math.MaxUint32), math.MaxUint32, math.MaxUint32, CodeOK, true},
		{PackError(CodeInvalidImage), 0, 0, CodeInvalidImage, false},
		{0, 0, 0, CodeOK, false},
	}
	for _, tt := range tests {
		ptr, n, code, ok := Unpack(tt.packed)
		if ptr != tt.wantPtr || n != tt.wantLen || code != tt.wantCode || ok != tt.wantOK {
			t.Errorf("Unpack(%#x) = %#x, %d, %v, %v, want %#x, %d, %v, %v",
				tt.packed, ptr, n, code, ok, tt.wantPtr, tt.wantLen, tt.wantCode, tt.wantOK)
		}
	}
}

func TestCodeOfMatchesErr(t *testing.T) {
	for code := CodeInvalidRequest; code <= CodeInternal; code++ {
		wrapped := errors.Join(errors.New("context"), code.Err())
		if got := CodeOf(wrapped); got != code {
			t.Errorf("CodeOf(%v.Err()) = %v, want %v", code, got, code)
		}
	}
	if got := CodeOf(errors.New("plain")); got != CodeInternal {
		t.Errorf("CodeOf(plain error) = %v, want %v", got, CodeInternal)
	}
	if got := CodeOf(nil); got != CodeOK {
		t.Errorf("CodeOf(nil) = %v, want %v", got, CodeOK)
	}
}

func TestEmbedRequestRoundTrip(t *testing.T) {
	pixels := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range pixels.Pix {
		pixels.Pix[i] = byte(i)
	}
	tests := []struct {
		name string
		req  EmbedRequest
	}{
		{"text only", EmbedRequest{Text: "a red apple", Pooling: core.PoolMean}},
		{"encoded", EmbedRequest{Image: Image{Encoded: []byte{0x89, 'P', 'N', 'G'}}, Text: "x"}},
		{"empty encoded", EmbedRequest{Image: Image{Encoded: []byte{}}}},
		{"pixels", EmbedRequest{Image: Image{Pixels: pixels}, Pooling: core.PoolCLS}},
	}
	for _, tt := range tests {
		data, err := EncodeEmbedRequest(tt.req)
		if err != nil {
			t.Fatalf("EncodeEmbedRequest(%s) failed: %v", tt.name, err)
		}
		got, err := DecodeEmbedRequest(data)
		if err != nil {
			t.Fatalf("DecodeEmbedRequest(%s) failed: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.req) {
			t.Errorf("DecodeEmbedRequest(Encode(%s)) = %+v, want %+v", tt.name, got, tt.req)
		}
	}
}

func TestPixelsEncodeWithoutStridePadding(t *testing.T) {
	full := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := range full.Pix {
		full.Pix[i] = byte(i)
	}
	sub := full.SubImage(image.Rect(1, 1, 3, 3)).(*image.NRGBA)
	data, err := EncodeEmbedRequest(EmbedRequest{Image: Image{Pixels: sub}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEmbedRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 2 {
		for x := range 2 {
			if g, w := got.Image.Pixels.NRGBAAt(x, y), sub.NRGBAAt(x+1, y+1); g != w {
				t.Errorf("pixel (%d, %d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

func TestReconstructRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  ReconstructRequest
	}{
		{"random masks", ReconstructRequest{Text: "a cat", Options: core.ReconstructOptions{
			ImageMaskRatio: 0.75, TextMaskRatio: 0.5, Seed: math.MaxUint64, TopK: 7}}},
		{"custom masks", ReconstructRequest{Image: Image{Encoded: []byte{1, 2}}, Options: core.ReconstructOptions{
			Masks: &core.Masks{Image: []bool{true, false, true}, Text: []bool{false, true}}}}},
		{"custom image mask only", ReconstructRequest{Options: core.ReconstructOptions{
			Masks: &core.Masks{Image: []bool{true}}}}},
	}
	for _, tt := range tests {
		data, err := EncodeReconstructRequest(tt.req)
		if err != nil {
			t.Fatalf("EncodeReconstructRequest(%s) failed: %v", tt.name, err)
		}
		got, err := DecodeReconstructRequest(data)
		if err != nil {
			t.Fatalf("DecodeReconstructRequest(%s) failed: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.req) {
			t.Errorf("DecodeReconstructRequest(Encode(%s)) = %+v, want %+v", tt.name, got, tt.req)
		}
	}
}

func TestEncodeRejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name   string
		encode func() error
		wantIs error
	}{
		{"encoded and pixels", func() error {
			_, err := EncodeEmbedRequest(EmbedRequest{Image: Image{Encoded: []byte{1}, Pixels: image.NewNRGBA(image.Rect(0, 0, 1, 1))}})
			return err
		}, core.ErrInvalidInput},
		{"text over MaxTextBytes", func() error {
			_, err := EncodeEmbedRequest(EmbedRequest{Text: strings.Repeat("a", MaxTextBytes+1)})
			return err
		}, core.ErrInvalidInput},
		{"empty pixels", func() error {
			_, err := EncodeEmbedRequest(EmbedRequest{Image: Image{Pixels: image.NewNRGBA(image.Rect(0, 0, 0, 0))}})
			return err
		}, core.ErrInvalidImage},
		{"unknown pooling", func() error {
			_, err := EncodeEmbedRequest(EmbedRequest{Text: "x", Pooling: 2})
			return err
		}, core.ErrInvalidInput},
		{"negative top-k", func() error {
			_, err := EncodeReconstructRequest(ReconstructRequest{Text: "x", Options: core.ReconstructOptions{TopK: -1}})
			return err
		}, core.ErrInvalidInput},
	}
	for _, tt := range tests {
		if err := tt.encode(); !errors.Is(err, tt.wantIs) {
			t.Errorf("encode(%s) = %v, want %v", tt.name, err, tt.wantIs)
		}
	}
}

func TestDecodeRejectsMalformedRequests(t *testing.T) {
	valid, err := EncodeEmbedRequest(EmbedRequest{Text: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "image kind"},
		{"unknown image kind", []byte{9}, "kind 9 is unknown"},
		{"text length past the end", []byte{0, 0xff, 0xff, 0, 0}, "65535 elements need 65535 bytes"},
		{"pooling 2", append(valid[:len(valid)-1:len(valid)-1], 2), "pooling 2 is unknown"},
		{"trailing byte", append(valid[:len(valid):len(valid)], 0), "1 trailing bytes"},
		{"pixels 0 wide", []byte{2, 0, 0, 0, 0, 1, 0, 0, 0}, "0x1"},
		{"pixels truncated", []byte{2, 2, 0, 0, 0, 2, 0, 0, 0, 1, 2, 3}, "needs 16 bytes, 3 left"},
		{"pixels over the limit", []byte{2, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0}, "over the limit"},
	}
	for _, tt := range tests {
		_, err := DecodeEmbedRequest(tt.data)
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeEmbedRequest(%s) = %v, want ErrInvalidRequest containing %q", tt.name, err, tt.want)
		}
	}

	// A mask entry other than 0 or 1.
	data, err := EncodeReconstructRequest(ReconstructRequest{Text: "x", Options: core.ReconstructOptions{
		Masks: &core.Masks{Text: []bool{true}}}})
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] = 7
	if _, err := DecodeReconstructRequest(data); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "entry 0 is 7") {
		t.Errorf("DecodeReconstructRequest(mask entry 7) = %v, want ErrInvalidRequest naming the entry", err)
	}
}

func testReconstruction() *Reconstruction {
	square := func(fill byte) *image.RGBA {
		img := image.NewRGBA(image.Rect(0, 0, 2, 2))
		for i := range img.Pix {
			img.Pix[i] = fill + byte(i)
		}
		return img
	}
	return &Reconstruction{
		Masks:     core.Masks{Image: []bool{true, false, false, true}, Text: []bool{false, true, true}},
		Image:     &core.ImageReconstruction{Original: square(0), Masked: square(50), Reconstructed: square(100)},
		PixelPred: []float32{0.5, -1, float32(math.Inf(1)), 3e-38},
		Text: &core.TextReconstruction{
			Tokens: []string{"a", "red", "apple"},
			Hidden: []bool{false, true, true},
			Predictions: []core.WordPrediction{
				{Position: 1, Original: "red", Candidates: []core.WordCandidate{{ID: 2417, Token: "red", Prob: 0.25}, {ID: 2630, Token: "green", Prob: 0.125}}},
				{Position: 2, Original: "apple"},
			},
		},
	}
}

func TestReconstructionRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    *Reconstruction
	}{
		{"image and text", testReconstruction()},
		{"text only", &Reconstruction{Masks: core.Masks{Text: []bool{true}}, Text: &core.TextReconstruction{
			Tokens: []string{"x"}, Hidden: []bool{true}}}},
		{"image only", &Reconstruction{Masks: testReconstruction().Masks, Image: testReconstruction().Image,
			PixelPred: []float32{1}}},
	}
	for _, tt := range tests {
		data, err := EncodeReconstruction(tt.r)
		if err != nil {
			t.Fatalf("EncodeReconstruction(%s) failed: %v", tt.name, err)
		}
		got, err := DecodeReconstruction(data)
		if err != nil {
			t.Fatalf("DecodeReconstruction(%s) failed: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.r) {
			t.Errorf("DecodeReconstruction(Encode(%s)) = %+v, want %+v", tt.name, got, tt.r)
		}
	}
}

func TestDecodeReconstructionRejectsTruncation(t *testing.T) {
	data, err := EncodeReconstruction(testReconstruction())
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := DecodeReconstruction(data[:n]); !errors.Is(err, ErrInvalidResponse) {
			t.Fatalf("DecodeReconstruction(first %d of %d bytes) = %v, want ErrInvalidResponse", n, len(data), err)
		}
	}
}

func TestConfigRoundTrip(t *testing.T) {
	for _, name := range core.PresetNames() {
		cfg, err := core.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeConfig(EncodeConfig(cfg))
		if err != nil || got != cfg {
			t.Errorf("DecodeConfig(EncodeConfig(%s)) = %+v, %v, want %+v", name, got, err, cfg)
		}
	}
	if _, err := DecodeConfig(make([]byte, 44)); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("DecodeConfig(all zero) = %v, want ErrInvalidResponse", err)
	}
}

func TestEmbeddingRoundTrip(t *testing.T) {
	want := []float32{1, -0.5, float32(math.NaN()), 0}
	got, err := DecodeEmbedding(EncodeEmbedding(want))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("DecodeEmbedding(Encode)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := DecodeEmbedding([]byte{5, 0, 0, 0, 1}); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("DecodeEmbedding(count 5, 1 byte) = %v, want ErrInvalidResponse", err)
	}
}

// The decoders face bytes from the other side of the boundary, so any
// input must give a value or an error, never a panic or a huge allocation.
func FuzzDecodeRequests(f *testing.F) {
	for _, req := range []EmbedRequest{{Text: "a cat"}, {Image: Image{Encoded: []byte{1, 2, 3}}, Pooling: core.PoolMean}} {
		data, _ := EncodeEmbedRequest(req)
		f.Add(data)
	}
	data, _ := EncodeReconstructRequest(ReconstructRequest{Text: "x", Options: core.ReconstructOptions{
		Masks: &core.Masks{Image: []bool{true}, Text: []bool{false}}}})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeEmbedRequest(data)
		DecodeReconstructRequest(data)
	})
}

func FuzzDecodeResponses(f *testing.F) {
	data, _ := EncodeReconstruction(testReconstruction())
	f.Add(data)
	f.Add(EncodeEmbedding([]float32{1, 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeReconstruction(data)
		DecodeEmbedding(data)
		DecodeConfig(data)
	})
}

// TestDecodeRequestsRejectOverMaxRequestBytes decodes zero-filled requests
// one byte over MaxRequestBytes. Both decoders must reject them by length
// alone; the buffer's pages are never touched, so the test allocates no
// real memory.
func TestDecodeRequestsRejectOverMaxRequestBytes(t *testing.T) {
	big := make([]byte, MaxRequestBytes+1)
	want := "over the limit of 268435456 (MaxRequestBytes)"
	if _, err := DecodeEmbedRequest(big); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeEmbedRequest(%d bytes) error = %v, want ErrInvalidRequest containing %q", len(big), err, want)
	}
	if _, err := DecodeReconstructRequest(big); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeReconstructRequest(%d bytes) error = %v, want ErrInvalidRequest containing %q", len(big), err, want)
	}
	// A request at the limit passes the length check and fails later, on
	// its content: all zeros is no image, no caption and pooling 0, with
	// bytes left over.
	if _, err := DecodeEmbedRequest(big[:MaxRequestBytes]); err == nil || strings.Contains(err.Error(), "MaxRequestBytes") {
		t.Errorf("DecodeEmbedRequest(%d zero bytes) error = %v, want one about its content, not its length", MaxRequestBytes, err)
	}
}

// TestDecodeRequestsRejectPixelsOverLimit decodes a pixel image whose
// header claims 8000x5001 pixels, one row over core.MaxImagePixels, with
// no pixel data: the size must be rejected from the header.
func TestDecodeRequestsRejectPixelsOverLimit(t *testing.T) {
	var e encoder
	e.u8(imagePixels)
	e.u32(8000)
	e.u32(5001)
	want := "pixels are 8000x5001, over the limit of 40000000 pixels (core.MaxImagePixels)"
	if _, err := DecodeEmbedRequest(e.buf); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeEmbedRequest(8000x5001 pixel header) error = %v, want ErrInvalidRequest containing %q", err, want)
	}
	if _, err := DecodeReconstructRequest(e.buf); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeReconstructRequest(8000x5001 pixel header) error = %v, want ErrInvalidRequest containing %q", err, want)
	}
}
