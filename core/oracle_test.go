package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false,
	"rewrite testdata/golden/micro.json from the PyTorch oracle and micro-bits.json from the Go outputs")

// oracleTolerance is the largest absolute difference allowed between an
// output of the Go forward pass and the PyTorch oracle's. Both compute in
// float32 but sum in different orders.
const oracleTolerance = 1e-4

const (
	oraclePython = "/usr/bin/python3"
	oracleScript = "../testdata/torchref/m3ae_ref.py"
	goldenPath   = "../testdata/golden/micro.json"
	bitsPath     = "../testdata/golden/micro-bits.json"

	// goldenSeed derives the micro golden model, its inputs and its masks.
	goldenSeed = 1
)

// wideConfig is as wide as the official small encoder (D=384, 6 heads) and
// decoder (512, 16 heads), with few blocks and a short vocabulary so that
// the oracle runs in seconds.
var wideConfig = Config{
	ImageSize: 32, PatchSize: 8, TextLength: 16, VocabSize: 2048,
	EmbedDim: 384, Depth: 2, NumHeads: 6,
	DecoderEmbedDim: 512, DecoderDepth: 1, DecoderNumHeads: 16,
	MLPRatio: 4,
}

func microConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syntheticVocab returns size distinct tokens, "[PAD]" first.
func syntheticVocab(size int) []string {
	vocab := make([]string, size)
	vocab[0] = "[PAD]"
	for i := 1; i < size; i++ {
		vocab[i] = "tok" + strconv.Itoa(i)
	}
	return vocab
}

// perturbedModelFile returns InitModelFile's weights with every bias,
// LayerNorm parameter and learned token moved away from its initial value,
// so that a mistake in how any parameter is used shows in the outputs. It
// is deterministic on every target.
func perturbedModelFile(t testing.TB, cfg Config, seed uint64) *ModelFile {
	t.Helper()
	mf, err := InitModelFile(cfg, syntheticVocab(cfg.VocabSize), CC12MNorm, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := newInitRand(seed, 0x70657274) // "pert"
	for _, spec := range ParamSpecs(cfg) {
		data := mf.Tensors[spec.Name].F32
		switch spec.Kind {
		case KindNormScale:
			for i := range data {
				data[i] = float32(1 + float64(0.3*rng.normal()))
			}
		case KindNormBias, KindBias:
			rng.fillNormal(data, 0, 0.3)
		case KindToken:
			rng.fillNormal(data, 0, 0.5)
		}
	}
	return mf
}

func newTestModel(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(perturbedModelFile(t, cfg, seed))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// oracleCase is one example run by both the Go model and the oracle.
type oracleCase struct {
	name  string
	in    Inputs
	masks Masks
}

// oracleCases returns fixed examples that cover both modalities, each
// alone, pads, a fully hidden modality and no masking at all.
func oracleCases(t testing.TB, cfg Config, seed uint64) []oracleCase {
	t.Helper()
	rng := newInitRand(seed, 0x63617365) // "case"
	patches := func() []float32 {
		p := make([]float32, cfg.NumPatches()*cfg.PatchDim())
		rng.fillUniform(p, -2, 2)
		return p
	}
	tokens := func(numWords int) []int32 {
		ids := make([]int32, cfg.TextLength)
		for i := range numWords {
			ids[i] = int32(1 + rng.rng.IntN(cfg.VocabSize-1))
		}
		return ids
	}
	masks := func(imageRatio, textRatio float64, maskSeed uint64) Masks {
		m, err := RandomMasks(cfg, imageRatio, textRatio, maskSeed)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	nt := cfg.TextLength
	return []oracleCase{
		{"image_text", Inputs{Patches: patches(), Tokens: tokens(nt - 5)}, masks(0.75, 0.75, seed+1)},
		{"image_only", Inputs{Patches: patches()}, masks(0.75, 0.75, seed+2)},
		{"text_only", Inputs{Tokens: tokens(nt)}, masks(0.75, 0.75, seed+3)},
		{"text_pads", Inputs{Tokens: tokens(5)}, masks(0.5, 0.5, seed+4)},
		{"all_text_hidden", Inputs{Patches: patches(), Tokens: tokens(nt - 3)}, masks(0.75, 1, seed+5)},
		{"all_image_hidden", Inputs{Patches: patches(), Tokens: tokens(nt - 2)}, masks(1, 0.5, seed+6)},
		{"nothing_hidden", Inputs{Patches: patches(), Tokens: tokens(nt - 4)}, Masks{}},
	}
}

// runGo returns every output of the Go model for the cases, keyed
// "<case>/<output>" with the oracle's output names.
func runGo(t testing.TB, m *Model, cases []oracleCase) map[string][]float32 {
	t.Helper()
	out := make(map[string][]float32)
	for _, c := range cases {
		cls, err := m.Embed(c.in, PoolCLS)
		if err != nil {
			t.Fatalf("%s: Embed(PoolCLS): %v", c.name, err)
		}
		out[c.name+"/embedding_cls"] = cls
		if c.in.hasImage() || hasNonPad(c.in.Tokens) {
			mean, err := m.Embed(c.in, PoolMean)
			if err != nil {
				t.Fatalf("%s: Embed(PoolMean): %v", c.name, err)
			}
			out[c.name+"/embedding_mean"] = mean
		}
		r, err := m.Reconstruct(c.in, c.masks)
		if err != nil {
			t.Fatalf("%s: Reconstruct: %v", c.name, err)
		}
		out[c.name+"/encoded"] = r.Encoded
		if r.PixelPred != nil {
			out[c.name+"/pixel_pred"] = r.PixelPred
		}
		if r.TokenLogits != nil {
			out[c.name+"/token_logits"] = r.TokenLogits
		}
	}
	return out
}

// requireTorch skips the test when /usr/bin/python3 cannot import torch
// and numpy, or fails it when M3AE_REQUIRE_TORCH=1.
func requireTorch(t *testing.T) {
	t.Helper()
	out, err := exec.Command(oraclePython, "-c", "import torch, numpy").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import torch and numpy (%v): %s", oraclePython, err, bytes.TrimSpace(out))
	if os.Getenv("M3AE_REQUIRE_TORCH") == "1" {
		t.Fatalf("%s; M3AE_REQUIRE_TORCH=1 requires the oracle", msg)
	}
	t.Skipf("%s; install python3-torch and python3-numpy, or set M3AE_REQUIRE_TORCH=1 to fail instead", msg)
}

// runOracle writes mf and the cases to a temporary directory, runs
// m3ae_ref.py on them and returns its outputs.
func runOracle(t *testing.T, mf *ModelFile, cases []oracleCase) map[string][]float32 {
	t.Helper()
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "model.safetensors")
	inputsPath := filepath.Join(dir, "inputs.json")
	outputsPath := filepath.Join(dir, "outputs.safetensors")

	var model bytes.Buffer
	if err := WriteModelFile(&model, mf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modelPath, model.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputsPath, oracleInputsJSON(t, mf.Config, cases), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(oraclePython, oracleScript, modelPath, inputsPath, outputsPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", oraclePython, oracleScript, err, out)
	}
	data, err := os.ReadFile(outputsPath)
	if err != nil {
		t.Fatal(err)
	}
	outputs, err := parseSafetensorsF32(data)
	if err != nil {
		t.Fatalf("oracle outputs: %v", err)
	}
	return outputs
}

// oracleInputsJSON encodes the cases as m3ae_ref.py reads them. Patch
// values are written as float64 decimals, which Python parses back to the
// same float32 values exactly.
func oracleInputsJSON(t testing.TB, cfg Config, cases []oracleCase) []byte {
	t.Helper()
	type jsonCase struct {
		Name      string    `json:"name"`
		Patches   []float64 `json:"patches"`
		Tokens    []int32   `json:"tokens"`
		ImageMask []bool    `json:"image_mask"`
		TextMask  []bool    `json:"text_mask"`
		OrderSeed int       `json:"order_seed"`
	}
	doc := struct {
		Config Config     `json:"config"`
		Cases  []jsonCase `json:"cases"`
	}{Config: cfg}
	for i, c := range cases {
		jc := jsonCase{Name: c.name, Tokens: c.in.Tokens, OrderSeed: i}
		if c.in.hasImage() {
			jc.Patches = make([]float64, len(c.in.Patches))
			for k, v := range c.in.Patches {
				jc.Patches[k] = float64(v)
			}
			jc.ImageMask = c.masks.Image
		}
		if c.in.hasText() {
			jc.TextMask = c.masks.Text
		}
		doc.Cases = append(doc.Cases, jc)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parseSafetensorsF32 reads the F32 tensors of a safetensors file, as the
// oracle writes them.
func parseSafetensorsF32(data []byte) (map[string][]float32, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file of %d bytes has no header length", len(data))
	}
	headerLen := binary.LittleEndian.Uint64(data[:8])
	if headerLen > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d exceeds the file", headerLen)
	}
	var header map[string]struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets []uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(data[8:8+headerLen], &header); err != nil {
		return nil, err
	}
	body := data[8+headerLen:]
	out := make(map[string][]float32)
	for name, e := range header {
		if e.DType != "F32" || len(e.Offsets) != 2 || e.Offsets[0] > e.Offsets[1] || e.Offsets[1] > uint64(len(body)) {
			return nil, fmt.Errorf("tensor %q: bad entry %+v", name, e)
		}
		raw := body[e.Offsets[0]:e.Offsets[1]]
		values := make([]float32, len(raw)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		out[name] = values
	}
	return out, nil
}

// compareOutputs checks that got and want have the same keys and lengths
// and that every value is within tolerance, and logs the largest
// difference of each output.
func compareOutputs(t *testing.T, got, want map[string][]float32, tolerance float64) {
	t.Helper()
	for _, key := range sortedOutputNames(want) {
		g, ok := got[key]
		if !ok {
			t.Errorf("%s: missing from the Go outputs", key)
			continue
		}
		if len(g) != len(want[key]) {
			t.Errorf("%s: %d values, want %d", key, len(g), len(want[key]))
			continue
		}
		diff, at := maxAbsDiffIndex(g, want[key])
		t.Logf("%-32s max |go - want| = %.3g", key, diff)
		if !(diff <= tolerance) {
			t.Errorf("%s[%d] = %v, want %v (|diff| %.3g > %g)", key, at, g[at], want[key][at], diff, tolerance)
		}
	}
	for _, key := range sortedOutputNames(got) {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: Go output has no reference value", key)
		}
	}
}

func maxAbsDiffIndex(a, b []float32) (float64, int) {
	worst, at := 0.0, 0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	return worst, at
}

func sortedOutputNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestTorchOracle(t *testing.T) {
	requireTorch(t)
	models := []struct {
		name string
		cfg  Config
		seed uint64
	}{
		{"micro", microConfig(t), goldenSeed},
		{"wide", wideConfig, 2},
	}
	for _, tc := range models {
		t.Run(tc.name, func(t *testing.T) {
			mf := perturbedModelFile(t, tc.cfg, tc.seed)
			m, err := NewModel(mf)
			if err != nil {
				t.Fatal(err)
			}
			cases := oracleCases(t, tc.cfg, tc.seed)
			want := runOracle(t, mf, cases)
			compareOutputs(t, runGo(t, m, cases), want, oracleTolerance)
			if *updateGolden && tc.name == "micro" {
				writeGolden(t, tc.cfg, want)
			}
		})
	}
}

// goldenLogitColumns are the token-logit columns kept in micro.json,
// because the full [Nt, V] logits would make the file megabytes long.
// micro-bits.json covers every column.
func goldenLogitColumns(vocabSize int) []int {
	columns := []int{0, 1, 2, 3}
	for c := 101; c < vocabSize; c += 1523 {
		columns = append(columns, c)
	}
	return append(columns, vocabSize-1)
}

// goldenFile is the content of micro.json: oracle outputs for the micro preset
// model perturbedModelFile(micro, goldenSeed) on oracleCases(micro,
// goldenSeed), with token_logits cut to LogitColumns ([Nt, len(columns)]).
type goldenFile struct {
	Seed         uint64               `json:"seed"`
	LogitColumns []int                `json:"logit_columns"`
	Outputs      map[string][]float32 `json:"outputs"`
}

func selectLogitColumns(logits []float32, vocabSize int, columns []int) []float32 {
	rows := len(logits) / vocabSize
	out := make([]float32, 0, rows*len(columns))
	for r := range rows {
		for _, c := range columns {
			out = append(out, logits[r*vocabSize+c])
		}
	}
	return out
}

func goldenView(outputs map[string][]float32, vocabSize int, columns []int) map[string][]float32 {
	view := make(map[string][]float32, len(outputs))
	for key, values := range outputs {
		if filepath.Base(key) == "token_logits" {
			values = selectLogitColumns(values, vocabSize, columns)
		}
		view[key] = values
	}
	return view
}

// roundForGolden keeps 7 significant digits, far below oracleTolerance for
// the magnitudes these outputs have, so the file stays short.
func roundForGolden(values []float32) []float32 {
	out := make([]float32, len(values))
	for i, v := range values {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', 7, 32), 32)
		out[i] = float32(r)
	}
	return out
}

func writeGolden(t *testing.T, cfg Config, oracle map[string][]float32) {
	t.Helper()
	columns := goldenLogitColumns(cfg.VocabSize)
	g := goldenFile{Seed: goldenSeed, LogitColumns: columns, Outputs: goldenView(oracle, cfg.VocabSize, columns)}
	for key, values := range g.Outputs {
		g.Outputs[key] = roundForGolden(values)
	}
	data, err := marshalGolden(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", goldenPath, len(data))
}

// marshalGolden encodes g as JSON with one output per line, which keeps
// the file short and its diffs readable.
func marshalGolden(g goldenFile) ([]byte, error) {
	var b bytes.Buffer
	columns, err := json.Marshal(g.LogitColumns)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "{\n\"seed\": %d,\n\"logit_columns\": %s,\n\"outputs\": {\n", g.Seed, columns)
	for i, key := range sortedOutputNames(g.Outputs) {
		values, err := json.Marshal(g.Outputs[key])
		if err != nil {
			return nil, err
		}
		separator := ","
		if i == len(g.Outputs)-1 {
			separator = ""
		}
		fmt.Fprintf(&b, "%q: %s%s\n", key, values, separator)
	}
	b.WriteString("}\n}\n")
	return b.Bytes(), nil
}

func TestGoldenOutputs(t *testing.T) {
	cfg := microConfig(t)
	// Regenerate with: go test ./core -run 'TestTorchOracle/micro' -update-golden
	// (needs /usr/bin/python3 with torch and numpy).
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	if g.Seed != goldenSeed {
		t.Fatalf("%s has seed %d, want %d", goldenPath, g.Seed, goldenSeed)
	}
	m := newTestModel(t, cfg, goldenSeed)
	got := runGo(t, m, oracleCases(t, cfg, goldenSeed))
	compareOutputs(t, goldenView(got, cfg.VocabSize, g.LogitColumns), g.Outputs, oracleTolerance)
}

// outputHashes returns the sha256 of each output's float32 values in
// little-endian byte order.
func outputHashes(outputs map[string][]float32) map[string]string {
	hashes := make(map[string]string, len(outputs))
	buf := make([]byte, 4)
	for key, values := range outputs {
		h := sha256.New()
		for _, v := range values {
			binary.LittleEndian.PutUint32(buf, math.Float32bits(v))
			h.Write(buf)
		}
		hashes[key] = hex.EncodeToString(h.Sum(nil))
	}
	return hashes
}

// goldenBits is the content of micro-bits.json.
type goldenBits struct {
	Seed   uint64            `json:"seed"`
	SHA256 map[string]string `json:"sha256"`
}

func TestGoldenBits(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, goldenSeed)
	got := outputHashes(runGo(t, m, oracleCases(t, cfg, goldenSeed)))

	// Regenerate with: go test ./core -run TestGoldenBits -update-golden
	// Every target (native, GOOS=js, GOOS=wasip1) must give these bits, so
	// rewrite the file only for a deliberate change of the arithmetic.
	if *updateGolden {
		data, err := json.MarshalIndent(goldenBits{Seed: goldenSeed, SHA256: got}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bitsPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", bitsPath)
	}
	data, err := os.ReadFile(bitsPath)
	if err != nil {
		t.Fatal(err)
	}
	var want goldenBits
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", bitsPath, err)
	}
	if want.Seed != goldenSeed {
		t.Fatalf("%s has seed %d, want %d", bitsPath, want.Seed, goldenSeed)
	}
	for _, key := range sortedOutputNames(want.SHA256) {
		if got[key] != want.SHA256[key] {
			t.Errorf("sha256(%s) = %s, want %s", key, got[key], want.SHA256[key])
		}
	}
	for _, key := range sortedOutputNames(got) {
		if _, ok := want.SHA256[key]; !ok {
			t.Errorf("%s: output has no hash in %s", key, bitsPath)
		}
	}
}
