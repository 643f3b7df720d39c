package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"os"
)

// IDX is the file format of MNIST and Fashion-MNIST: a 4-byte magic (two
// zero bytes, a type code, the number of dimensions), one big-endian uint32
// per dimension, then the values in row-major order. This package reads
// unsigned-byte files (type code 0x08), plain or gzip-compressed.
const idxTypeUnsignedByte = 0x08

// maxIDXBytes bounds the data of one IDX file, 1 GiB. The Fashion-MNIST
// training images take 47 MB.
const maxIDXBytes = 1 << 30

// IDXImages is a stack of grey images read from an IDX file of rank 3.
type IDXImages struct {
	Count, Rows, Cols int
	// Pixels has layout [Count, Rows, Cols]: pixel (y, x) of image n is
	// Pixels[(n*Rows + y)*Cols + x], 0 black to 255 white.
	Pixels []byte
}

// Image returns image n as a grey image that shares Pixels.
func (m *IDXImages) Image(n int) *image.Gray {
	size := m.Rows * m.Cols
	return &image.Gray{
		Pix:    m.Pixels[n*size : (n+1)*size : (n+1)*size],
		Stride: m.Cols,
		Rect:   image.Rect(0, 0, m.Cols, m.Rows),
	}
}

// ReadIDXImages reads an unsigned-byte IDX file of rank 3 ([count, rows,
// cols]), gzip-compressed or not. Errors wrap ErrInvalidData.
func ReadIDXImages(r io.Reader) (*IDXImages, error) {
	dims, data, err := readIDX(r, 3)
	if err != nil {
		return nil, err
	}
	return &IDXImages{Count: dims[0], Rows: dims[1], Cols: dims[2], Pixels: data}, nil
}

// ReadIDXLabels reads an unsigned-byte IDX file of rank 1, gzip-compressed
// or not. Errors wrap ErrInvalidData.
func ReadIDXLabels(r io.Reader) ([]byte, error) {
	_, data, err := readIDX(r, 1)
	return data, err
}

// readIDX reads an unsigned-byte IDX file of the given rank and checks that
// the data holds exactly the product of the dimensions.
func readIDX(r io.Reader, rank int) ([]int, []byte, error) {
	buffered := bufio.NewReader(r)
	if magic, err := buffered.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(buffered)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: IDX gzip header: %w", ErrInvalidData, err)
		}
		defer gz.Close()
		r = gz
	} else {
		r = buffered
	}

	magic := make([]byte, 4)
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, nil, fmt.Errorf("%w: IDX header is truncated: %w", ErrInvalidData, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != idxTypeUnsignedByte || int(magic[3]) != rank {
		return nil, nil, fmt.Errorf("%w: IDX magic % x: want 00 00 08 %02x (unsigned bytes, %d dimensions)",
			ErrInvalidData, magic, rank, rank)
	}
	header := make([]byte, 4*rank)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, fmt.Errorf("%w: IDX header is truncated: %w", ErrInvalidData, err)
	}
	dims := make([]int, rank)
	size := int64(1)
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(header[4*i:]))
		size *= int64(dims[i])
		if size > maxIDXBytes {
			return nil, nil, fmt.Errorf("%w: IDX dimensions %v describe more than %d bytes", ErrInvalidData, dims[:i+1], maxIDXBytes)
		}
	}
	if size == 0 {
		return nil, nil, fmt.Errorf("%w: IDX dimensions %v describe no values", ErrInvalidData, dims)
	}

	// Read through a limit one byte past the expected size, so a short file
	// allocates only what it holds and a long one is caught.
	var data bytes.Buffer
	if _, err := io.Copy(&data, io.LimitReader(r, size+1)); err != nil {
		return nil, nil, fmt.Errorf("%w: IDX data: %w", ErrInvalidData, err)
	}
	switch {
	case int64(data.Len()) < size:
		return nil, nil, fmt.Errorf("%w: IDX data has %d bytes, want %d for dimensions %v: the file is truncated",
			ErrInvalidData, data.Len(), size, dims)
	case int64(data.Len()) > size:
		return nil, nil, fmt.Errorf("%w: IDX data is longer than the %d bytes of dimensions %v", ErrInvalidData, size, dims)
	}
	return dims, data.Bytes(), nil
}

// readIDXFile opens path and reads it with read.
func readIDXFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// IDXSource holds image-only examples with class labels from a pair of IDX
// files, such as Fashion-MNIST's train-images-idx3-ubyte.gz and
// train-labels-idx1-ubyte.gz.
type IDXSource struct {
	path   string
	images *IDXImages
	labels []byte
}

// OpenIDX reads an image file and its label file. Both may be
// gzip-compressed.
func OpenIDX(imagesPath, labelsPath string) (*IDXSource, error) {
	images, err := readIDXFile(imagesPath, ReadIDXImages)
	if err != nil {
		return nil, fmt.Errorf("IDX images: %w", err)
	}
	labels, err := readIDXFile(labelsPath, ReadIDXLabels)
	if err != nil {
		return nil, fmt.Errorf("IDX labels: %w", err)
	}
	if len(labels) != images.Count {
		return nil, fmt.Errorf("%w: %s has %d labels but %s has %d images", ErrInvalidData, labelsPath, len(labels), imagesPath, images.Count)
	}
	return &IDXSource{path: imagesPath, images: images, labels: labels}, nil
}

// Len returns the number of images.
func (s *IDXSource) Len() int { return s.images.Count }

// Images returns the images; the caller must not modify them.
func (s *IDXSource) Images() *IDXImages { return s.images }

// Labels returns the class label of each image; the caller must not modify
// them.
func (s *IDXSource) Labels() []byte { return s.labels }

// Example returns image i as an image-only example.
func (s *IDXSource) Example(i int) (Example, error) {
	if err := checkIndex(s.path, i, s.images.Count); err != nil {
		return Example{}, err
	}
	return Example{
		Kind:   ImageOnly,
		Image:  s.images.Image(i),
		Label:  int(s.labels[i]),
		Origin: fmt.Sprintf("%s#%d", s.path, i),
	}, nil
}
