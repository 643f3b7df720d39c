package core

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// writeChunkSize is the size of the buffer that tensor bytes are encoded
// into before each write, so writing never copies a whole tensor.
const writeChunkSize = 64 << 10

// WriteModelFile validates mf as (*ModelFile).Validate does and writes it to
// w in the layout that ReadModelFile reads. Tensors are stored in
// ParamSpecs order, each I8 tensor followed by its scales, and the header's
// keys in a fixed order, so the same ModelFile always gives the same bytes.
// The header is padded with spaces to a multiple of 8 bytes, as safetensors
// writers do, so the data section starts 8-byte aligned within the file.
// Validation errors wrap ErrInvalidModelFile, and write errors wrap the
// writer's error.
func WriteModelFile(w io.Writer, mf *ModelFile) error {
	if err := mf.Validate(); err != nil {
		return err
	}
	specs, err := expectedTensors(mf.Config, mf.Quantization, len(mf.Tensors))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModelFile, err)
	}

	headerBytes, err := encodeHeader(mf, specs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModelFile, err)
	}
	var prefix [lengthPrefixSize]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(headerBytes)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("write model file header length: %w", err)
	}
	if _, err := w.Write(headerBytes); err != nil {
		return fmt.Errorf("write model file header: %w", err)
	}

	buf := make([]byte, 0, writeChunkSize)
	for _, s := range specs {
		t := mf.Tensors[s.name]
		if s.dtype == I8 {
			err = writeInt8s(w, buf, t.I8)
		} else {
			err = writeFloat32s(w, buf, t.F32)
		}
		if err != nil {
			return fmt.Errorf("write tensor %q: %w", s.name, err)
		}
	}
	return nil
}

// encodeHeader returns the padded JSON header. The metadata comes first with its keys sorted, then
// the tensors in specs order with contiguous data_offsets from 0.
func encodeHeader(mf *ModelFile, specs []tensorSpec) ([]byte, error) {
	metadata, err := encodeMetadata(mf)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"` + metadataKey + `":{`)
	for i, kv := range metadata {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(kv[0]))
		b.WriteByte(':')
		b.WriteString(jsonString(kv[1]))
	}
	b.WriteByte('}')

	var offset uint64
	for _, s := range specs {
		numElements, _ := shapeElements(s.shape)
		end := offset + numElements*uint64(s.dtype.Size())
		fmt.Fprintf(&b, `,%s:{"dtype":%s,"shape":%s,"data_offsets":[%d,%d]}`,
			jsonString(s.name), jsonString(string(s.dtype)), shapeJSON(s.shape), offset, end)
		offset = end
	}
	b.WriteByte('}')

	for b.Len()%lengthPrefixSize != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("header is %d bytes, over the limit of %d", b.Len(), MaxHeaderSize)
	}
	if total := lengthPrefixSize + uint64(b.Len()) + offset; total > MaxModelFileSize {
		return nil, fmt.Errorf("file would be %d bytes, over the limit of %d", total, MaxModelFileSize)
	}
	return b.Bytes(), nil
}

// encodeMetadata returns the metadata key-value pairs sorted by key.
func encodeMetadata(mf *ModelFile) ([][2]string, error) {
	configJSON, err := json.Marshal(mf.Config)
	if err != nil {
		return nil, fmt.Errorf("metadata %q: %w", metaConfig, err)
	}
	normJSON, err := json.Marshal(mf.Norm)
	if err != nil {
		return nil, fmt.Errorf("metadata %q: %w", metaImageNorm, err)
	}
	var vocab bytes.Buffer
	for i, token := range mf.Vocab {
		if i > 0 {
			vocab.WriteByte('\n')
		}
		vocab.WriteString(token)
	}
	return [][2]string{
		{metaConfig, string(configJSON)},
		{metaFormat, FormatName},
		{metaFormatVersion, strconv.Itoa(FormatVersion)},
		{metaImageNorm, string(normJSON)},
		{metaQuantization, mf.Quantization},
		{metaVocab, vocab.String()},
	}, nil
}

// jsonString returns s as a JSON string literal. It leaves <, > and &
// unescaped, unlike json.Marshal, so vocabulary tokens stay readable.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Encoding a string cannot fail.
	_ = enc.Encode(s)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func shapeJSON(shape []int) string {
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	return string(append(b, ']'))
}

// writeFloat32s writes values as little-endian float32 through buf, whose
// capacity sets the chunk size.
func writeFloat32s(w io.Writer, buf []byte, values []float32) error {
	perChunk := cap(buf) / 4
	for start := 0; start < len(values); start += perChunk {
		chunk := values[start:min(start+perChunk, len(values))]
		buf = buf[:0]
		for _, v := range chunk {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// writeInt8s writes values as bytes through buf, whose capacity sets the
// chunk size.
func writeInt8s(w io.Writer, buf []byte, values []int8) error {
	perChunk := cap(buf)
	for start := 0; start < len(values); start += perChunk {
		chunk := values[start:min(start+perChunk, len(values))]
		buf = buf[:0]
		for _, v := range chunk {
			buf = append(buf, byte(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
