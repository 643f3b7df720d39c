package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// FuzzReadModelFile checks that ReadModelFile never panics, that every
// error wraps ErrInvalidModelFile, and that any file it accepts round-trips
// through WriteModelFile to a file with equal content.
func FuzzReadModelFile(f *testing.F) {
	valid := encodeModelFile(f, randomModelFile(nanoConfig, 8))
	f.Add(valid)
	f.Add(valid[:len(valid)-4])
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<40))

	corrupted := bytes.Clone(valid)
	binary.LittleEndian.PutUint64(corrupted, binary.LittleEndian.Uint64(valid)+8)
	f.Add(corrupted)

	duplicate := nanoParts()
	duplicate.entries = append(duplicate.entries, duplicate.entries[0])
	f.Add(duplicate.bytes())

	f.Add(assembleFile(`{"__metadata__":{"format":"m3ae-edge","format_version":"1"},"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(assembleFile(`{"__metadata__":{"config":"{\"depth\":1}","image_norm":"{\"mean\":[0,0,0],\"std\":[1,1,1]}"}}`, nil))

	quantized := encodeModelFile(f, int8ModelFile(nanoConfig, 8))
	f.Add(quantized)
	f.Add(quantized[:len(quantized)-3])

	reordered := nanoParts()
	reordered.entries[0], reordered.entries[1] = reordered.entries[1], reordered.entries[0]
	f.Add(reordered.bytes())

	// Regenerate from the repository root with:
	//   python3 testdata/modelfile/write_nano.py testdata/modelfile/nano_python.safetensors
	python, err := os.ReadFile("../testdata/modelfile/nano_python.safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(python)

	f.Fuzz(func(t *testing.T, data []byte) {
		mf, err := ReadModelFile(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidModelFile) {
				t.Fatalf("ReadModelFile error %q does not wrap ErrInvalidModelFile", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteModelFile(&buf, mf); err != nil {
			t.Fatalf("WriteModelFile(accepted file) error: %v", err)
		}
		again, err := ReadModelFile(buf.Bytes())
		if err != nil {
			t.Fatalf("ReadModelFile(rewritten file) error: %v", err)
		}
		if diff := diffModelFiles(again, mf); diff != "" {
			t.Fatalf("ReadModelFile(rewritten file): %s", diff)
		}
	})
}
