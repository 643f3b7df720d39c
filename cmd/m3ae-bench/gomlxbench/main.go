// Command gomlxbench times GoMLX for m3ae-bench in a process of its own,
// so that the GoMLX side of a comparison runs as its peer does: a fresh
// process, its own threads and its own CPU-time count.
//
//	gomlxbench step -preset mini -batch 64 -steps 5   # training steps
//	gomlxbench matmul -shape 81x128x512               # one dense layer
//
// Each mode prints one JSON object on stdout. The backend is the one
// native.NewBackend picks ($GOMLX_BACKEND, else go:ops_sequential), and
// GOMAXPROCS sets the threads.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gomlxbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("no mode: pass step or matmul as the first argument")
	}
	switch args[0] {
	case "step":
		return runStep(args[1:], stdout)
	case "matmul":
		return runMatMul(args[1:], stdout)
	}
	return fmt.Errorf("unknown mode %q: use step or matmul", args[0])
}

// runtimeInfo is the part of every output that names the software.
type runtimeInfo struct {
	GoMLX        string `json:"gomlx"`
	Backend      string `json:"backend"`
	GoExperiment string `json:"goexperiment"`
	Threads      int    `json:"threads"`
}

func currentRuntime() runtimeInfo {
	info := runtimeInfo{GoMLX: "unknown", Backend: native.DefaultBackendConfig, GoExperiment: "none", Threads: runtime.GOMAXPROCS(0)}
	if v := os.Getenv("GOMLX_BACKEND"); v != "" {
		info.Backend = v
	}
	if build, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range build.Deps {
			if dep.Path == "github.com/gomlx/gomlx" {
				info.GoMLX = dep.Version
			}
		}
		for _, s := range build.Settings {
			if s.Key == "GOEXPERIMENT" && s.Value != "" {
				info.GoExperiment = s.Value
			}
		}
	}
	return info
}

// stepResult is the output of step mode.
type stepResult struct {
	runtimeInfo
	Peer   string `json:"peer"`
	Preset string `json:"preset"`
	Batch  int    `json:"batch"`
	// WarmupSteps ran untimed first, one per distinct batch, so every
	// graph the timed steps need is compiled.
	WarmupSteps int `json:"warmup_steps"`
	Steps       int `json:"steps"`
	// StepWallSeconds and StepCPUSeconds are each timed step's wall time
	// and the CPU time (user plus system, all threads) it used.
	StepWallSeconds []float64 `json:"step_wall_s"`
	StepCPUSeconds  []float64 `json:"step_cpu_s"`
	MedianWall      float64   `json:"median_wall_s"`
	MedianCPU       float64   `json:"median_cpu_s"`
	ExamplesPerSec  float64   `json:"examples_per_s"`
}

// runStep times training steps as `m3ae-edge train` runs them: the
// trainer and settings of package trainrun on a model from
// core.InitModelFile, fed batches of random paired examples.
func runStep(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("gomlxbench step", flag.ContinueOnError)
	opts := trainrun.DefaultOptions()
	flags.StringVar(&opts.Preset, "preset", "mini", "architecture: "+strings.Join(core.PresetNames(), ", "))
	flags.IntVar(&opts.BatchSize, "batch", 64, "examples per step")
	flags.Float64Var(&opts.LearningRate, "lr", 1e-3, "peak learning rate; 0 means 1.5e-4 x batch/256")
	flags.Float64Var(&opts.MaxGradNorm, "grad-clip", 1, "maximum global gradient norm; 0 disables clipping")
	flags.IntVar(&opts.WarmupSteps, "warmup-steps", 100, "steps of linear learning-rate warmup in the schedule")
	flags.IntVar(&opts.Steps, "total-steps", 600, "steps of the learning-rate schedule")
	flags.Uint64Var(&opts.Seed, "seed", 1, "seed of the weights, masks and batches")
	steps := flags.Int("steps", 5, "timed steps")
	numBatches := flags.Int("batches", 2, "distinct random batches, each run once untimed before the timed steps cycle through them")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *steps < 1 || *numBatches < 1 || opts.BatchSize < 1 {
		return fmt.Errorf("-steps %d, -batches %d and -batch %d must each be 1 or more", *steps, *numBatches, opts.BatchSize)
	}
	cfg, err := core.Preset(opts.Preset)
	if err != nil {
		return err
	}

	backend, err := native.NewBackend()
	if err != nil {
		return err
	}
	init, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, opts.Seed)
	if err != nil {
		return err
	}
	trainer, err := native.NewTrainer(backend, init, opts.TrainConfig())
	if err != nil {
		return err
	}
	batches := make([][]native.Example, *numBatches)
	for i := range batches {
		batches[i] = randomExamples(cfg, opts.BatchSize, opts.Seed+uint64(i))
	}
	for _, batch := range batches { // compiles the graph of every padded row count the batches need
		if _, _, err := trainer.Step(batch); err != nil {
			return err
		}
	}

	res := stepResult{
		runtimeInfo: currentRuntime(), Peer: "gomlx", Preset: opts.Preset, Batch: opts.BatchSize,
		WarmupSteps: len(batches), Steps: *steps,
	}
	for i := range *steps {
		cpuStart, start := processCPUTime(), time.Now()
		if _, _, err := trainer.Step(batches[i%len(batches)]); err != nil {
			return err
		}
		res.StepWallSeconds = append(res.StepWallSeconds, time.Since(start).Seconds())
		res.StepCPUSeconds = append(res.StepCPUSeconds, (processCPUTime() - cpuStart).Seconds())
	}
	res.MedianWall = median(res.StepWallSeconds)
	res.MedianCPU = median(res.StepCPUSeconds)
	res.ExamplesPerSec = float64(opts.BatchSize) / res.MedianWall
	return json.NewEncoder(stdout).Encode(res)
}

// randomExamples returns n paired examples with normal(0, 1) pixels and
// captions of 3 to Nt random ids, as native's BenchmarkTrainStepTiny and
// testdata/torchtrain/step.py draw them.
func randomExamples(cfg core.Config, n int, seed uint64) []native.Example {
	rng := rand.New(rand.NewPCG(seed, 0))
	examples := make([]native.Example, n)
	for i := range examples {
		image := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
		for j := range image {
			image[j] = float32(rng.NormFloat64())
		}
		text := make([]int32, cfg.TextLength)
		for j := range 3 + rng.IntN(cfg.TextLength-2) {
			text[j] = int32(1000 + rng.IntN(cfg.VocabSize-1000))
		}
		examples[i] = native.Example{Image: image, Text: text}
	}
	return examples
}

// matMulResult is the output of matmul mode.
type matMulResult struct {
	runtimeInfo
	Shape string `json:"shape"`
	// Calls is the number of timed calls, after one untimed call that
	// compiles the graph.
	Calls int `json:"calls"`
	// MedianSeconds is the median wall time of a call and GFLOPS the
	// throughput it gives.
	MedianSeconds float64 `json:"median_s"`
	GFLOPS        float64 `json:"gflops"`
	// MedianCPUSeconds is the median CPU time of a call, all threads of
	// the process together, and GFLOPSPerCPUSecond the work per CPU second.
	// Other processes on a shared machine lengthen the wall time of a call
	// but barely change its CPU time.
	MedianCPUSeconds   float64 `json:"median_cpu_s"`
	GFLOPSPerCPUSecond float64 `json:"gflops_per_cpu_s"`
}

// runMatMul times the dense layer of package native, x·kernel + bias, as
// a one-op graph on random float32 operands.
func runMatMul(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("gomlxbench matmul", flag.ContinueOnError)
	shape := flags.String("shape", "81x128x512", "ROWSxINxOUT: rows of x [ROWS, IN] through a kernel [IN, OUT]")
	minTime := flags.Duration("min-time", 500*time.Millisecond, "minimum total time of the timed calls")
	minCalls := flags.Int("min-calls", 3, "minimum number of timed calls")
	if err := flags.Parse(args); err != nil {
		return err
	}
	dims, err := parseShape(*shape)
	if err != nil {
		return err
	}
	if *minCalls < 1 {
		return fmt.Errorf("-min-calls %d: want 1 or more", *minCalls)
	}
	rows, in, out := dims[0], dims[1], dims[2]
	backend, err := native.NewBackend()
	if err != nil {
		return err
	}
	exec, err := NewExec(backend, func(x, kernel, bias *Node) *Node {
		y := DotGeneral(x, []int{1}, nil, kernel, []int{0}, nil) // [ROWS, OUT]
		return Add(y, ExpandLeftToRank(bias, 2))
	})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 0))
	operand := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		values := make([]float32, n)
		for i := range values {
			values[i] = float32(2*rng.Float64() - 1)
		}
		return tensors.FromFlatDataAndDimensions(values, dims...)
	}
	x, kernel, bias := operand(rows, in), operand(in, out), operand(out)

	call := func() error {
		outputs, err := exec.Call(x, kernel, bias)
		for _, o := range outputs {
			o.FinalizeAll()
		}
		return err
	}
	if err := call(); err != nil {
		return err
	}
	var wallTimes, cpuTimes []float64
	var total time.Duration
	for len(wallTimes) < *minCalls || total < *minTime {
		cpuStart, start := processCPUTime(), time.Now()
		if err := call(); err != nil {
			return err
		}
		elapsed := time.Since(start)
		total += elapsed
		wallTimes = append(wallTimes, elapsed.Seconds())
		cpuTimes = append(cpuTimes, (processCPUTime() - cpuStart).Seconds())
	}
	gflop := 2 * float64(rows) * float64(in) * float64(out) / 1e9
	res := matMulResult{
		runtimeInfo: currentRuntime(), Shape: *shape, Calls: len(wallTimes),
		MedianSeconds: median(wallTimes), MedianCPUSeconds: median(cpuTimes),
	}
	res.GFLOPS = gflop / res.MedianSeconds
	if res.MedianCPUSeconds > 0 {
		res.GFLOPSPerCPUSecond = gflop / res.MedianCPUSeconds
	}
	return json.NewEncoder(stdout).Encode(res)
}

func parseShape(shape string) ([]int, error) {
	parts := strings.Split(shape, "x")
	if len(parts) != 3 {
		return nil, fmt.Errorf("-shape %q: want ROWSxINxOUT, such as 81x128x512", shape)
	}
	dims := make([]int, 3)
	for i, p := range parts {
		d, err := strconv.Atoi(p)
		if err != nil || d < 1 {
			return nil, fmt.Errorf("-shape %q: %q is not a positive integer", shape, p)
		}
		dims[i] = d
	}
	return dims, nil
}

// median returns the middle value of xs, or the mean of the two middle
// ones; xs must not be empty.
func median(xs []float64) float64 {
	sorted := slices.Sorted(slices.Values(xs))
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// processCPUTime returns the user plus system CPU time of this process.
func processCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
