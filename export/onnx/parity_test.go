package onnx_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

// parityTolerance is the largest absolute difference allowed between an
// ONNX Runtime output and the core's.
const parityTolerance = 1e-4

// onnxRuntimeVersion is the onnxruntime-node version that .ci/run installs.
const onnxRuntimeVersion = "1.30.0"

// onnxRuntimePackage returns the npm package that runs the models:
// onnxruntime-node, or the package M3AE_ONNXRUNTIME_PACKAGE names, such as
// onnxruntime-web.
func onnxRuntimePackage() string {
	if name := os.Getenv("M3AE_ONNXRUNTIME_PACKAGE"); name != "" {
		return name
	}
	return "onnxruntime-node"
}

// onnxRuntimeModules returns the node_modules folder that holds the
// onnxRuntimePackage: $M3AE_ONNXRUNTIME_DIR/node_modules, or by default
// m3ae-edge/onnxruntime/node_modules in the user's cache folder, where
// .ci/run installs onnxruntime-node. It skips the test when node or the
// package is missing, unless M3AE_REQUIRE_ONNXRUNTIME is 1.
func onnxRuntimeModules(t *testing.T) string {
	t.Helper()
	prefix := os.Getenv("M3AE_ONNXRUNTIME_DIR")
	if prefix == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			skipOrFail(t, fmt.Sprintf("no user cache folder (%v) and M3AE_ONNXRUNTIME_DIR is unset", err))
		}
		prefix = filepath.Join(cache, "m3ae-edge", "onnxruntime")
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node not found on PATH: install Node.js (Debian: apt-get install nodejs)")
	}
	nodeModules := filepath.Join(prefix, "node_modules")
	name := onnxRuntimePackage()
	manifest, err := os.ReadFile(filepath.Join(nodeModules, name, "package.json"))
	if err != nil {
		skipOrFail(t, fmt.Sprintf("%s not found in %s: run npm install --prefix %s --ignore-scripts --save-exact %s@%s",
			name, nodeModules, prefix, name, onnxRuntimeVersion))
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(manifest, &pkg); err == nil && pkg.Version != onnxRuntimeVersion {
		t.Logf("%s in %s is version %s; .ci/run pins %s", name, nodeModules, pkg.Version, onnxRuntimeVersion)
	}
	return nodeModules
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("M3AE_REQUIRE_ONNXRUNTIME") == "1" {
		t.Fatalf("%s (M3AE_REQUIRE_ONNXRUNTIME=1 turns this skip into a failure)", reason)
	}
	t.Skipf("%s; set M3AE_REQUIRE_ONNXRUNTIME=1 to fail instead of skipping", reason)
}

// ortTensor is a tensor as testdata/onnx/run.js reads and writes it.
type ortTensor struct {
	Type string `json:"type"`
	Dims []int  `json:"dims"`
	Data string `json:"data"`
}

type ortRun struct {
	Model  string               `json:"model"`
	Inputs map[string]ortTensor `json:"inputs"`
}

type ortResponse struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Runs    []struct {
		Outputs map[string]ortTensor `json:"outputs"`
	} `json:"runs"`
}

func float32Tensor(dims []int, values []float32) ortTensor {
	raw := make([]byte, 0, 4*len(values))
	for _, v := range values {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return ortTensor{Type: "float32", Dims: dims, Data: base64.StdEncoding.EncodeToString(raw)}
}

func int32Tensor(dims []int, values []int32) ortTensor {
	raw := make([]byte, 0, 4*len(values))
	for _, v := range values {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
	}
	return ortTensor{Type: "int32", Dims: dims, Data: base64.StdEncoding.EncodeToString(raw)}
}

func (tensor ortTensor) float32s(t *testing.T, name string) []float32 {
	t.Helper()
	if tensor.Type != "float32" {
		t.Fatalf("output %s has type %s, want float32", name, tensor.Type)
	}
	raw, err := base64.StdEncoding.DecodeString(tensor.Data)
	if err != nil {
		t.Fatalf("output %s: %v", name, err)
	}
	values := make([]float32, len(raw)/4)
	for i := range values {
		values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return values
}

// runONNXRuntime runs every request in one node process.
func runONNXRuntime(t *testing.T, nodeModules string, runs []ortRun) ortResponse {
	t.Helper()
	request, err := json.Marshal(map[string]any{"threads": 2, "runs": runs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join("..", "..", "testdata", "onnx", "run.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	cmd.Stdin = bytes.NewReader(request)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node testdata/onnx/run.js: %v\n%s", err, stderr.String())
	}
	var response ortResponse
	if err := json.Unmarshal(stdout.Bytes(), &response); err != nil {
		t.Fatalf("response of run.js: %v", err)
	}
	if len(response.Runs) != len(runs) {
		t.Fatalf("run.js returned %d runs, want %d", len(response.Runs), len(runs))
	}
	return response
}

// example is one input with the masks of its reconstruction.
type example struct {
	in    core.Inputs
	masks core.Masks
}

// newExamples draws count examples: normal random patches and captions of
// different lengths padded with core.PadID, with masks drawn at the given
// ratios, which give every example the same number of kept positions.
func newExamples(t *testing.T, cfg core.Config, count int, imageRatio, textRatio float64, seed uint64) []example {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	examples := make([]example, count)
	for i := range examples {
		patches := make([]float32, cfg.NumPatches()*cfg.PatchDim())
		for j := range patches {
			patches[j] = float32(rng.NormFloat64())
		}
		tokens := make([]int32, cfg.TextLength)
		length := min(cfg.TextLength, 3+4*i)
		for j := range length {
			tokens[j] = int32(1000 + rng.IntN(cfg.VocabSize-1000))
		}
		masks, err := core.RandomMasks(cfg, imageRatio, textRatio, seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		examples[i] = example{in: core.Inputs{Patches: patches, Tokens: tokens}, masks: masks}
	}
	return examples
}

// visible returns the ascending indices of the false entries of hidden.
func visible(hidden []bool) []int32 {
	var keep []int32
	for i, h := range hidden {
		if !h {
			keep = append(keep, int32(i))
		}
	}
	return keep
}

// onnxInputs returns the inputs of spec for a batch of examples.
func onnxInputs(cfg core.Config, spec onnx.Spec, examples []example) map[string]ortTensor {
	batch := len(examples)
	inputs := make(map[string]ortTensor)
	if spec.Image {
		var patches []float32
		var keep []int32
		for _, e := range examples {
			patches = append(patches, e.in.Patches...)
			keep = append(keep, visible(e.masks.Image)...)
		}
		inputs[onnx.InputPatches] = float32Tensor([]int{batch, cfg.NumPatches(), cfg.PatchDim()}, patches)
		if spec.Task == onnx.TaskReconstruct {
			inputs[onnx.InputImageKeep] = int32Tensor([]int{batch, len(keep) / batch}, keep)
		}
	}
	if spec.Text {
		var tokens, keep []int32
		for _, e := range examples {
			tokens = append(tokens, e.in.Tokens...)
			keep = append(keep, visible(e.masks.Text)...)
		}
		inputs[onnx.InputTokens] = int32Tensor([]int{batch, cfg.TextLength}, tokens)
		if spec.Task == onnx.TaskReconstruct {
			inputs[onnx.InputTextKeep] = int32Tensor([]int{batch, len(keep) / batch}, keep)
		}
	}
	return inputs
}

// coreOutputs returns the core's outputs for spec on a batch of examples,
// concatenated over the batch, keyed by ONNX output name.
func coreOutputs(t *testing.T, m *core.Model, spec onnx.Spec, examples []example) map[string][]float32 {
	t.Helper()
	outputs := make(map[string][]float32)
	for _, e := range examples {
		in := e.in
		if !spec.Image {
			in.Patches = nil
		}
		if !spec.Text {
			in.Tokens = nil
		}
		if spec.Task == onnx.TaskEmbed {
			for _, pool := range []struct {
				name    string
				pooling core.Pooling
			}{{onnx.OutputCLS, core.PoolCLS}, {onnx.OutputMean, core.PoolMean}} {
				embedding, err := m.Embed(in, pool.pooling)
				if err != nil {
					t.Fatalf("core embed %s: %v", spec.Name(), err)
				}
				outputs[pool.name] = append(outputs[pool.name], embedding...)
			}
			continue
		}
		r, err := m.Reconstruct(in, e.masks)
		if err != nil {
			t.Fatalf("core reconstruct %s: %v", spec.Name(), err)
		}
		outputs[onnx.OutputEncoded] = append(outputs[onnx.OutputEncoded], r.Encoded...)
		if spec.Image {
			outputs[onnx.OutputPixelPred] = append(outputs[onnx.OutputPixelPred], r.PixelPred...)
			outputs[onnx.OutputReconstructedPatches] = append(outputs[onnx.OutputReconstructedPatches], r.Patches...)
		}
		if spec.Text {
			outputs[onnx.OutputTokenLogits] = append(outputs[onnx.OutputTokenLogits], r.TokenLogits...)
		}
	}
	return outputs
}

// maxAbsDiff returns the largest |got[i] - want[i]|, or +Inf when either
// holds a NaN where the other does not.
func maxAbsDiff(got, want []float32) float64 {
	var worst float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) {
			if math.IsNaN(g) != math.IsNaN(w) {
				return math.Inf(1)
			}
			continue
		}
		worst = max(worst, math.Abs(g-w))
	}
	return worst
}

type parityCase struct {
	name  string
	model func(t *testing.T) *core.ModelFile
}

func randomModel(preset string, seed uint64) func(t *testing.T) *core.ModelFile {
	return func(t *testing.T) *core.ModelFile {
		cfg, err := core.Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, seed)
		if err != nil {
			t.Fatal(err)
		}
		return mf
	}
}

func int8Model(preset string, seed uint64) func(t *testing.T) *core.ModelFile {
	return func(t *testing.T) *core.ModelFile {
		mf, _, err := quantize.QuantizeModelFile(randomModel(preset, seed)(t))
		if err != nil {
			t.Fatal(err)
		}
		return mf
	}
}

// TestParityWithONNXRuntime exports every model of the micro and tiny
// presets with random weights, and of their int8 files, runs them in
// ONNX Runtime on a batch of two examples, and compares every output with
// the core's. It logs the max abs difference of each output.
func TestParityWithONNXRuntime(t *testing.T) {
	nodeModules := onnxRuntimeModules(t)
	cases := []parityCase{
		{"micro", randomModel("micro", 11)},
		{"tiny", randomModel("tiny", 12)},
		{"micro-int8", int8Model("micro", 13)},
		{"tiny-int8", int8Model("tiny", 14)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			mf := c.model(t)
			cfg := mf.Config
			m, err := core.NewModel(mf)
			if err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()
			specs := onnx.Specs()
			for _, spec := range specs {
				data, err := onnx.Marshal(mf, spec)
				if err != nil {
					t.Fatalf("marshal %s: %v", spec.Name(), err)
				}
				if err := os.WriteFile(filepath.Join(dir, spec.FileName()), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// One batch of two examples per model, then single examples
			// whose image_keep or text_keep has 0 columns.
			batch := newExamples(t, cfg, 2, core.DefaultMaskRatio, core.DefaultMaskRatio, 21)
			imageHidden := newExamples(t, cfg, 1, 1, 0.5, 31)
			textHidden := newExamples(t, cfg, 1, 0.5, 1, 41)
			type check struct {
				label    string
				spec     onnx.Spec
				examples []example
			}
			var checks []check
			for _, spec := range specs {
				checks = append(checks, check{spec.Name(), spec, batch})
			}
			checks = append(checks,
				check{"reconstruct-image-text, every patch hidden",
					onnx.Spec{Task: onnx.TaskReconstruct, Image: true, Text: true}, imageHidden},
				check{"reconstruct-image-text, every text position hidden",
					onnx.Spec{Task: onnx.TaskReconstruct, Image: true, Text: true}, textHidden},
				check{"reconstruct-text, every text position hidden",
					onnx.Spec{Task: onnx.TaskReconstruct, Text: true}, textHidden})

			runs := make([]ortRun, len(checks))
			for i, ch := range checks {
				runs[i] = ortRun{Model: filepath.Join(dir, ch.spec.FileName()), Inputs: onnxInputs(cfg, ch.spec, ch.examples)}
			}
			response := runONNXRuntime(t, nodeModules, runs)

			for i, ch := range checks {
				want := coreOutputs(t, m, ch.spec, ch.examples)
				got := response.Runs[i].Outputs
				names := make([]string, 0, len(want))
				for name := range want {
					names = append(names, name)
				}
				slices.Sort(names)
				if len(got) != len(want) {
					t.Errorf("%s: ONNX Runtime returned outputs %v, want %v", ch.label, keys(got), names)
				}
				for _, name := range names {
					tensor, ok := got[name]
					if !ok {
						t.Errorf("%s: output %s missing", ch.label, name)
						continue
					}
					values := tensor.float32s(t, name)
					if len(values) != len(want[name]) {
						t.Errorf("%s: output %s has %d values (dims %v), want %d", ch.label, name, len(values), tensor.Dims, len(want[name]))
						continue
					}
					diff := maxAbsDiff(values, want[name])
					t.Logf("%s %s: max abs diff %.3g", ch.label, name, diff)
					if !(diff <= parityTolerance) {
						t.Errorf("%s: output %s differs from the core by %.3g, want at most %g", ch.label, name, diff, parityTolerance)
					}
				}
			}
			t.Logf("%s %s, %s in %.1f s", response.Package, response.Version, c.name, time.Since(start).Seconds())
		})
	}
}

func keys(m map[string]ortTensor) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
