//go:build ignore

// Command gen writes the fixtures of this folder for the tests of
// native/data and cmd/m3ae-edge. They are a few small images, a captions
// file in JSONL and in CSV form, two WebDataset tar shards, a text file and
// a tiny Fashion-MNIST-style IDX set. Every file is derived from fixed
// formulas, so a rerun with the same Go version writes the same bytes.
//
// Run from the repository root:
//
//	go run testdata/pipeline/gen.go
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"log"
	"os"
	"path/filepath"
)

const dir = "testdata/pipeline"

func main() {
	images := map[string][]byte{
		"red.png":      encodePNG(solid(8, 8, color.NRGBA{200, 30, 30, 255})),
		"gradient.png": encodePNG(gradient(16, 12)),
		"ghost.png":    encodePNG(halfTransparent(8, 8)),
		"photo.jpg":    encodeJPEG(gradient(12, 16)),
	}
	for name, data := range images {
		write(filepath.Join("images", name), data)
	}

	write("captions.jsonl", []byte(`{"image": "images/red.png", "caption": "a red square", "label": 1}
{"image": "images/gradient.png", "caption": "a colour gradient"}

{"image": "images/ghost.png"}
{"caption": "a caption without an image"}
{"image": "images/photo.jpg", "caption": "a small photo", "tags": ["extra", "fields"]}
`))
	write("captions.csv", []byte("image,caption,label\n"+
		"images/red.png,a red square,1\n"+
		"images/gradient.png,\"a gradient, in colour\",\n"+
		"images/ghost.png,,\n"+
		",a caption without an image,\n"))
	write("glosses.txt", []byte("a domesticated carnivorous mammal\n\n  a large body of salt water  \nthe fruit of an apple tree\n"))

	// Shard 0 holds every sample form; shard 1 continues the keys.
	write("shards/shard-00000.tar", tarball([]entry{
		{"000000.png", images["red.png"]},
		{"000000.txt", []byte("a red square\n")},
		{"000001.jpg", images["photo.jpg"]},
		{"000001.json", []byte(`{"caption": "a photo from json", "url": "http://127.0.0.1/x.jpg", "key": "000001"}`)},
		{"000002.png", images["gradient.png"]},
		{"000003.txt", []byte("text without an image")},
		{"000004.png", images["ghost.png"]},
		{"000004.json", []byte(`{"caption": "json caption that a txt entry overrides"}`)},
		{"000004.txt", []byte("a half transparent square")},
		{"000004.cls", []byte("7\n")},
	}))
	write("shards/shard-00001.tar", tarball([]entry{
		{"000005.png", images["gradient.png"]},
		{"000005.txt", []byte("a gradient in shard one")},
		{"000006.jpeg", images["photo.jpg"]},
		{"000006.json", []byte(`{"caption": "a jpeg from shard one"}`)},
	}))

	// IDX: three 28x28 training images with labels 9, 0, 3 and two test
	// images with labels 1, 8. Pixel (y, x) of image n is (n*40 + y*8 + x) % 256.
	write("fashion/train-images-idx3-ubyte.gz", gzipped(idxImages(3, 28, 28)))
	write("fashion/train-labels-idx1-ubyte.gz", gzipped(idxLabels([]byte{9, 0, 3})))
	write("fashion/t10k-images-idx3-ubyte.gz", gzipped(idxImages(2, 28, 28)))
	write("fashion/t10k-labels-idx1-ubyte.gz", gzipped(idxLabels([]byte{1, 8})))
}

func write(name string, data []byte) {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}
}

func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / (w - 1)), uint8(y * 255 / (h - 1)), 128, 255})
		}
	}
	return img
}

// halfTransparent has opaque blue on the left half and fully transparent
// pixels holding random-looking colours on the right, as emoji PNGs do.
func halfTransparent(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if x < w/2 {
				img.SetNRGBA(x, y, color.NRGBA{20, 40, 220, 255})
			} else {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x * 37), uint8(y * 91), uint8(x*y + 5), 0})
			}
		}
	}
	return img
}

func encodePNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

type entry struct {
	name string
	data []byte
}

func tarball(entries []entry) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		header := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := w.WriteHeader(header); err != nil {
			log.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func idxImages(count, rows, cols int) []byte {
	data := []byte{0, 0, 0x08, 3}
	for _, d := range []int{count, rows, cols} {
		data = binary.BigEndian.AppendUint32(data, uint32(d))
	}
	for n := range count {
		for y := range rows {
			for x := range cols {
				data = append(data, byte((n*40+y*8+x)%256))
			}
		}
	}
	return data
}

func idxLabels(labels []byte) []byte {
	data := binary.BigEndian.AppendUint32([]byte{0, 0, 0x08, 1}, uint32(len(labels)))
	return append(data, labels...)
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	// A fixed header (no name, zero time) keeps the bytes reproducible.
	if _, err := w.Write(data); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}
