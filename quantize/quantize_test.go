package quantize

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// roundTripBound is the largest |w - DequantizeValue(q, scale)| in units of
// scale: half a step, plus 2^-17 for the float32 rounding of w/scale and
// 2^-17 for that of the product (each at most 127 * 2^-24 of scale).
const roundTripBound = 0.5 + 0x1p-16

// testConfig is smaller than every preset, so a test builds and quantizes
// its files in milliseconds.
var testConfig = core.Config{
	ImageSize: 8, PatchSize: 4, TextLength: 4, VocabSize: 8,
	EmbedDim: 8, Depth: 1, NumHeads: 2,
	DecoderEmbedDim: 8, DecoderDepth: 1, DecoderNumHeads: 2,
	MLPRatio: 2,
}

func testVocab(size int) []string {
	vocab := make([]string, size)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("tok%d", i)
	}
	vocab[0], vocab[1] = "[PAD]", "[UNK]"
	return vocab
}

func initModelFile(t testing.TB, cfg core.Config, vocab []string, seed uint64) *core.ModelFile {
	t.Helper()
	mf, err := core.InitModelFile(cfg, vocab, core.CC12MNorm, seed)
	if err != nil {
		t.Fatalf("InitModelFile: %v", err)
	}
	return mf
}

func TestQuantizeValue(t *testing.T) {
	tests := []struct {
		w, scale float32
		want     int8
	}{
		{0, 1, 0},
		{0.5, 1, 1}, // ties round away from zero, not to even
		{-0.5, 1, -1},
		{1.5, 1, 2},
		{2.5, 1, 3},
		{-2.5, 1, -3},
		{0.49999997, 1, 0},
		{126.5, 1, 127},
		{127.4, 1, 127},
		{200, 1, 127}, // clamped
		{-200, 1, -127},
		{0.3, 0.1, 3},
		{float32(math.Copysign(0, -1)), 1, 0},
	}
	for _, tt := range tests {
		if got := QuantizeValue(tt.w, tt.scale); got != tt.want {
			t.Errorf("QuantizeValue(%v, %v) = %d, want %d", tt.w, tt.scale, got, tt.want)
		}
	}
}

func TestScaleFor(t *testing.T) {
	tests := []struct {
		name   string
		maxAbs float32
		want   float32
	}{
		{"zero group", 0, MinScale},
		{"127", 127, 1},
		{"typical", 0.5, 0.5 / 127},
		{"subnormal quotient", 1e-37, MinScale},
		{"just above the floor", 127 * MinScale * 2, MinScale * 2},
		{"largest float32", math.MaxFloat32, math.MaxFloat32 / 127},
	}
	for _, tt := range tests {
		if got := ScaleFor(tt.maxAbs); got != tt.want {
			t.Errorf("ScaleFor(%s, %v) = %v, want %v", tt.name, tt.maxAbs, got, tt.want)
		}
	}
}

// edgeMatrix returns a [rows, cols] matrix of normal(0, 0.05) values with
// three edge groups (columns when byColumn, else rows). Group 0 is zero.
// Group 1 has values around 1e-38, whose max/127 is subnormal. Group 2 has
// a max of 127, so scale 1, and values at exact half steps.
func edgeMatrix(rng *rand.Rand, rows, cols int, byColumn bool) []float32 {
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	groupLen := cols
	at := func(group, i int) *float32 { return &w[group*cols+i] }
	if byColumn {
		groupLen = rows
		at = func(group, i int) *float32 { return &w[i*cols+group] }
	}
	for i := range groupLen {
		*at(0, i) = 0
		*at(1, i) = float32(rng.Float64()*2-1) * 1e-38
		*at(2, i) = float32(i%5) + 0.5 // steps of scale 1 after the max below
	}
	*at(2, groupLen-1) = -127
	return w
}

func TestQuantizeRoundTrip(t *testing.T) {
	const rows, cols = 37, 11
	rng := rand.New(rand.NewPCG(1, 2))
	for _, byColumn := range []bool{true, false} {
		name, quantizeFunc, groups := "QuantizeRows", QuantizeRows, rows
		if byColumn {
			name, quantizeFunc, groups = "QuantizeColumns", QuantizeColumns, cols
		}
		w := edgeMatrix(rng, rows, cols, byColumn)
		q, scale := quantizeFunc(w, rows, cols)
		if len(q) != rows*cols || len(scale) != groups {
			t.Fatalf("%s(%dx%d) = %d values and %d scales, want %d and %d", name, rows, cols, len(q), len(scale), rows*cols, groups)
		}
		for g, s := range scale {
			if !(s >= MinScale) || math.IsInf(float64(s), 0) {
				t.Errorf("%s scale[%d] = %v, want a finite value >= MinScale", name, g, s)
			}
		}
		if scale[0] != MinScale || scale[1] != MinScale || scale[2] != 1 {
			t.Errorf("%s scales of the zero, tiny and [-127, 4.5] groups = %v, %v, %v, want %v, %v, 1",
				name, scale[0], scale[1], scale[2], MinScale, MinScale)
		}
		for r := range rows {
			for c := range cols {
				i := r*cols + c
				s := scale[c]
				if !byColumn {
					s = scale[r]
				}
				if q[i] < -core.Int8MaxLevel {
					t.Errorf("%s q[%d, %d] = %d, want -127 to 127", name, r, c, q[i])
				}
				// The dequantized value as a float64 product, so the
				// check itself adds no rounding.
				err := math.Abs(float64(w[i]) - float64(q[i])*float64(s))
				if err > roundTripBound*float64(s) {
					t.Errorf("%s(w[%d, %d] = %v): |w - q*scale| = %v, want at most %v (scale %v, q %d)",
						name, r, c, w[i], err, roundTripBound*float64(s), s, q[i])
				}
			}
		}
	}
}

// TestQuantizeRoundTripRandomScales sweeps group magnitudes over the
// float32 range to exercise the rounding of the scale.
func TestQuantizeRoundTripRandomScales(t *testing.T) {
	const rows, cols = 64, 1
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 2000 {
		magnitude := math.Pow(2, rng.Float64()*250-125)
		w := make([]float32, rows)
		for i := range w {
			w[i] = float32((rng.Float64()*2 - 1) * magnitude)
		}
		q, scale := QuantizeColumns(w, rows, cols)
		for i := range w {
			err := math.Abs(float64(w[i]) - float64(q[i])*float64(scale[0]))
			if err > roundTripBound*float64(scale[0]) {
				t.Fatalf("trial %d: QuantizeColumns(w[%d] = %v): |w - q*scale| = %v, want at most %v (scale %v)",
					trial, i, w[i], err, roundTripBound*float64(scale[0]), scale[0])
			}
		}
	}
}

func TestQuantizeModelFile(t *testing.T) {
	mf := initModelFile(t, testConfig, testVocab(testConfig.VocabSize), 1)
	out, report, err := QuantizeModelFile(mf)
	if err != nil {
		t.Fatalf("QuantizeModelFile: %v", err)
	}
	if out.Quantization != core.QuantizationInt8 {
		t.Errorf("QuantizeModelFile().Quantization = %q, want %q", out.Quantization, core.QuantizationInt8)
	}

	var wantReported []string
	for _, spec := range core.ParamSpecs(testConfig) {
		in, got := mf.Tensors[spec.Name], out.Tensors[spec.Name]
		if spec.Int8Granularity() == core.Int8None {
			if got.DType != core.F32 || !slices.Equal(got.F32, in.F32) {
				t.Errorf("QuantizeModelFile() tensor %q = %s %v, want the F32 input copied", spec.Name, got.DType, got.F32)
			}
			if &got.F32[0] == &in.F32[0] {
				t.Errorf("QuantizeModelFile() tensor %q shares the input's memory, want a copy", spec.Name)
			}
			continue
		}
		wantReported = append(wantReported, spec.Name)
		rows, cols := spec.Shape[0], spec.Shape[1]
		wantQ, wantScale := QuantizeColumns(in.F32, rows, cols)
		if spec.Int8Granularity() == core.Int8PerRow {
			wantQ, wantScale = QuantizeRows(in.F32, rows, cols)
		}
		gotQ, gotScale, err := out.Int8(spec.Name)
		if err != nil {
			t.Errorf("QuantizeModelFile() tensor %q: %v", spec.Name, err)
			continue
		}
		if !slices.Equal(gotQ, wantQ) || !slices.Equal(gotScale, wantScale) {
			t.Errorf("QuantizeModelFile() tensor %q differs from %s of its values", spec.Name, granularityName(spec.Int8Granularity()))
		}
	}

	var reported []string
	for _, e := range report.Tensors {
		reported = append(reported, e.Name)
		_, scale, _ := out.Int8(e.Name)
		maxScale := float64(slices.Max(scale))
		if !(e.MaxAbsError <= roundTripBound*maxScale) || !(e.RMSError <= e.MaxAbsError) || !(e.RelativeRMSError > 0) {
			t.Errorf("report of %q: max %g, RMS %g, relative RMS %g, want max <= %g, RMS <= max and relative RMS > 0",
				e.Name, e.MaxAbsError, e.RMSError, e.RelativeRMSError, roundTripBound*maxScale)
		}
	}
	if !slices.Equal(reported, wantReported) {
		t.Errorf("report lists %v, want %v", reported, wantReported)
	}

	// The file writes and reads back unchanged.
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, out); err != nil {
		t.Fatalf("WriteModelFile(int8): %v", err)
	}
	read, err := core.ReadModelFile(buf.Bytes())
	if err != nil {
		t.Fatalf("ReadModelFile(int8): %v", err)
	}
	for name, want := range out.Tensors {
		got := read.Tensors[name]
		if got == nil || !slices.Equal(got.I8, want.I8) || !slices.Equal(got.F32, want.F32) {
			t.Errorf("ReadModelFile(WriteModelFile(int8)) tensor %q differs", name)
		}
	}
}

func TestQuantizeModelFileRejects(t *testing.T) {
	valid := initModelFile(t, testConfig, testVocab(testConfig.VocabSize), 1)
	quantized, _, err := QuantizeModelFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	invalid := initModelFile(t, testConfig, testVocab(testConfig.VocabSize), 1)
	delete(invalid.Tensors, "cls_token")
	tests := []struct {
		name string
		mf   *core.ModelFile
		want string
	}{
		{"nil", nil, "model file is nil"},
		{"int8 file", quantized, `quantization is "int8-symmetric-v1", want "none"`},
		{"missing tensor", invalid, `tensor "cls_token": missing`},
	}
	for _, tt := range tests {
		_, _, err := QuantizeModelFile(tt.mf)
		if !errors.Is(err, core.ErrInvalidModelFile) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("QuantizeModelFile(%s) error = %v, want one wrapping ErrInvalidModelFile and containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := Dequantize(valid); err == nil || !strings.Contains(err.Error(), `quantization is "none", want "int8-symmetric-v1"`) {
		t.Errorf("Dequantize(float32 file) error = %v, want one about the quantization", err)
	}
}

func TestDequantize(t *testing.T) {
	mf := initModelFile(t, testConfig, testVocab(testConfig.VocabSize), 2)
	quantized, _, err := QuantizeModelFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	dequantized, err := Dequantize(quantized)
	if err != nil {
		t.Fatalf("Dequantize: %v", err)
	}
	if dequantized.Quantization != core.QuantizationNone || len(dequantized.Tensors) != len(mf.Tensors) {
		t.Fatalf("Dequantize() = %q with %d tensors, want %q with %d", dequantized.Quantization, len(dequantized.Tensors), core.QuantizationNone, len(mf.Tensors))
	}
	const name = "decoder_text_output.Dense_0.kernel" // [Dd, V], per column
	q, scale, _ := quantized.Int8(name)
	got := dequantized.Tensors[name].F32
	cols := testConfig.VocabSize
	for i, v := range q {
		if want := DequantizeValue(v, scale[i%cols]); got[i] != want {
			t.Fatalf("Dequantize() %s[%d] = %v, want %v", name, i, got[i], want)
		}
	}
}

// numpyScript converts a float32 file with numpy, following docs/FORMAT.md.
const numpyScript = "../testdata/quantize/quantize_int8.py"

// requireNumpy skips the test when /usr/bin/python3 cannot import numpy,
// or fails it when M3AE_REQUIRE_TORCH=1, which CI sets because it installs
// the PyTorch oracle's Python packages, numpy among them.
func requireNumpy(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	out, err := exec.Command(python, "-c", "import numpy").CombinedOutput()
	if err == nil {
		return python
	}
	msg := fmt.Sprintf("%s cannot import numpy (%v): %s", python, err, bytes.TrimSpace(out))
	if os.Getenv("M3AE_REQUIRE_TORCH") == "1" {
		t.Fatalf("%s; M3AE_REQUIRE_TORCH=1 requires it", msg)
	}
	t.Skipf("%s; install python3-numpy, or set M3AE_REQUIRE_TORCH=1 to fail instead", msg)
	return ""
}

// TestQuantizeMatchesNumpy checks that docs/FORMAT.md specifies the scheme
// precisely: the numpy script written from it gives the same bits, edge
// cases included, and the core reads the file it writes.
func TestQuantizeMatchesNumpy(t *testing.T) {
	python := requireNumpy(t)
	cfg := testConfig
	cfg.VocabSize = 64
	mf := initModelFile(t, cfg, testVocab(cfg.VocabSize), 3)
	rng := rand.New(rand.NewPCG(5, 6))
	qkv := mf.Tensors["encoder.Block_0.Attention_0.Dense_0.kernel"] // [8, 24]
	qkv.F32 = edgeMatrix(rng, 8, 24, true)
	table := mf.Tensors["text_embedding.embedding"] // [64, 8]
	table.F32 = edgeMatrix(rng, 64, 8, false)

	dir := t.TempDir()
	in, out := filepath.Join(dir, "float32.safetensors"), filepath.Join(dir, "int8.safetensors")
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if output, err := exec.Command(python, numpyScript, in, out).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", python, numpyScript, err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fromNumpy, err := core.ReadModelFile(data)
	if err != nil {
		t.Fatalf("ReadModelFile(numpy's int8 file): %v", err)
	}
	want, _, err := QuantizeModelFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromNumpy.Tensors) != len(want.Tensors) {
		t.Errorf("numpy's file has %d tensors, want %d", len(fromNumpy.Tensors), len(want.Tensors))
	}
	for name, w := range want.Tensors {
		got := fromNumpy.Tensors[name]
		if got == nil {
			t.Errorf("numpy's file has no tensor %q", name)
			continue
		}
		if i := firstDifference(got, w); i >= 0 {
			t.Errorf("numpy's tensor %q differs from QuantizeModelFile's at element %d", name, i)
		}
	}
}

// firstDifference returns the first element whose bits differ, or -1.
func firstDifference(a, b *core.Tensor) int {
	if a.DType != b.DType || len(a.F32) != len(b.F32) || len(a.I8) != len(b.I8) {
		return 0
	}
	for i := range a.I8 {
		if a.I8[i] != b.I8[i] {
			return i
		}
	}
	for i := range a.F32 {
		if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
			return i
		}
	}
	return -1
}
