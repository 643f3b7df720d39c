package core_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

// int8BitsPath holds the sha256 of the int8 micro model's outputs.
const int8BitsPath = "../testdata/golden/micro-int8-bits.json"

// int8RelativeTolerance bounds rms(int8 - float32) / rms(float32) for each
// output of the int8 micro model on the oracle cases, with the perturbed
// random weights of the golden model. Measured: 0.08 % (token logits) to
// 0.6 % (encoder outputs), so the bound leaves a margin of 2.5x.
const int8RelativeTolerance = 0.015

// goldenInt8Model returns the golden micro model in float32 and, quantized
// and then written and read back, in int8.
func goldenInt8Model(t *testing.T) (float32File, int8File *core.ModelFile) {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	float32File = core.PerturbedModelFile(t, cfg, core.GoldenSeed)
	quantized, _, err := quantize.QuantizeModelFile(float32File)
	if err != nil {
		t.Fatalf("QuantizeModelFile(micro): %v", err)
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, quantized); err != nil {
		t.Fatalf("WriteModelFile(int8 micro): %v", err)
	}
	int8File, err = core.ReadModelFile(buf.Bytes())
	if err != nil {
		t.Fatalf("ReadModelFile(int8 micro): %v", err)
	}
	return float32File, int8File
}

func newModel(t *testing.T, mf *core.ModelFile) *core.Model {
	t.Helper()
	m, err := core.NewModel(mf)
	if err != nil {
		t.Fatalf("NewModel(%s): %v", mf.Quantization, err)
	}
	return m
}

// goldenInt8Bits is the content of micro-int8-bits.json.
type goldenInt8Bits struct {
	Seed         uint64            `json:"seed"`
	Quantization string            `json:"quantization"`
	SHA256       map[string]string `json:"sha256"`
}

// TestGoldenBitsInt8 checks the int8 micro model's output bits, which every
// target must reproduce. For the browser target:
//
//	PATH=$PATH:$(go env GOROOT)/lib/wasm GOOS=js GOARCH=wasm go test ./core -run TestGoldenBitsInt8
func TestGoldenBitsInt8(t *testing.T) {
	_, int8File := goldenInt8Model(t)
	m := newModel(t, int8File)
	got := core.OutputHashes(core.OracleOutputs(t, m, m.Config(), core.GoldenSeed))

	// Regenerate with: go test ./core -run TestGoldenBitsInt8 -update-golden
	// Rewrite it only for a deliberate change of the quantizer or the int8
	// arithmetic.
	if *core.UpdateGolden {
		golden := goldenInt8Bits{Seed: core.GoldenSeed, Quantization: core.QuantizationInt8, SHA256: got}
		data, err := json.MarshalIndent(golden, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(int8BitsPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", int8BitsPath)
	}
	data, err := os.ReadFile(int8BitsPath)
	if err != nil {
		t.Fatal(err)
	}
	var want goldenInt8Bits
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", int8BitsPath, err)
	}
	if want.Seed != core.GoldenSeed || want.Quantization != core.QuantizationInt8 {
		t.Fatalf("%s has seed %d and quantization %q, want %d and %q",
			int8BitsPath, want.Seed, want.Quantization, core.GoldenSeed, core.QuantizationInt8)
	}
	for _, key := range sortedKeys(want.SHA256) {
		if got[key] != want.SHA256[key] {
			t.Errorf("sha256(int8 %s) = %s, want %s", key, got[key], want.SHA256[key])
		}
	}
	for _, key := range sortedKeys(got) {
		if _, ok := want.SHA256[key]; !ok {
			t.Errorf("int8 %s: output has no hash in %s", key, int8BitsPath)
		}
	}
}

// TestInt8ModelMatchesDequantized checks the int8 forward pass bit for bit
// against a float32 model of the dequantized weights: the int8 kernels
// dequantize with the same float32 product, then sum in matMul's order.
func TestInt8ModelMatchesDequantized(t *testing.T) {
	_, int8File := goldenInt8Model(t)
	dequantized, err := quantize.Dequantize(int8File)
	if err != nil {
		t.Fatalf("Dequantize(int8 micro): %v", err)
	}
	int8Model, float32Model := newModel(t, int8File), newModel(t, dequantized)
	cfg := int8Model.Config()
	got := core.OracleOutputs(t, int8Model, cfg, core.GoldenSeed)
	want := core.OracleOutputs(t, float32Model, cfg, core.GoldenSeed)
	for _, key := range sortedKeys(want) {
		g, w := got[key], want[key]
		if len(g) != len(w) {
			t.Errorf("int8 %s has %d values, want %d", key, len(g), len(w))
			continue
		}
		for i := range w {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				t.Errorf("int8 %s[%d] = %v, want %v (bits of the dequantized float32 model)", key, i, g[i], w[i])
				break
			}
		}
	}
}

// TestInt8ModelNearFloat32 compares the int8 micro model with its float32
// original on the oracle cases.
func TestInt8ModelNearFloat32(t *testing.T) {
	float32File, int8File := goldenInt8Model(t)
	int8Model, float32Model := newModel(t, int8File), newModel(t, float32File)
	cfg := int8Model.Config()
	got := core.OracleOutputs(t, int8Model, cfg, core.GoldenSeed)
	want := core.OracleOutputs(t, float32Model, cfg, core.GoldenSeed)
	for _, key := range sortedKeys(want) {
		diff := relativeRMSDiff(got[key], want[key])
		t.Logf("%-32s rms(int8 - float32) / rms(float32) = %.3g", key, diff)
		if !(diff <= int8RelativeTolerance) {
			t.Errorf("rms(int8 %s - float32) / rms(float32) = %.3g, want at most %g", key, diff, int8RelativeTolerance)
		}
	}
}

// relativeRMSDiff returns rms(got - want) / rms(want), or +Inf when the
// lengths differ.
func relativeRMSDiff(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var diffSquares, wantSquares float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		diffSquares += d * d
		wantSquares += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(diffSquares / wantSquares)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
