package core

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// maxRejectAllocBytes bounds what DecodeImage may allocate before it
// rejects an image by its header. Decoding the pixels of the images below
// would take at least 160 MB.
const maxRejectAllocBytes = 1 << 20

// TestDecodeImageRejectsBeforeAllocating decodes headers of images over
// MaxImagePixels. Each must be rejected from its header, before the
// decoder allocates pixels.
func TestDecodeImageRejectsBeforeAllocating(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"png 8000x5001 with pixel data", pngWithPixelData(8000, 5001)},
		{"png 100000x100000", readImageFixture(t, "huge_header.png")},
		{"jpeg 65000x65000", readImageFixture(t, "huge_header.jpg")},
	}
	for _, tt := range tests {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := DecodeImage(tt.data)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrInvalidImage) {
			t.Errorf("DecodeImage(%s) error = %v, want ErrInvalidImage", tt.name, err)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > maxRejectAllocBytes {
			t.Errorf("DecodeImage(%s) allocated %d bytes before rejecting it, want at most %d", tt.name, allocated, maxRejectAllocBytes)
		}
	}
}

// pngWithPixelData returns pngHeader(width, height) followed by an IDAT
// chunk with the first rows of pixel data and an IEND chunk, so that
// png.Decode would allocate the whole image before it ran out of data.
func pngWithPixelData(width, height uint32) []byte {
	var compressed bytes.Buffer
	z := zlib.NewWriter(&compressed)
	z.Write(make([]byte, 4*int(width)+1))
	z.Close()
	out := pngHeader(width, height)
	for _, chunk := range []struct {
		kind string
		data []byte
	}{{"IDAT", compressed.Bytes()}, {"IEND", nil}} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(chunk.data)))
		start := len(out)
		out = append(out, chunk.kind...)
		out = append(out, chunk.data...)
		out = binary.BigEndian.AppendUint32(out, crc32IEEE(out[start:]))
	}
	return out
}
