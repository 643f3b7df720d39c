// Package forwardinput reads one preprocessed example of the forward pass
// as cmd/m3ae-bench hands it to the programs that time the core outside
// its own process. The example is the patches, the token ids and the two
// masks, each as the little-endian bytes of a file or a typed array.
package forwardinput

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// File names of the example's parts in a folder, and ModelFile the model
// file beside them.
const (
	PatchesFile   = "patches"    // float32 [Np, p*p*C]
	TokensFile    = "tokens"     // int32 [Nt]
	ImageMaskFile = "image_mask" // one byte per patch, nonzero meaning hidden
	TextMaskFile  = "text_mask"  // one byte per text position, nonzero meaning hidden
	ModelFile     = "model.safetensors"
)

// Decode returns the inputs and masks of the four parts' bytes.
func Decode(patches, tokens, imageMask, textMask []byte) (core.Inputs, core.Masks, error) {
	if len(patches)%4 != 0 || len(tokens)%4 != 0 {
		return core.Inputs{}, core.Masks{}, fmt.Errorf("patches (%d bytes) and tokens (%d bytes) must be whole 4-byte values",
			len(patches), len(tokens))
	}
	in := core.Inputs{Patches: Float32s(patches), Tokens: make([]int32, len(tokens)/4)}
	for i := range in.Tokens {
		in.Tokens[i] = int32(binary.LittleEndian.Uint32(tokens[4*i:]))
	}
	masks := core.Masks{Image: make([]bool, len(imageMask)), Text: make([]bool, len(textMask))}
	for i, b := range imageMask {
		masks.Image[i] = b != 0
	}
	for i, b := range textMask {
		masks.Text[i] = b != 0
	}
	return in, masks, nil
}

// ReadDir reads the four parts from the files of dir.
func ReadDir(dir string) (core.Inputs, core.Masks, error) {
	var parts [4][]byte
	for i, name := range []string{PatchesFile, TokensFile, ImageMaskFile, TextMaskFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return core.Inputs{}, core.Masks{}, err
		}
		parts[i] = data
	}
	return Decode(parts[0], parts[1], parts[2], parts[3])
}

// Float32Bytes returns the little-endian bytes of values.
func Float32Bytes(values []float32) []byte {
	out := make([]byte, 0, 4*len(values))
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// Float32s returns the float32 values of little-endian data, whose length
// is a multiple of 4.
func Float32s(data []byte) []float32 {
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}
