// The train group: one training step of our GoMLX trainer against the same
// model in PyTorch, each in a child process on 2 threads.

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func init() {
	register(group{
		name:  "train",
		about: "one training step, GoMLX against PyTorch 1.13 on 2 threads",
		run:   runTrainGroup,
	})
}

var torchPythonFlag = stringFlag("torch-python", "/usr/bin/python3",
	"Python with PyTorch (Debian's python3-torch) that runs testdata/torchtrain/step.py for the train group")

// requireTorchEnv names the environment variable that turns a missing
// PyTorch from a skipped peer into an error.
const requireTorchEnv = "M3AE_REQUIRE_TORCH"

// trainThreads is the thread count of each side: GOMAXPROCS for GoMLX,
// torch.set_num_threads for PyTorch.
const trainThreads = 2

// trainSettings are the optimizer settings of the Makefile's model target
// (`m3ae-edge train --lr 1e-3 --warmup-steps 100 --grad-clip 1 --steps 600`),
// which both sides use. Only the clipping changes the work of a step.
var trainSettings = struct {
	learningRate, gradClip  float64
	warmupSteps, totalSteps int
}{learningRate: 1e-3, gradClip: 1, warmupSteps: 100, totalSteps: 600}

// Settings of the GoMLX side, as the Makefile exports them.
const (
	defaultGoExperiment = "simd"
	defaultGoMLXBackend = "go:ops_sequential"
)

// trainCase is one preset and batch size to time.
type trainCase struct {
	preset string
	batch  int
	// steps is the number of timed steps of each side.
	steps int
	// batches is the number of distinct batches on the GoMLX side, each
	// run once untimed first, so every graph the timed steps use is
	// compiled before the clock starts.
	batches int
}

// trainCases returns mini (the default model's preset, batch 64 as in the
// Makefile's model target) and the wider tiny, or micro alone in quick mode.
func trainCases(env *benchEnv) []trainCase {
	if env.quick {
		return []trainCase{{preset: "micro", batch: 8, steps: 1, batches: 1}}
	}
	return []trainCase{
		{preset: "mini", batch: 64, steps: 5, batches: 2},
		{preset: "tiny", batch: 64, steps: 5, batches: 2},
	}
}

// stepTimes is the JSON summary both children print (gomlxbench step and
// step.py --json), in seconds.
type stepTimes struct {
	Peer           string    `json:"peer"`
	Preset         string    `json:"preset"`
	Batch          int       `json:"batch"`
	Threads        int       `json:"threads"`
	Steps          int       `json:"steps"`
	WarmupSteps    int       `json:"warmup_steps"`
	StepWall       []float64 `json:"step_wall_s"`
	StepCPU        []float64 `json:"step_cpu_s"`
	MedianWall     float64   `json:"median_wall_s"`
	MedianCPU      float64   `json:"median_cpu_s"`
	ExamplesPerSec float64   `json:"examples_per_s"`

	// GoMLX side.
	GoMLX        string `json:"gomlx"`
	Backend      string `json:"backend"`
	GoExperiment string `json:"goexperiment"`
	// PyTorch side.
	Torch string   `json:"torch"`
	BLAS  []string `json:"blas"`
}

// check returns an error unless s has the timed steps that were requested
// and positive times.
func (s stepTimes) check(c trainCase) error {
	if s.Preset != c.preset || s.Batch != c.batch || s.Threads != trainThreads {
		return fmt.Errorf("%s side ran preset %q, batch %d, %d threads; want %q, %d, %d",
			s.Peer, s.Preset, s.Batch, s.Threads, c.preset, c.batch, trainThreads)
	}
	if len(s.StepWall) != c.steps || len(s.StepCPU) != c.steps {
		return fmt.Errorf("%s side timed %d and %d steps, want %d", s.Peer, len(s.StepWall), len(s.StepCPU), c.steps)
	}
	if !(s.MedianWall > 0) || !(s.MedianCPU > 0) || !(s.ExamplesPerSec > 0) {
		return fmt.Errorf("%s side reported a median of %g s wall and %g s CPU, %g examples/s; want positive figures",
			s.Peer, s.MedianWall, s.MedianCPU, s.ExamplesPerSec)
	}
	return nil
}

// trainRow is the measurement of one case; torch is nil when PyTorch was
// skipped.
type trainRow struct {
	c     trainCase
	ours  stepTimes
	torch *stepTimes
}

// trainResult is the measurements of the train group, before rendering.
type trainResult struct {
	rows []trainRow
	// torchSkipped is the reason PyTorch was not measured, empty when it was.
	torchSkipped string
	goExperiment string
	backend      string
	python       string
}

func runTrainGroup(ctx context.Context, env *benchEnv) (string, error) {
	res, err := measureTraining(ctx, env)
	if err != nil {
		return "", err
	}
	return renderTraining(res), nil
}

// measureTraining builds gomlxbench and times every case on both sides,
// GoMLX first.
func measureTraining(ctx context.Context, env *benchEnv) (*trainResult, error) {
	root, err := repositoryRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "m3ae-bench-train-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	res := &trainResult{
		goExperiment: envOr("GOEXPERIMENT", defaultGoExperiment),
		backend:      envOr("GOMLX_BACKEND", defaultGoMLXBackend),
		python:       env.flag(torchPythonFlag),
	}
	gomlxbench := filepath.Join(dir, "gomlxbench")
	env.log.Info("building gomlxbench", "GOEXPERIMENT", res.goExperiment)
	if err := buildProgram(ctx, modulePath+"/cmd/m3ae-bench/gomlxbench", gomlxbench, []string{"GOEXPERIMENT=" + res.goExperiment}); err != nil {
		return nil, err
	}
	res.torchSkipped, err = checkTorch(ctx, res.python)
	if err != nil {
		return nil, err
	}
	if res.torchSkipped != "" {
		env.log.Warn("PyTorch leg skipped", "reason", res.torchSkipped, "require_with", requireTorchEnv+"=1")
	}

	for _, c := range trainCases(env) {
		row := trainRow{c: c}
		env.log.Info("timing GoMLX training steps", "preset", c.preset, "batch", c.batch, "steps", c.steps)
		if row.ours, err = timeGoMLXSteps(ctx, gomlxbench, c, res.backend); err != nil {
			return nil, err
		}
		if res.torchSkipped == "" {
			env.log.Info("timing PyTorch training steps", "preset", c.preset, "batch", c.batch, "steps", c.steps)
			torch, err := timeTorchSteps(ctx, res.python, root, c)
			if err != nil {
				return nil, err
			}
			row.torch = &torch
		}
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// checkTorch returns why the PyTorch leg must be skipped, or "" when
// python imports torch. With M3AE_REQUIRE_TORCH=1 a missing torch is an
// error instead.
func checkTorch(ctx context.Context, python string) (string, error) {
	output, err := exec.CommandContext(ctx, python, "-c", "import torch").CombinedOutput()
	if err == nil {
		return "", nil
	}
	reason := fmt.Sprintf("%s cannot import torch (%v: %s)", python, err, strings.TrimSpace(tail(string(output), 300)))
	if os.Getenv(requireTorchEnv) == "1" {
		return "", fmt.Errorf("%s; install Debian's python3-torch and libopenblas0-pthread, or unset %s", reason, requireTorchEnv)
	}
	return reason, nil
}

func timeGoMLXSteps(ctx context.Context, gomlxbench string, c trainCase, backend string) (stepTimes, error) {
	output, err := runChild(ctx,
		[]string{"GOMAXPROCS=" + strconv.Itoa(trainThreads), "GOMLX_BACKEND=" + backend},
		gomlxbench, "step", "-preset", c.preset, "-batch", strconv.Itoa(c.batch),
		"-steps", strconv.Itoa(c.steps), "-batches", strconv.Itoa(c.batches),
		"-lr", fmt.Sprint(trainSettings.learningRate), "-grad-clip", fmt.Sprint(trainSettings.gradClip),
		"-warmup-steps", strconv.Itoa(trainSettings.warmupSteps), "-total-steps", strconv.Itoa(trainSettings.totalSteps))
	if err != nil {
		return stepTimes{}, err
	}
	return decodeStepTimes(output, c)
}

func timeTorchSteps(ctx context.Context, python, root string, c trainCase) (stepTimes, error) {
	output, err := runChild(ctx,
		// OpenBLAS's own thread pool would fight PyTorch's over the cores.
		[]string{"OPENBLAS_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE"},
		python, filepath.Join(root, "testdata", "torchtrain", "step.py"), "--json",
		"--preset", c.preset, "--batch", strconv.Itoa(c.batch), "--steps", strconv.Itoa(c.steps),
		"--threads", strconv.Itoa(trainThreads),
		"--lr", fmt.Sprint(trainSettings.learningRate), "--grad-clip", fmt.Sprint(trainSettings.gradClip))
	if err != nil {
		return stepTimes{}, err
	}
	return decodeStepTimes(output, c)
}

// decodeStepTimes reads the one JSON line of a child and checks it.
func decodeStepTimes(output []byte, c trainCase) (stepTimes, error) {
	lines, err := decodeJSONLines[stepTimes](output)
	if err != nil {
		return stepTimes{}, err
	}
	if len(lines) != 1 {
		return stepTimes{}, fmt.Errorf("training step child printed %d JSON lines, want 1", len(lines))
	}
	return lines[0], lines[0].check(c)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// presetSummary describes the architecture of a preset in a few words.
func presetSummary(preset string) string {
	cfg, err := core.Preset(preset)
	if err != nil {
		return preset
	}
	return fmt.Sprintf("%s (D%dx%d, decoder D%dx%d)", preset, cfg.EmbedDim, cfg.Depth, cfg.DecoderEmbedDim, cfg.DecoderDepth)
}

// renderTraining writes the section body.
func renderTraining(res *trainResult) string {
	var b strings.Builder
	first := res.rows[0]
	writeParagraph(&b, fmt.Sprintf("One training step on a batch of random paired examples with one mask per "+
		"example at 75 %% for image and text: forward and backward passes and an AdamW update with the "+
		"global gradient norm clipped at %g, the settings of the Makefile's `model` target. Both sides run "+
		"the same architecture in float32 on %d threads, each in a process of its own:",
		trainSettings.gradClip, trainThreads))
	writeListItem(&b, fmt.Sprintf("ours: GoMLX %s, pure-Go backend `%s`, GOEXPERIMENT=%s, GOMAXPROCS=%d, "+
		"the trainer and settings of `m3ae-edge train` (cmd/m3ae-bench/gomlxbench). Before the clock starts, "+
		"each of %d distinct batches runs once, which compiles every graph the timed steps use.",
		first.ours.GoMLX, first.ours.Backend, first.ours.GoExperiment, trainThreads, first.c.batches))
	if first.torch != nil {
		writeListItem(&b, fmt.Sprintf("PyTorch %s from %s (testdata/torchtrain/step.py), torch.set_num_threads(%d), "+
			"OPENBLAS_NUM_THREADS=1, BLAS %s. One untimed step first.",
			first.torch.Torch, res.python, trainThreads, blasNames(first.torch.BLAS)))
	} else {
		writeListItem(&b, fmt.Sprintf("PyTorch: not measured, because %s.", res.torchSkipped))
	}
	b.WriteString("\n")
	writeParagraph(&b, fmt.Sprintf("Figures are medians over %d timed steps per side. CPU time is user plus "+
		"system time over all threads. A ratio above 1 means ours is slower.", first.c.steps))

	table := newMarkdownTable("preset", "batch",
		"ours wall s", "ours CPU s", "ours examples/s",
		"PyTorch wall s", "PyTorch CPU s", "PyTorch examples/s",
		"ours/PyTorch wall", "ours/PyTorch CPU")
	for _, row := range res.rows {
		cells := []string{presetSummary(row.c.preset), strconv.Itoa(row.c.batch),
			formatSeconds(row.ours.MedianWall), formatSeconds(row.ours.MedianCPU), fmt.Sprintf("%.1f", row.ours.ExamplesPerSec)}
		if row.torch != nil {
			cells = append(cells,
				formatSeconds(row.torch.MedianWall), formatSeconds(row.torch.MedianCPU), fmt.Sprintf("%.1f", row.torch.ExamplesPerSec),
				formatRatio(row.ours.MedianWall, row.torch.MedianWall), formatRatio(row.ours.MedianCPU, row.torch.MedianCPU))
		} else {
			cells = append(cells, "-", "-", "-", "-", "-")
		}
		table.add(cells...)
	}
	b.WriteString(table.String())

	fmt.Fprintf(&b, "\nEach side alone, from the repository root:\n\n```sh\n")
	for _, row := range res.rows {
		c := row.c
		fmt.Fprintf(&b, "GOEXPERIMENT=%s GOMLX_BACKEND=%s GOMAXPROCS=%d go run ./cmd/m3ae-bench/gomlxbench step \\\n"+
			"  -preset %s -batch %d -steps %d -batches %d -lr %g -grad-clip %g\n",
			res.goExperiment, res.backend, trainThreads, c.preset, c.batch, c.steps, c.batches,
			trainSettings.learningRate, trainSettings.gradClip)
		fmt.Fprintf(&b, "OPENBLAS_NUM_THREADS=1 %s testdata/torchtrain/step.py --json \\\n"+
			"  --preset %s --batch %d --steps %d --threads %d --lr %g --grad-clip %g\n",
			res.python, c.preset, c.batch, c.steps, trainThreads, trainSettings.learningRate, trainSettings.gradClip)
	}
	b.WriteString("```\n")
	return b.String()
}

// blasNames shortens the BLAS library paths to their folder and file
// names, such as openblas-pthread/libblas.so.3.
func blasNames(paths []string) string {
	if len(paths) == 0 {
		return "unknown (no BLAS library in the process's memory map)"
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p))
	}
	return strings.Join(names, " and ")
}

// formatSeconds writes s with three significant digits.
func formatSeconds(s float64) string {
	return strconv.FormatFloat(s, 'g', 3, 64)
}
