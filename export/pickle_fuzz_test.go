package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadPickle checks that the pickle reader and the checkpoint import
// never panic, that every error wraps ErrInvalidPickle or
// ErrInvalidCheckpoint, and that every model they accept is valid. The
// seeds are the committed fixtures of up to maxFuzzSeed bytes, hostile
// ones included, and a built checkpoint.
func FuzzReadPickle(f *testing.F) {
	// The 200 to 500 KB fixtures are left out because the fuzzer
	// minimizes every new interesting input, for up to a minute by
	// default, and on inputs that large it stalls a 10-second run. The
	// tiny fixtures cover the same opcodes.
	const maxFuzzSeed = 64 << 10
	for _, pattern := range []string{"*.pkl", "hostile/*.pkl"} {
		paths, err := filepath.Glob(filepath.Join(fixtureDir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, path := range paths {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			if len(data) <= maxFuzzSeed {
				f.Add(data)
			}
		}
	}
	f.Add(checkpointPickle(microImportConfig(), nil))

	opts := M3AEJaxOptions{ImageSize: 8, TextLength: 4, NumHeads: 2, DecoderNumHeads: 2, Vocab: testVocab(16)}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := readPickle(bytes.NewReader(data), int64(len(data)), defaultPickleLimits)
		if err != nil {
			if !errors.Is(err, ErrInvalidPickle) {
				t.Fatalf("readPickle error %q does not wrap ErrInvalidPickle", err)
			}
			return
		}
		_ = describeValue(v)

		ckpt, err := ImportM3AEJax(bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			if !errors.Is(err, ErrInvalidPickle) && !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatalf("import error %q wraps neither ErrInvalidPickle nor ErrInvalidCheckpoint", err)
			}
			return
		}
		if err := ckpt.Model.Validate(); err != nil {
			t.Fatalf("imported model is invalid: %v", err)
		}
	})
}
