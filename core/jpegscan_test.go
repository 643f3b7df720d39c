package core

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
)

// jpegWithScans returns a 16x16 baseline JPEG whose one scan is repeated
// to make scans scans. Go's decoder runs each one, as it runs the scans
// of a progressive JPEG.
func jpegWithScans(tb testing.TB, scans int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.SetRGBA(0, 0, color.RGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	data := buf.Bytes()
	sos := bytes.Index(data, []byte{0xff, 0xda})
	eoi := bytes.LastIndex(data, []byte{0xff, 0xd9})
	if sos < 0 || eoi < sos {
		tb.Fatalf("encoded JPEG has no scan: SOS at %d, EOI at %d", sos, eoi)
	}
	out := bytes.Clone(data[:eoi])
	for range scans - 1 {
		out = append(out, data[sos:eoi]...)
	}
	return append(out, data[eoi:]...)
}

// TestDecodeImageRejectsManyJPEGScans decodes JPEGs with maxJPEGScans
// scans and one more. A progressive JPEG of a few hundred kilobytes with
// thousands of repeated scans took minutes to decode; it must be rejected
// before the decoder runs.
func TestDecodeImageRejectsManyJPEGScans(t *testing.T) {
	if err := checkJPEGScans(jpegWithScans(t, maxJPEGScans), maxJPEGScans); err != nil {
		t.Errorf("checkJPEGScans(%d scans) error = %v, want nil", maxJPEGScans, err)
	}
	if _, err := DecodeImage(jpegWithScans(t, 1)); err != nil {
		t.Errorf("DecodeImage(1 scan) error = %v, want nil", err)
	}
	_, err := DecodeImage(jpegWithScans(t, maxJPEGScans+1))
	if !errors.Is(err, ErrInvalidImage) {
		t.Fatalf("DecodeImage(%d scans) error = %v, want ErrInvalidImage", maxJPEGScans+1, err)
	}
	if want := "jpeg image has more than 100 scans"; !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeImage(%d scans) error = %q, want it to contain %q", maxJPEGScans+1, err, want)
	}
}

// TestCheckJPEGScansStopsOnMalformedData walks truncated and corrupt
// marker structures: the walk must stop without an error and leave them to
// the decoder.
func TestCheckJPEGScansStopsOnMalformedData(t *testing.T) {
	valid := jpegWithScans(t, 3)
	cases := map[string][]byte{
		"SOI only":            {0xff, 0xd8},
		"length past the end": {0xff, 0xd8, 0xff, 0xdb, 0xff, 0xff},
		"length below 2":      {0xff, 0xd8, 0xff, 0xdb, 0x00, 0x01, 0xff, 0xda},
		"no marker":           {0xff, 0xd8, 0x12, 0x34},
		"fill bytes":          {0xff, 0xd8, 0xff, 0xff, 0xff, 0xd9},
	}
	for cut := 3; cut < len(valid); cut += len(valid) / 20 {
		cases[fmt.Sprintf("prefix of %d bytes", cut)] = valid[:cut]
	}
	for name, data := range cases {
		if err := checkJPEGScans(data, maxJPEGScans); err != nil {
			t.Errorf("checkJPEGScans(%s) error = %v, want nil", name, err)
		}
	}
}
