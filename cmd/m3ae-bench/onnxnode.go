// The onnx-node group times the core's forward pass natively against
// onnxruntime-node on the ONNX export of the same model. This file also
// prepares the models and inputs that the browser group uses.

package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/forwardinput"
	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

func init() {
	register(group{
		name:  "onnx-node",
		about: "core forward pass natively against onnxruntime-node, batch 1, tiny and small presets",
		run:   runONNXNode,
	})
}

// imageFlag names the image that the inference groups embed and
// reconstruct. onnx-node and browser time the model from its preprocessed
// patches, while wasm times whole calls that decode it.
var imageFlag = stringFlag("image", "testdata/images/photo512x384.jpg",
	"PNG or JPEG input of the onnx-node, browser and wasm groups")

// Inputs and seeds of every inference measurement. Random weights cost the
// same time as trained ones.
const (
	benchCaption   = "a photo of a red apple on a wooden table"
	benchModelSeed = 1
	benchMaskSeed  = 1
)

// onnxRuntimeVersion is the onnxruntime-node and onnxruntime-web version
// that .ci/peers installs.
const onnxRuntimeVersion = "1.30.0"

// maxOutputDiff is the largest absolute difference allowed between
// ONNX Runtime's output and the core's. The two sum in different orders,
// so they agree to float rounding, not bit for bit. A larger difference
// means the two sides did not run the same model on the same inputs.
const maxOutputDiff = 1e-3

//go:embed testdata/ort-node.js
var ortNodeScript []byte

// inferenceOp is one of the two timed calls and the ONNX model that makes
// the same call.
type inferenceOp struct {
	name string
	spec onnx.Spec
	// output is the ONNX output compared with the core's: the CLS
	// embedding for embed, and the encoder output for reconstruct.
	output string
}

var inferenceOps = []inferenceOp{
	{"embed", onnx.Spec{Task: onnx.TaskEmbed, Image: true, Text: true}, onnx.OutputCLS},
	{"reconstruct", onnx.Spec{Task: onnx.TaskReconstruct, Image: true, Text: true}, onnx.OutputEncoded},
}

// inferencePresets returns the presets that the inference groups compare:
// tiny, ours, and small, the official M3AE size. A quick run takes tiny
// alone.
func inferencePresets(env *benchEnv) []string {
	if env.quick {
		return []string{"tiny"}
	}
	return []string{"tiny", "small"}
}

// runCounts is how many calls each side makes for one row.
type runCounts struct {
	oursWarmup, oursRuns int
	// ONNX Runtime needs a few dozen runs to reach its steady speed.
	peerWarmup, peerRuns int
}

// inferenceRuns returns the run counts of preset. small's calls take
// seconds in the core, so it gets fewer of them.
func inferenceRuns(env *benchEnv, preset string) runCounts {
	switch {
	case env.quick:
		return runCounts{oursWarmup: 1, oursRuns: 3, peerWarmup: 3, peerRuns: 3}
	case preset == "small":
		return runCounts{oursWarmup: 2, oursRuns: 10, peerWarmup: 30, peerRuns: 15}
	default:
		return runCounts{oursWarmup: 5, oursRuns: 30, peerWarmup: 50, peerRuns: 30}
	}
}

// inferenceSetup is one preset's model, its ONNX export and the inputs
// that both sides of a comparison get.
type inferenceSetup struct {
	preset string
	cfg    core.Config
	file   *core.ModelFile
	model  *core.Model
	// in contains the patches [Np, p*p*C] and token ids [Nt] of the image
	// and caption.
	in    core.Inputs
	masks core.Masks
	// onnxPaths maps each op's name to its ONNX file.
	onnxPaths map[string]string
}

// newInferenceSetup builds preset's model with random weights, exports the
// ONNX model of each op into dir, and preprocesses the image and caption.
func newInferenceSetup(preset string, imageData []byte, dir string) (*inferenceSetup, error) {
	cfg, err := core.Preset(preset)
	if err != nil {
		return nil, err
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, benchModelSeed)
	if err != nil {
		return nil, err
	}
	pipeline, err := core.NewPipeline(mf)
	if err != nil {
		return nil, err
	}

	img, err := core.DecodeImage(imageData)
	if err != nil {
		return nil, fmt.Errorf("decode -image: %w", err)
	}
	in, err := pipeline.Inputs(img, benchCaption)
	if err != nil {
		return nil, err
	}
	// Inputs alias the pipeline's buffers, so keep copies.
	in = core.Inputs{Patches: append([]float32(nil), in.Patches...), Tokens: append([]int32(nil), in.Tokens...)}
	masks, err := core.RandomMasks(cfg, core.DefaultMaskRatio, core.DefaultMaskRatio, benchMaskSeed)
	if err != nil {
		return nil, err
	}

	s := &inferenceSetup{preset: preset, cfg: cfg, file: mf, model: pipeline.Model(), in: in, masks: masks,
		onnxPaths: map[string]string{}}
	for _, op := range inferenceOps {
		path := filepath.Join(dir, preset+"-"+op.spec.FileName())
		if err := writeONNX(path, mf, op.spec); err != nil {
			return nil, err
		}
		s.onnxPaths[op.name] = path
	}
	return s, nil
}

func writeONNX(path string, mf *core.ModelFile, spec onnx.Spec) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := onnx.Write(f, mf, spec); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runCore makes op's call on the core and returns the output that
// ONNX Runtime's op.output is compared with.
func (s *inferenceSetup) runCore(op inferenceOp) ([]float32, error) {
	if op.spec.Task == onnx.TaskEmbed {
		return s.model.Embed(s.in, core.PoolCLS)
	}
	r, err := s.model.Reconstruct(s.in, s.masks)
	if err != nil {
		return nil, err
	}
	return r.Encoded, nil
}

// keptIndices returns the ascending indices of the visible positions, the
// form of the ONNX models' image_keep and text_keep inputs.
func keptIndices(hidden []bool) []int32 {
	var keep []int32
	for i, h := range hidden {
		if !h {
			keep = append(keep, int32(i))
		}
	}
	return keep
}

// tensorJSON is a tensor as ort-node.js reads and writes it: the
// little-endian bytes of its elements in base64.
type tensorJSON struct {
	Type string `json:"type"`
	Dims []int  `json:"dims"`
	Data string `json:"data"`
}

func float32Tensor(dims []int, values []float32) tensorJSON {
	return tensorJSON{Type: "float32", Dims: dims, Data: base64.StdEncoding.EncodeToString(forwardinput.Float32Bytes(values))}
}

func int32Tensor(dims []int, values []int32) tensorJSON {
	return tensorJSON{Type: "int32", Dims: dims, Data: base64.StdEncoding.EncodeToString(int32Bytes(values))}
}

func int32Bytes(values []int32) []byte {
	out := make([]byte, 0, 4*len(values))
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, uint32(v))
	}
	return out
}

// onnxInputs returns the feeds of op's ONNX model for batch 1.
func (s *inferenceSetup) onnxInputs(op inferenceOp) map[string]tensorJSON {
	cfg := s.cfg
	inputs := map[string]tensorJSON{
		onnx.InputPatches: float32Tensor([]int{1, cfg.NumPatches(), cfg.PatchDim()}, s.in.Patches),
		onnx.InputTokens:  int32Tensor([]int{1, cfg.TextLength}, s.in.Tokens),
	}
	if op.spec.Task == onnx.TaskReconstruct {
		imageKeep, textKeep := keptIndices(s.masks.Image), keptIndices(s.masks.Text)
		inputs[onnx.InputImageKeep] = int32Tensor([]int{1, len(imageKeep)}, imageKeep)
		inputs[onnx.InputTextKeep] = int32Tensor([]int{1, len(textKeep)}, textKeep)
	}
	return inputs
}

// maxAbsDiff returns the largest |got[i] - want[i]|, or +Inf when the
// lengths differ or a value is not finite.
func maxAbsDiff(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var worst float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}

// errPeerMissing marks an error about a peer that is not installed, so
// that the test skips instead of failing.
var errPeerMissing = errors.New("missing peer")

// onnxRuntimeDir returns the npm prefix that contains onnxruntime-node and
// onnxruntime-web: $M3AE_ONNXRUNTIME_DIR, or by default
// m3ae-edge/onnxruntime in the user's cache folder, where .ci/peers
// installs them.
func onnxRuntimeDir() (string, error) {
	if dir := os.Getenv("M3AE_ONNXRUNTIME_DIR"); dir != "" {
		return dir, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no user cache folder (%v) and M3AE_ONNXRUNTIME_DIR is unset: set it to the npm prefix of onnxruntime-node",
			errPeerMissing, err)
	}
	return filepath.Join(cache, "m3ae-edge", "onnxruntime"), nil
}

// findNodePackage returns the folder of the npm package name installed in
// onnxRuntimeDir and its version.
func findNodePackage(name string) (dir, version string, err error) {
	prefix, err := onnxRuntimeDir()
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(prefix, "node_modules", name)
	manifest, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", "", fmt.Errorf("%w: %s not found in %s: run .ci/peers (make bench runs it) or set M3AE_ONNXRUNTIME_DIR to the npm prefix that contains it",
			errPeerMissing, name, filepath.Dir(dir))
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(manifest, &pkg); err != nil || pkg.Version == "" {
		return "", "", fmt.Errorf("%s/package.json has no version: reinstall it with .ci/peers", dir)
	}
	return dir, pkg.Version, nil
}

// findNode returns the node executable on PATH.
func findNode() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: node not found on PATH: install Node.js (Debian: apt-get install nodejs), as .ci/peers does", errPeerMissing)
	}
	return node, nil
}

// ortNodeRequest and ortNodeResponse are the JSON that ort-node.js reads
// and writes.
type ortNodeRequest struct {
	Model   string                `json:"model"`
	Inputs  map[string]tensorJSON `json:"inputs"`
	Threads []int                 `json:"threads"`
	Warmup  int                   `json:"warmup"`
	Runs    int                   `json:"runs"`
	Output  string                `json:"output"`
}

type ortNodeResponse struct {
	Version string `json:"version"`
	Results []struct {
		Threads int        `json:"threads"`
		Millis  []float64  `json:"millis"`
		Output  tensorJSON `json:"output"`
	} `json:"results"`
}

// nodeRunner runs ort-node.js.
type nodeRunner struct {
	node        string
	script      string
	nodeModules string
}

func (r *nodeRunner) run(ctx context.Context, request ortNodeRequest) (*ortNodeResponse, error) {
	body, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, r.node, r.script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+r.nodeModules)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("node ort-node.js %s: %w\n%s", filepath.Base(request.Model), err, stderr.Bytes())
	}
	var response ortNodeResponse
	if err := json.Unmarshal(stdout.Bytes(), &response); err != nil {
		return nil, fmt.Errorf("decode the output of ort-node.js: %w", err)
	}
	if len(response.Results) != len(request.Threads) {
		return nil, fmt.Errorf("ort-node.js returned %d results, want %d", len(response.Results), len(request.Threads))
	}
	return &response, nil
}

// onnxNodeThreads are the intra-op thread counts that onnxruntime-node
// runs with.
var onnxNodeThreads = []int{1, 2}

func runONNXNode(ctx context.Context, env *benchEnv) (string, error) {
	node, err := findNode()
	if err != nil {
		return "", err
	}
	packageDir, version, err := findNodePackage("onnxruntime-node")
	if err != nil {
		return "", err
	}
	if version != onnxRuntimeVersion {
		env.log.Warn("onnxruntime-node version differs from the one .ci/peers installs", "found", version, "want", onnxRuntimeVersion)
	}
	imageData, err := os.ReadFile(env.flag(imageFlag))
	if err != nil {
		return "", fmt.Errorf("read -image: %w", err)
	}
	dir, err := os.MkdirTemp("", "m3ae-bench-onnx-node-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "ort-node.js")
	if err := os.WriteFile(script, ortNodeScript, 0o644); err != nil {
		return "", err
	}
	runner := &nodeRunner{node: node, script: script, nodeModules: filepath.Dir(packageDir)}

	// The scalar kernels, the core before SIMD, time in a build of their
	// own, beside this process's SIMD build.
	scalar := scalarForward{program: filepath.Join(dir, "forwardbench-scalar")}
	env.log.Info("onnx-node: building forwardbench with the scalar kernels")
	if err := buildProgram(ctx, modulePath+"/cmd/m3ae-bench/forwardbench", scalar.program, harness.ScalarFlavor.Env); err != nil {
		return "", err
	}
	bench, err := core.NewDenseBenchmark(1, 1, 1, false, 0)
	if err != nil {
		return "", err
	}
	oursName := fmt.Sprintf("m3ae-edge core (Go, %s kernels)", bench.Kernel())

	peerName := "onnxruntime-node " + version
	table := newMarkdownTable("preset", "op", "threads", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs")
	names := onnxNodeNames{ours: oursName, scalar: "m3ae-edge core (Go, scalar kernels)", peer: peerName}
	var worstDiff float64
	for _, preset := range inferencePresets(env) {
		env.log.Info("onnx-node: exporting", "preset", preset)
		setup, err := newInferenceSetup(preset, imageData, dir)
		if err != nil {
			return "", fmt.Errorf("preset %s: %w", preset, err)
		}
		counts := inferenceRuns(env, preset)
		scalar.dir = filepath.Join(dir, preset)
		if err := writeForwardInputs(scalar.dir, setup); err != nil {
			return "", err
		}
		for _, op := range inferenceOps {
			env.log.Info("onnx-node: timing", "preset", preset, "op", op.name)
			diff, err := timeONNXNodeOp(ctx, table, runner, scalar, setup, op, counts, names)
			if err != nil {
				return "", fmt.Errorf("preset %s %s: %w", preset, op.name, err)
			}
			worstDiff = max(worstDiff, diff)
		}

		// small's two ONNX files take 434 MB, and its model file 286 MB.
		for _, path := range setup.onnxPaths {
			if err := os.Remove(path); err != nil {
				return "", err
			}
		}
		if err := os.RemoveAll(scalar.dir); err != nil {
			return "", err
		}
	}
	return onnxNodeText(env, worstDiff) + "\n" + table.String(), nil
}

// onnxNodeNames are the runtime cells of the table's rows.
type onnxNodeNames struct {
	ours, scalar, peer string
}

// scalarForward is the forwardbench build with the scalar kernels and the
// folder of the preset's example.
type scalarForward struct {
	program, dir string
}

// run times op in the scalar build on one thread and returns the timings
// and the last call's output.
func (f scalarForward) run(ctx context.Context, op inferenceOp, counts runCounts) ([]float64, []float32, error) {
	stdout, err := runChild(ctx, []string{"GOMAXPROCS=1"}, f.program, "-dir", f.dir, "-op", op.name,
		"-warmup", strconv.Itoa(counts.oursWarmup), "-runs", strconv.Itoa(counts.oursRuns))
	if err != nil {
		return nil, nil, err
	}
	var report struct {
		Kernel string    `json:"kernel"`
		Millis []float64 `json:"millis"`
		Output string    `json:"output"`
	}
	if err := json.Unmarshal(stdout, &report); err != nil {
		return nil, nil, fmt.Errorf("forwardbench printed %q: %w", tail(string(stdout), 200), err)
	}
	if report.Kernel != "scalar" || len(report.Millis) != counts.oursRuns {
		return nil, nil, fmt.Errorf("forwardbench ran %d calls of the %s kernel, want %d of the scalar kernel",
			len(report.Millis), report.Kernel, counts.oursRuns)
	}
	raw, err := base64.StdEncoding.DecodeString(report.Output)
	if err != nil {
		return nil, nil, fmt.Errorf("forwardbench output: %w", err)
	}
	return report.Millis, forwardinput.Float32s(raw), nil
}

// timeONNXNodeOp times op on the core at each of onnxNodeThreads, on the
// scalar build at one thread, and in onnxruntime-node at each of
// onnxNodeThreads. It adds their rows to table and returns the largest
// difference between ONNX Runtime's output and the core's.
func timeONNXNodeOp(ctx context.Context, table *markdownTable, runner *nodeRunner, scalar scalarForward,
	setup *inferenceSetup, op inferenceOp, counts runCounts, names onnxNodeNames,
) (float64, error) {
	var want []float32
	ours := make([]summary, len(onnxNodeThreads))
	for i, threads := range onnxNodeThreads {
		err := withGOMAXPROCS(threads, func() error {
			millis, err := timeCalls(ctx, counts.oursWarmup, counts.oursRuns, func() error {
				var err error
				want, err = setup.runCore(op)
				return err
			})
			if err == nil {
				ours[i] = summarize(millis)
			}
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("core, GOMAXPROCS %d: %w", threads, err)
		}
	}
	scalarMillis, scalarOutput, err := scalar.run(ctx, op, counts)
	if err != nil {
		return 0, fmt.Errorf("core with the scalar kernels: %w", err)
	}
	if !sameBits(scalarOutput, want) {
		return 0, fmt.Errorf("the scalar kernels' %s differs from the SIMD kernels' in its bits", op.output)
	}

	response, err := runner.run(ctx, ortNodeRequest{
		Model:   setup.onnxPaths[op.name],
		Inputs:  setup.onnxInputs(op),
		Threads: onnxNodeThreads,
		Warmup:  counts.peerWarmup,
		Runs:    counts.peerRuns,
		Output:  op.output,
	})
	if err != nil {
		return 0, fmt.Errorf("onnxruntime-node: %w", err)
	}
	var worstDiff float64
	for i, result := range response.Results {
		data, err := base64.StdEncoding.DecodeString(result.Output.Data)
		if err != nil {
			return 0, fmt.Errorf("onnxruntime-node output %s: %w", op.output, err)
		}
		diff := maxAbsDiff(forwardinput.Float32s(data), want)
		if diff > maxOutputDiff {
			return 0, fmt.Errorf("onnxruntime-node's %s differs from the core's by %g, over %g: the two sides did not run the same model",
				op.output, diff, maxOutputDiff)
		}
		worstDiff = max(worstDiff, diff)
		if result.Threads != onnxNodeThreads[i] || len(result.Millis) == 0 {
			return 0, fmt.Errorf("onnxruntime-node returned %d timed runs with %d threads, want %d threads",
				len(result.Millis), result.Threads, onnxNodeThreads[i])
		}

		threads := fmt.Sprint(result.Threads)
		theirs := summarize(result.Millis)
		table.add(timingRow([]string{setup.preset, op.name, threads, names.ours}, ours[i], formatRatio(ours[i].median, theirs.median))...)
		if result.Threads == 1 {
			before := summarize(scalarMillis)
			table.add(timingRow([]string{setup.preset, op.name, threads, names.scalar}, before, formatRatio(before.median, theirs.median))...)
		}
		table.add(timingRow([]string{setup.preset, op.name, threads, names.peer}, theirs, "-")...)
	}
	return worstDiff, nil
}

// sameBits reports whether a and b hold the same float32 bits.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// onnxNodeText returns the paragraphs above the table.
func onnxNodeText(env *benchEnv, worstDiff float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Batch 1, float32, seeded random weights, which cost the same time as trained ones. "+
		"Both sides time the model's forward pass from the same preprocessed inputs, "+
		"because the ONNX models take preprocessed inputs: the patches and token ids of `%s` and the caption %q, "+
		"and for reconstruct the same masks (75 %% of the patches and of the text positions hidden), "+
		"which ONNX Runtime gets as kept indices.\n\n",
		filepath.Base(env.flag(imageFlag)), benchCaption)
	b.WriteString("Ours is `core.Model.Embed` with CLS pooling and `core.Model.Reconstruct`. " +
		"onnxruntime-node runs the `embed-image-text` and `reconstruct-image-text` models that " +
		"`m3ae-edge export --format onnx` writes for the same model file (the embedding model also returns the mean embedding), " +
		"timed around `session.run`. The threads column sets GOMAXPROCS, the number of threads that run Go code at once, on our side, " +
		"and `intraOpNumThreads` on ONNX Runtime's. The same core built without experiments, whose kernels are scalar, " +
		"runs in a process of its own (cmd/m3ae-bench/forwardbench) on one thread, as the core was before its SIMD kernels, " +
		"and its outputs have the same bits. ")
	for _, preset := range inferencePresets(env) {
		counts := inferenceRuns(env, preset)
		fmt.Fprintf(&b, "%s makes %s on our side and %d on ONNX Runtime's before the timed ones. ",
			preset, fmt.Sprintf("%d warm-up call%s", counts.oursWarmup, plural(counts.oursWarmup)), counts.peerWarmup)
	}
	fmt.Fprintf(&b, "p90 is the nearest-rank 90th percentile. ours/theirs, on our rows, is the row's median over "+
		"onnxruntime-node's median at the same thread count: above 1, ours is slower. "+
		"ONNX Runtime's outputs (`cls_embedding`, `encoded`) differed from ours by at most %.2g.\n", worstDiff)
	return b.String()
}
