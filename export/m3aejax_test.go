package export

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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

const (
	fixtureDir = "../testdata/m3aejax"
	// markerVariable names the directory where the hostile fixtures'
	// commands create their marker files.
	markerVariable = "M3AE_PICKLE_MARKER_DIR"
	oraclePython   = "/usr/bin/python3"
	oracleScript   = "../testdata/torchref/m3ae_ref.py"
	// oracleTolerance bounds |Go - PyTorch| for every output, as in
	// core's oracle test: both compute in float32, summing in different
	// orders.
	oracleTolerance = 1e-4
)

// fixtureEntry is one model fixture of fixtures.json.
type fixtureEntry struct {
	Protocol int         `json:"protocol"`
	Config   core.Config `json:"config"`
	Options  struct {
		ImageSize       int `json:"image_size"`
		TextLength      int `json:"text_length"`
		NumHeads        int `json:"num_heads"`
		DecoderNumHeads int `json:"dec_num_heads"`
	} `json:"options"`
	OptimizerState bool   `json:"optimizer_state"`
	Step           int64  `json:"step"`
	Epoch          int64  `json:"epoch"`
	ModelType      string `json:"model_type"`
}

func (e fixtureEntry) importOptions() M3AEJaxOptions {
	return M3AEJaxOptions{
		ImageSize:       e.Options.ImageSize,
		TextLength:      e.Options.TextLength,
		NumHeads:        e.Options.NumHeads,
		DecoderNumHeads: e.Options.DecoderNumHeads,
		Vocab:           testVocab(e.Config.VocabSize),
	}
}

func readManifest(t *testing.T) map[string]fixtureEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]fixtureEntry
	if err := json.Unmarshal(data, &manifest); err != nil {
		t.Fatalf("fixtures.json: %v", err)
	}
	return manifest
}

// importFile imports the pickle at path.
func importFile(t *testing.T, path string, opts M3AEJaxOptions) (*M3AEJaxCheckpoint, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return ImportM3AEJax(f, info.Size(), opts)
}

// checkFixtureValues checks every tensor of mf bit for bit against the
// fixture's parameters, and that it differs from the Adam moments.
func checkFixtureValues(t *testing.T, mf *core.ModelFile) {
	t.Helper()
	for _, spec := range core.ParamSpecs(mf.Config) {
		path := flaxPath(spec.Name)
		got := mf.Tensors[spec.Name].F32
		want := fixtureValues(path, spec.NumElements(), 0)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s[%d] = %v, want %v", path, i, got[i], want[i])
				break
			}
		}
		for tree, name := range map[int]string{1: "mu", 2: "nu"} {
			if slices.Equal(got, fixtureValues(path, spec.NumElements(), tree)) {
				t.Errorf("%s holds the optimizer's %s values", path, name)
			}
		}
	}
}

func TestImportFixtures(t *testing.T) {
	for name, entry := range readManifest(t) {
		t.Run(name, func(t *testing.T) {
			t.Setenv(markerVariable, t.TempDir())
			ckpt, err := importFile(t, filepath.Join(fixtureDir, name), entry.importOptions())
			if err != nil {
				t.Fatal(err)
			}
			if ckpt.Model.Config != entry.Config {
				t.Errorf("config = %+v, want %+v", ckpt.Model.Config, entry.Config)
			}
			if ckpt.Step != entry.Step {
				t.Errorf("step = %d, want %d", ckpt.Step, entry.Step)
			}
			if ckpt.Epoch != entry.Epoch {
				t.Errorf("epoch = %d, want %d", ckpt.Epoch, entry.Epoch)
			}
			if ckpt.ModelType != entry.ModelType {
				t.Errorf("model type = %q, want %q", ckpt.ModelType, entry.ModelType)
			}
			checkFixtureValues(t, ckpt.Model)
			checkNoMarkers(t)
		})
	}
}

// TestImportFixturesFromFile imports every fixture with the pickle reader
// keeping only bytes values of up to 16 bytes and str values of up to 64
// bytes in memory. So the import reads the arrays' bytes from the file, and
// at protocols 1 and 2 the latin-1 text that carries them.
func TestImportFixturesFromFile(t *testing.T) {
	limits := defaultPickleLimits
	limits.keepBytes, limits.keepText = 16, 64
	for name, entry := range readManifest(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(fixtureDir, name))
			if err != nil {
				t.Fatal(err)
			}
			ckpt, err := importM3AEJax(bytes.NewReader(data), int64(len(data)), entry.importOptions(), limits)
			if err != nil {
				t.Fatal(err)
			}
			checkFixtureValues(t, ckpt.Model)
		})
	}
}

// TestImportOfficialHeadRule checks that the official fixture, imported
// with no options but the sizes it cannot record, gets width/64 encoder
// heads and 16 decoder heads.
func TestImportOfficialHeadRule(t *testing.T) {
	entry := readManifest(t)["official_p5.pkl"]
	opts := entry.importOptions()
	if opts.NumHeads != 0 || opts.DecoderNumHeads != 0 {
		t.Fatalf("official_p5.pkl sets heads %d and %d, want the official rule (0)", opts.NumHeads, opts.DecoderNumHeads)
	}
	ckpt, err := importFile(t, filepath.Join(fixtureDir, "official_p5.pkl"), opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ckpt.Model.Config
	if cfg.NumHeads != cfg.EmbedDim/64 {
		t.Errorf("encoder heads = %d, want %d/64", cfg.NumHeads, cfg.EmbedDim)
	}
	if cfg.DecoderNumHeads != 16 {
		t.Errorf("decoder heads = %d, want 16", cfg.DecoderNumHeads)
	}
}

func TestImportDefaultSizes(t *testing.T) {
	ckpt, err := importFile(t, filepath.Join(fixtureDir, "official_p5.pkl"), M3AEJaxOptions{Vocab: testVocab(16)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ckpt.Model.Config.ImageSize; got != DefaultM3AEImageSize {
		t.Errorf("image size = %d, want %d", got, DefaultM3AEImageSize)
	}
	if got := ckpt.Model.Config.TextLength; got != DefaultM3AETextLength {
		t.Errorf("text length = %d, want %d", got, DefaultM3AETextLength)
	}
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

// oracleCase is one example for the Go model and the PyTorch oracle.
type oracleCase struct {
	Name      string    `json:"name"`
	Patches   []float64 `json:"patches"`
	Tokens    []int32   `json:"tokens"`
	ImageMask []bool    `json:"image_mask"`
	TextMask  []bool    `json:"text_mask"`
	OrderSeed int       `json:"order_seed"`
}

func oracleCases(t *testing.T, cfg core.Config) []oracleCase {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	patches := func() []float64 {
		p := make([]float64, cfg.NumPatches()*cfg.PatchDim())
		for i := range p {
			p[i] = float64(float32(rng.Float64()*4 - 2))
		}
		return p
	}
	tokens := func(n int) []int32 {
		ids := make([]int32, cfg.TextLength)
		for i := range n {
			ids[i] = int32(1 + rng.IntN(cfg.VocabSize-1))
		}
		return ids
	}
	masks := func(seed uint64) core.Masks {
		m, err := core.RandomMasks(cfg, 0.75, 0.5, seed)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1, m2, m3 := masks(1), masks(2), masks(3)
	return []oracleCase{
		{Name: "image_text", Patches: patches(), Tokens: tokens(cfg.TextLength - 2), ImageMask: m1.Image, TextMask: m1.Text, OrderSeed: 1},
		{Name: "image_only", Patches: patches(), ImageMask: m2.Image, OrderSeed: 2},
		{Name: "text_pads", Tokens: tokens(3), TextMask: m3.Text, OrderSeed: 3},
		{Name: "nothing_hidden", Patches: patches(), Tokens: tokens(cfg.TextLength), OrderSeed: 4},
	}
}

// runModel returns the Go model's outputs under the oracle's names.
func runModel(t *testing.T, mf *core.ModelFile, cases []oracleCase) map[string][]float32 {
	t.Helper()
	m, err := core.NewModel(mf)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, c := range cases {
		in := core.Inputs{Tokens: c.Tokens}
		for _, v := range c.Patches {
			in.Patches = append(in.Patches, float32(v))
		}
		for _, pool := range []core.Pooling{core.PoolCLS, core.PoolMean} {
			embedding, err := m.Embed(in, pool)
			if err != nil {
				t.Fatalf("%s: embed %s: %v", c.Name, pool, err)
			}
			out[c.Name+"/embedding_"+pool.String()] = embedding
		}
		r, err := m.Reconstruct(in, core.Masks{Image: c.ImageMask, Text: c.TextMask})
		if err != nil {
			t.Fatalf("%s: reconstruct: %v", c.Name, err)
		}
		out[c.Name+"/encoded"] = r.Encoded
		if r.PixelPred != nil {
			out[c.Name+"/pixel_pred"] = r.PixelPred
		}
		if r.TokenLogits != nil {
			out[c.Name+"/token_logits"] = r.TokenLogits
		}
	}
	return out
}

// runOracle runs m3ae_ref.py on mf and the cases and returns its outputs.
func runOracle(t *testing.T, mf *core.ModelFile, cases []oracleCase) map[string][]float32 {
	t.Helper()
	dir := t.TempDir()
	var model bytes.Buffer
	if err := core.WriteModelFile(&model, mf); err != nil {
		t.Fatal(err)
	}
	inputs, err := json.Marshal(struct {
		Config core.Config  `json:"config"`
		Cases  []oracleCase `json:"cases"`
	}{mf.Config, cases})
	if err != nil {
		t.Fatal(err)
	}
	modelPath, inputsPath, outputsPath := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "inputs.json"), filepath.Join(dir, "outputs.safetensors")
	if err := os.WriteFile(modelPath, model.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputsPath, inputs, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(oraclePython, oracleScript, modelPath, inputsPath, outputsPath).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", oraclePython, oracleScript, err, out)
	}
	data, err := os.ReadFile(outputsPath)
	if err != nil {
		t.Fatal(err)
	}
	return readOracleOutputs(t, data)
}

// readOracleOutputs reads the F32 tensors of the safetensors file the
// oracle writes.
func readOracleOutputs(t *testing.T, data []byte) map[string][]float32 {
	t.Helper()
	headerLen := binary.LittleEndian.Uint64(data[:8])
	var header map[string]struct {
		DType   string   `json:"dtype"`
		Offsets []uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(data[8:8+headerLen], &header); err != nil {
		t.Fatalf("oracle outputs: %v", err)
	}
	body := data[8+headerLen:]
	out := map[string][]float32{}
	for name, e := range header {
		if name == "__metadata__" {
			continue
		}
		raw := body[e.Offsets[0]:e.Offsets[1]]
		values := make([]float32, len(raw)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		out[name] = values
	}
	return out
}

// TestImportMatchesOracle checks that the model imported from the official
// fixture computes what the PyTorch oracle computes on the fixture's
// weights. The oracle reads a model file built from fixtureValues
// directly, so a mistake in the import's names or layouts shows.
func TestImportMatchesOracle(t *testing.T) {
	requireTorch(t)
	entry := readManifest(t)["official_p5.pkl"]
	ckpt, err := importFile(t, filepath.Join(fixtureDir, "official_p5.pkl"), entry.importOptions())
	if err != nil {
		t.Fatal(err)
	}
	cases := oracleCases(t, entry.Config)
	want := runOracle(t, fixtureModelFile(entry.Config), cases)
	got := runModel(t, ckpt.Model, cases)
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		g, ok := got[key]
		if !ok {
			t.Errorf("%s: missing from the Go outputs", key)
			continue
		}
		if len(g) != len(want[key]) {
			t.Errorf("%s: %d values, want %d", key, len(g), len(want[key]))
			continue
		}
		worst, at := 0.0, 0
		for i := range g {
			if d := math.Abs(float64(g[i]) - float64(want[key][i])); d > worst || math.IsNaN(d) {
				worst, at = d, i
			}
		}
		t.Logf("%-28s max |go - torch| = %.3g", key, worst)
		if !(worst <= oracleTolerance) {
			t.Errorf("%s[%d] = %v, want %v (|diff| %.3g > %g)", key, at, g[at], want[key][at], worst, oracleTolerance)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: the oracle has no such output", key)
		}
	}
}

// checkNoMarkers fails the test when any hostile command left a marker
// file in $M3AE_PICKLE_MARKER_DIR.
func checkNoMarkers(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(os.Getenv(markerVariable))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("marker file %s exists: the import ran code from the pickle", e.Name())
	}
}

func TestImportHostileFixtures(t *testing.T) {
	tiny := readManifest(t)["tiny_p5.pkl"]
	tests := []struct {
		file string
		// want are substrings of the error, all required; none means the
		// import succeeds.
		want []string
	}{
		{"os_system.pkl", []string{"invalid M3AE checkpoint", "object that REDUCE of the global posix.system would make"}},
		{"subprocess.pkl", []string{"REDUCE of the global subprocess.check_call"}},
		{"open_file.pkl", []string{"REDUCE of the global io.open"}},
		{"eval.pkl", []string{"REDUCE of the global __builtin__.eval"}},
		{"system_in_params.pkl", []string{"cls_token: is an object that REDUCE of the global posix.system would make, want a float32 numpy array [1 1 8]"}},
		{"system_in_variant.pkl", nil},
		{"deep_params.pkl", []string{"nests deeper than 16 levels"}},
		{"truncated.pkl", []string{"invalid pickle", "the file is truncated"}},
		{"unknown_opcode.pkl", []string{"invalid pickle", "unknown opcode 0xff at offset 4"}},
		{"huge_bytes8.pkl", []string{"opcode BINBYTES8 (0x8e)", "declared length 4611686018427387904 runs past the end of the file"}},
		{"huge_unicode8.pkl", []string{"opcode BINUNICODE8 (0x8d)", "declared length 9223372036854775808 runs past the end of the file"}},
		{"huge_long4.pkl", []string{"opcode LONG4 (0x8b)", "declared length 2147483647 runs past the end of the file"}},
		{"huge_frame.pkl", []string{"opcode FRAME (0x95)", "frame length 1099511627776 runs past the end of the file"}},
		{"deep_marks.pkl", []string{"more than 4096 MARKs are open at once"}},
		{"deep_lists.pkl", []string{"invalid M3AE checkpoint", "the pickle contains a list of 1 items"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Setenv(markerVariable, t.TempDir())
			ckpt, err := importFile(t, filepath.Join(fixtureDir, "hostile", tc.file), tiny.importOptions())
			checkNoMarkers(t)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				checkFixtureValues(t, ckpt.Model)
				return
			}
			if err == nil {
				t.Fatal("import succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalidPickle) && !errors.Is(err, ErrInvalidCheckpoint) {
				t.Errorf("error %q wraps neither ErrInvalidPickle nor ErrInvalidCheckpoint", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestHostileFixturesRunInPython checks that the hostile fixtures do run
// their commands under a real unpickler, so that the absence of markers
// after an import means something.
func TestHostileFixturesRunInPython(t *testing.T) {
	if _, err := os.Stat(oraclePython); err != nil {
		t.Skipf("%s not found: %v", oraclePython, err)
	}
	for _, name := range []string{"os_system", "subprocess", "open_file", "eval"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(oraclePython, "-c", "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
				filepath.Join(fixtureDir, "hostile", name+".pkl"))
			cmd.Env = append(os.Environ(), markerVariable+"="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("python pickle.load: %v\n%s", err, out)
			}
			marker := strings.TrimSuffix(name, "_file")
			if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
				t.Errorf("python's pickle.load left no marker %s: %v", marker, err)
			}
		})
	}
}

func microImportConfig() core.Config {
	return core.Config{
		ImageSize: 8, PatchSize: 2, TextLength: 4, VocabSize: 16,
		EmbedDim: 8, Depth: 2, NumHeads: 2,
		DecoderEmbedDim: 8, DecoderDepth: 1, DecoderNumHeads: 2,
		MLPRatio: 2,
	}
}

func microImportOptions(cfg core.Config) M3AEJaxOptions {
	return M3AEJaxOptions{
		ImageSize: cfg.ImageSize, TextLength: cfg.TextLength,
		NumHeads: cfg.NumHeads, DecoderNumHeads: cfg.DecoderNumHeads,
		Vocab: testVocab(cfg.VocabSize),
	}
}

func importBytes(data []byte, opts M3AEJaxOptions) (*M3AEJaxCheckpoint, error) {
	return ImportM3AEJax(bytes.NewReader(data), int64(len(data)), opts)
}

func TestImportBuiltCheckpoint(t *testing.T) {
	cfg := microImportConfig()
	ckpt, err := importBytes(checkpointPickle(cfg, nil), microImportOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if ckpt.Model.Config != cfg {
		t.Errorf("config = %+v, want %+v", ckpt.Model.Config, cfg)
	}
	checkFixtureValues(t, ckpt.Model)
}

func TestImportFortranAndBigEndian(t *testing.T) {
	cfg := microImportConfig()
	data := checkpointPickle(cfg, func(path string, a *array) {
		switch path {
		case "text_embedding/embedding", "encoder/Block_1/TransformerMLP_0/fc1/kernel":
			a.fortran = true
		case "decoder_input_projection/kernel":
			a.byteOrder = ">"
		case "cls_token":
			a.fortran, a.byteOrder = true, ">"
		}
	})
	ckpt, err := importBytes(data, microImportOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureValues(t, ckpt.Model)
}

// TestImportListsEveryProblem checks that one error names every missing,
// unexpected and mismatched parameter.
func TestImportListsEveryProblem(t *testing.T) {
	cfg := microImportConfig()
	data := checkpointPickle(cfg, func(path string, a *array) {
		switch path {
		case "encoder/Block_1/LayerNorm_1/scale":
			a.shape = []int{2, 4}
		case "decoder/LayerNorm_0/bias":
			a.dtype = "f8"
			a.raw = make([]byte, 8*len(a.values))
		}
	})
	// Rename one parameter, so one is missing and one unexpected.
	data = bytes.Replace(data, []byte("text_mask_embedding"), []byte("text_mask_embeddinX"), 1)
	_, err := importBytes(data, microImportOptions(cfg))
	if err == nil {
		t.Fatal("import succeeded, want an error")
	}
	for _, want := range []string{
		"4 problems",
		"text_mask_embedding: missing, want float32 [1 1 8]",
		"text_mask_embeddinX: unexpected (a numpy array of dtype \"<f4\" and shape [1 1 8])",
		"encoder/Block_1/LayerNorm_1/scale: shape [2 4], want [8]",
		"decoder/LayerNorm_0/bias: dtype \"<f8\", want float32",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestImportRejectsSharedData(t *testing.T) {
	cfg := microImportConfig()
	cfg.VocabSize = 1024
	// Every parameter of 64 or more values refers to one memoized buffer
	// of the text embedding's size, so the file is much smaller than
	// the parameters.
	first := true
	data := buildCheckpoint(cfg, func(path string, a *array) {
		if len(a.values) < 64 {
			return
		}
		a.writeData = func(b *pickleBuilder) {
			if first {
				b.byteArray8(make([]byte, 4*cfg.VocabSize*cfg.EmbedDim)).op(opBinPut, 200)
				first = false
				return
			}
			b.op(opBinGet, 200)
		}
	}, false)
	_, err := importBytes(data, microImportOptions(cfg))
	if err == nil || !strings.Contains(err.Error(), "several parameters share their data") {
		t.Fatalf("error = %v, want a shared-data error", err)
	}
}

func TestImportOutOfBandBuffer(t *testing.T) {
	cfg := microImportConfig()
	data := checkpointPickle(cfg, func(path string, a *array) {
		if path == "cls_token" {
			a.writeData = func(b *pickleBuilder) { b.op(opNextBuffer, opReadOnlyBuffer) }
		}
	})
	_, err := importBytes(data, microImportOptions(cfg))
	if err == nil || !strings.Contains(err.Error(), "cls_token: unreadable numpy array: its data is out-of-band buffer 0") {
		t.Fatalf("error = %v, want an out-of-band buffer error for cls_token", err)
	}
}

func TestImportVocabularyRequired(t *testing.T) {
	cfg := microImportConfig()
	opts := microImportOptions(cfg)
	opts.Vocab = nil
	_, err := importBytes(checkpointPickle(cfg, nil), opts)
	if err == nil || !strings.Contains(err.Error(), "the text embedding has 16 rows") || !strings.Contains(err.Error(), "--vocab") {
		t.Fatalf("error = %v, want one that asks for --vocab", err)
	}
}

func TestImportHeadRuleNeedsWidth(t *testing.T) {
	cfg := microImportConfig()
	opts := microImportOptions(cfg)
	opts.NumHeads = 0
	_, err := importBytes(checkpointPickle(cfg, nil), opts)
	if err == nil || !strings.Contains(err.Error(), "encoder width 8 is not a multiple of 64") {
		t.Fatalf("error = %v, want a head-rule error", err)
	}
}

// TestImportReadsOnlyParameters checks that the import skips the bytes of
// the optimizer's moments: a file whose arrays are far larger than the
// read-ahead buffer is read little more than once for the parameters.
func TestImportReadsOnlyParameters(t *testing.T) {
	cfg := microImportConfig()
	cfg.VocabSize = 8192 // text embedding and text output of 256 KiB each
	data := checkpointPickle(cfg, nil)
	reader := &countingReaderAt{data: data}
	opts := microImportOptions(cfg)
	ckpt, err := ImportM3AEJax(reader, int64(len(data)), opts)
	if err != nil {
		t.Fatal(err)
	}
	paramBytes := int64(4 * cfg.NumParams())
	t.Logf("file %d bytes, parameters %d bytes, read %d bytes", len(data), paramBytes, reader.read.Load())
	// The parse reads the small arrays and the read-ahead around the
	// large ones (64 KiB each); the large parameters are read once.
	if limit := paramBytes + 12*readBufferSize; reader.read.Load() > limit {
		t.Errorf("read %d bytes of a %d-byte file, want at most %d", reader.read.Load(), len(data), limit)
	}
	checkFixtureValues(t, ckpt.Model)
}
