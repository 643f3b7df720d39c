// The kernels group: throughput of the core's float32 and int8 matmul
// kernels at the shapes the models use, natively and inside wazero, against
// an estimate of the machine's float32 peak, with GoMLX's matmul for
// context.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/threadcpu"
	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

func init() {
	register(group{
		name:  "kernels",
		about: "float32 and int8 matmul throughput of the core, natively and in wazero",
		run:   runKernelsGroup,
	})
}

// kernelShape is one dense layer of a preset at one sequence length.
type kernelShape struct {
	preset string
	layer  string
	// tokens names the rows: the encoder's kept tokens, its whole
	// sequence or the text positions.
	tokens        string
	rows, in, out int
}

func (s kernelShape) key() string { return fmt.Sprintf("%dx%dx%d", s.rows, s.in, s.out) }

// kernelShapes returns the encoder's qkv, proj, fc1 and fc2 layers over the
// kept tokens of a 75 % mask (CLS included) and over the whole sequence,
// then the text head over the text positions, as Model runs them.
func kernelShapes(preset string) ([]kernelShape, error) {
	cfg, err := core.Preset(preset)
	if err != nil {
		return nil, err
	}
	masks, err := core.RandomMasks(cfg, core.DefaultMaskRatio, core.DefaultMaskRatio, 1)
	if err != nil {
		return nil, err
	}
	kept := 1 + countVisible(masks.Image) + countVisible(masks.Text)
	width, hidden := cfg.EmbedDim, cfg.MLPRatio*cfg.EmbedDim
	var shapes []kernelShape
	for _, seq := range []struct {
		label string
		rows  int
	}{
		{fmt.Sprintf("K=%d kept", kept), kept},
		{fmt.Sprintf("L=%d all", cfg.SeqLen()), cfg.SeqLen()},
	} {
		for _, layer := range []struct {
			name    string
			in, out int
		}{
			{"encoder qkv", width, 3 * width},
			{"encoder proj", width, width},
			{"encoder fc1", width, hidden},
			{"encoder fc2", hidden, width},
		} {
			shapes = append(shapes, kernelShape{preset, layer.name, seq.label, seq.rows, layer.in, layer.out})
		}
	}
	shapes = append(shapes, kernelShape{preset, "text head", fmt.Sprintf("Nt=%d", cfg.TextLength),
		cfg.TextLength, cfg.DecoderEmbedDim, cfg.VocabSize})
	return shapes, nil
}

func countVisible(mask []bool) int {
	n := 0
	for _, hidden := range mask {
		if !hidden {
			n++
		}
	}
	return n
}

// kernelResult is one line of kernelbench's output.
type kernelResult struct {
	Shape         string  `json:"shape"`
	Weights       string  `json:"weights"`
	Kernel        string  `json:"kernel"`
	Threads       int     `json:"threads"`
	Clock         string  `json:"clock"`
	Calls         int     `json:"calls"`
	MedianSeconds float64 `json:"median_s"`
	GFLOPS        float64 `json:"gflops"`
}

// kernelTarget is one way of running kernelbench.
type kernelTarget struct {
	name string
	// wasm is whether the target runs kernelbench.wasm in wazero.
	wasm bool
	// threads is the GOMAXPROCS of the run, 1 in wasm.
	threads int
	// kernel names the matmul kernel, such as avx2 or scalar.
	kernel string
	// clock is thread-cpu or monotonic, the clock the calls were timed by.
	clock string
	// results maps shape key and weight type, "21x128x384/int8", to the
	// result.
	results map[string]kernelResult
}

// kernelRun is one run of a kernelbench build: a native program with
// GOMAXPROCS set to threads, or a wasip1 module in wazero, with or without
// interruption.
type kernelRun struct {
	name      string
	program   string
	threads   int
	interrupt bool
}

// gomlxMatMul is one GoMLX matmul measurement.
type gomlxMatMul struct {
	Shape         string  `json:"shape"`
	Threads       int     `json:"threads"`
	MedianSeconds float64 `json:"median_s"`
	GFLOPS        float64 `json:"gflops"`
	// GFLOPSPerCPUSecond is the work per second of CPU time, all threads
	// together, which a busy machine disturbs less than wall time.
	GFLOPSPerCPUSecond float64 `json:"gflops_per_cpu_s"`
	GoMLX              string  `json:"gomlx"`
	Backend            string  `json:"backend"`
	GoExperiment       string  `json:"goexperiment"`
	layer              string
}

// kernelsResult is the measurements of the kernels group, before rendering.
type kernelsResult struct {
	shapes  []kernelShape
	targets []kernelTarget
	gomlx   []gomlxMatMul
	peak    peakEstimate
	wazero  string
	timing  kernelTiming
}

// kernelTiming sets how long kernelbench times each shape.
type kernelTiming struct {
	minTime  string
	minCalls int
}

func (t kernelTiming) args() []string {
	return []string{"-min-time", t.minTime, "-min-calls", strconv.Itoa(t.minCalls)}
}

func runKernelsGroup(ctx context.Context, env *benchEnv) (string, error) {
	res, err := measureKernels(ctx, env)
	if err != nil {
		return "", err
	}
	return renderKernels(res), nil
}

func measureKernels(ctx context.Context, env *benchEnv) (*kernelsResult, error) {
	info, err := readCPUInfo()
	if err != nil {
		return nil, err
	}
	res := &kernelsResult{
		peak:   estimatePeak(info),
		wazero: moduleVersion("github.com/tetratelabs/wazero"),
		timing: kernelTiming{minTime: "300ms", minCalls: 3},
	}
	presets := []string{"mini", "small"}
	if env.quick {
		presets = []string{"micro"}
		res.timing = kernelTiming{minTime: "0s", minCalls: 1}
	}
	for _, preset := range presets {
		shapes, err := kernelShapes(preset)
		if err != nil {
			return nil, err
		}
		res.shapes = append(res.shapes, shapes...)
	}
	var keys []string
	for _, s := range res.shapes {
		if !slices.Contains(keys, s.key()) {
			keys = append(keys, s.key())
		}
	}
	args := append(res.timing.args(), keys...)

	dir, err := os.MkdirTemp("", "m3ae-bench-kernels-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The scalar builds are the kernels before SIMD, the others after: the
	// running GOEXPERIMENT natively and harness.WasmSIMDFlavor in wasm.
	experiment := envOr("GOEXPERIMENT", defaultGoExperiment)
	native, nativeScalar := filepath.Join(dir, "kernelbench"), filepath.Join(dir, "kernelbench-scalar")
	wasmScalar, wasmSIMD := filepath.Join(dir, "kernelbench.wasm"), filepath.Join(dir, "kernelbench-simd.wasm")
	wasip1 := []string{"GOOS=wasip1", "GOARCH=wasm"}
	builds := []struct {
		out string
		env []string
	}{
		{native, []string{"GOEXPERIMENT=" + experiment}},
		{nativeScalar, harness.ScalarFlavor.Env},
		{wasmScalar, append(slices.Clone(harness.ScalarFlavor.Env), wasip1...)},
		{wasmSIMD, append(slices.Clone(harness.WasmSIMDFlavor.Env), wasip1...)},
	}
	env.log.Info("building kernelbench natively and for wasip1, scalar and SIMD", "GOEXPERIMENT", experiment,
		"simd_toolchain", harness.SIMDToolchain)
	for _, build := range builds {
		if err := buildProgram(ctx, modulePath+"/cmd/m3ae-bench/kernelbench", build.out, build.env); err != nil {
			return nil, err
		}
	}

	// Natively on one core, then on every core: the core's matmul splits
	// large products across GOMAXPROCS goroutines. The scalar build runs on
	// one core only.
	nativeRuns := []kernelRun{
		{name: "native scalar 1 thread", program: nativeScalar, threads: 1},
		{name: "native 1 thread", program: native, threads: 1},
	}
	if info.cores > 1 {
		nativeRuns = append(nativeRuns, kernelRun{name: fmt.Sprintf("native %d threads", info.cores), program: native, threads: info.cores})
	}
	for _, run := range nativeRuns {
		env.log.Info("timing kernels natively", "target", run.name, "shapes", len(keys))
		output, err := runChild(ctx, []string{"GOMAXPROCS=" + strconv.Itoa(run.threads)}, run.program, args...)
		if err != nil {
			return nil, err
		}
		target, err := newKernelTarget(run.name, "", output)
		if err != nil {
			return nil, err
		}
		res.targets = append(res.targets, target)
	}

	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	wasmRuns := []kernelRun{
		{name: "wazero scalar", program: wasmScalar},
		{name: "wazero scalar interrupt", program: wasmScalar, interrupt: true},
		{name: "wazero simd", program: wasmSIMD},
	}
	for _, run := range wasmRuns {
		module, err := os.ReadFile(run.program)
		if err != nil {
			return nil, err
		}
		env.log.Info("timing kernels in wazero", "target", run.name, "shapes", len(keys))
		output, clock, err := runWasmCommand(ctx, module, cache, run.interrupt, args)
		if err != nil {
			return nil, err
		}
		target, err := newKernelTarget(run.name, clock, output)
		if err != nil {
			return nil, err
		}
		target.wasm = true
		res.targets = append(res.targets, target)
	}
	for _, target := range res.targets {
		if err := target.check(res.shapes); err != nil {
			return nil, err
		}
	}

	if res.gomlx, err = measureGoMLXMatMul(ctx, env, dir); err != nil {
		return nil, err
	}
	return res, nil
}

// newKernelTarget reads kernelbench's output. clock overrides the clock the
// results name when not empty, because a wasm guest cannot tell that its
// monotonic clock is the host thread's CPU time.
func newKernelTarget(name, clock string, output []byte) (kernelTarget, error) {
	lines, err := decodeJSONLines[kernelResult](output)
	if err != nil {
		return kernelTarget{}, fmt.Errorf("kernelbench on %s: %w", name, err)
	}
	if len(lines) == 0 {
		return kernelTarget{}, fmt.Errorf("kernelbench on %s printed no results", name)
	}
	first := lines[0]
	t := kernelTarget{name: name, threads: first.Threads, kernel: first.Kernel, clock: first.Clock, results: map[string]kernelResult{}}
	for _, r := range lines {
		if r.Threads != t.threads || r.Kernel != t.kernel || r.Clock != t.clock {
			return kernelTarget{}, fmt.Errorf("kernelbench on %s changed its threads, kernel or clock between results: %+v, then %+v", name, first, r)
		}
		t.results[r.Shape+"/"+r.Weights] = r
	}
	if clock != "" {
		t.clock = clock
	}
	return t, nil
}

// check returns an error unless t has a positive figure for every shape and
// weight type.
func (t kernelTarget) check(shapes []kernelShape) error {
	for _, s := range shapes {
		for _, w := range []string{"float32", "int8"} {
			r, ok := t.results[s.key()+"/"+w]
			if !ok {
				return fmt.Errorf("kernelbench on %s printed no %s result for %s", t.name, w, s.key())
			}
			if r.Calls < 1 || !(r.MedianSeconds > 0) || !(r.GFLOPS > 0) {
				return fmt.Errorf("kernelbench on %s: %s %s has %d calls, median %g s, %g GFLOP/s; want positive figures",
					t.name, s.key(), w, r.Calls, r.MedianSeconds, r.GFLOPS)
			}
		}
	}
	return nil
}

// runWasmCommand runs a wasip1 command module to its end in wazero's
// compiler and returns its stdout and the clock behind the module's
// monotonic time. With interrupt, the runtime closes the module when ctx is
// done, which makes wazero check ctx at every loop head, as the plugin host
// does by default.
//
// Where this platform has a thread CPU clock, the module's monotonic clock
// reads the CPU time of the thread that runs it (thread-cpu), as
// kernelbench times native calls. wazero's compiler runs the guest on the
// calling goroutine, which stays locked to its thread until the module
// ends.
func runWasmCommand(ctx context.Context, module []byte, cache wazero.CompilationCache, interrupt bool, args []string) (stdout []byte, clock string, err error) {
	config := wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(interrupt).WithCompilationCache(cache)
	wasmRuntime := wazero.NewRuntimeWithConfig(ctx, config)
	defer wasmRuntime.Close(ctx)

	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wasmRuntime); err != nil {
		return nil, "", err
	}
	compiled, err := wasmRuntime.CompileModule(ctx, module)
	if err != nil {
		return nil, "", fmt.Errorf("compile kernelbench.wasm: %w", err)
	}

	var out, stderr bytes.Buffer
	// Without real clocks, wazero gives the module a fake one that
	// advances 1 ms per reading.
	moduleConfig := wazero.NewModuleConfig().
		WithArgs(append([]string{"kernelbench"}, args...)...).
		WithStdout(&out).WithStderr(&stderr).
		WithSysNanotime().WithSysWalltime().WithSysNanosleep()
	clock = "monotonic"
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, ok := threadcpu.Now(); ok {
		clock = "thread-cpu"
		moduleConfig = moduleConfig.WithNanotime(func() int64 {
			d, _ := threadcpu.Now()
			return int64(d)
		}, sys.ClockResolution(1))
	}

	_, err = wasmRuntime.InstantiateModule(ctx, compiled, moduleConfig)
	var exit *sys.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) {
		return nil, "", fmt.Errorf("kernelbench.wasm failed: %w\n%s", err, tail(stderr.String(), 2000))
	}
	return out.Bytes(), clock, nil
}

// measureGoMLXMatMul times GoMLX's dense layer at the mini encoder's fc1
// shape, over one example's sequence and over a training batch of 64.
func measureGoMLXMatMul(ctx context.Context, env *benchEnv, dir string) ([]gomlxMatMul, error) {
	cfg, err := core.Preset("mini")
	if err != nil {
		return nil, err
	}
	width, hidden := cfg.EmbedDim, cfg.MLPRatio*cfg.EmbedDim
	sequence := fmt.Sprintf("%dx%dx%d", cfg.SeqLen(), width, hidden)
	batch := fmt.Sprintf("%dx%dx%d", 64*cfg.SeqLen(), width, hidden)
	runs := []gomlxMatMul{
		{Shape: sequence, Threads: 1, layer: fmt.Sprintf("mini encoder fc1, L=%d", cfg.SeqLen())},
		{Shape: batch, Threads: 1, layer: fmt.Sprintf("mini encoder fc1, 64 x L=%d", cfg.SeqLen())},
		{Shape: batch, Threads: 2, layer: fmt.Sprintf("mini encoder fc1, 64 x L=%d", cfg.SeqLen())},
	}
	timing := []string{"-min-time", "500ms", "-min-calls", "3"}
	if env.quick {
		runs = runs[:1]
		timing = []string{"-min-time", "0s", "-min-calls", "1"}
	}

	experiment := envOr("GOEXPERIMENT", defaultGoExperiment)
	gomlxbench := filepath.Join(dir, "gomlxbench")
	env.log.Info("building gomlxbench", "GOEXPERIMENT", experiment)
	if err := buildProgram(ctx, modulePath+"/cmd/m3ae-bench/gomlxbench", gomlxbench, []string{"GOEXPERIMENT=" + experiment}); err != nil {
		return nil, err
	}
	for i, r := range runs {
		env.log.Info("timing GoMLX matmul", "shape", r.Shape, "threads", r.Threads)
		output, err := runChild(ctx,
			[]string{"GOMAXPROCS=" + strconv.Itoa(r.Threads), "GOMLX_BACKEND=" + envOr("GOMLX_BACKEND", defaultGoMLXBackend)},
			gomlxbench, append([]string{"matmul", "-shape", r.Shape}, timing...)...)
		if err != nil {
			return nil, err
		}
		lines, err := decodeJSONLines[gomlxMatMul](output)
		if err != nil {
			return nil, err
		}
		if len(lines) != 1 || lines[0].Threads != r.Threads || !(lines[0].GFLOPS > 0) {
			return nil, fmt.Errorf("gomlxbench matmul -shape %s on %d threads printed %+v, want one line with positive GFLOP/s", r.Shape, r.Threads, lines)
		}
		lines[0].layer = r.layer
		runs[i] = lines[0]
	}
	return runs, nil
}

// moduleVersion returns the version of a module this binary was built
// with, or "unknown".
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// peakEstimate is the machine's float32 peak: cores x clock x FLOP per
// cycle per core.
type peakEstimate struct {
	cores int
	mhz   float64
	// clockSource names the file the clock came from.
	clockSource string
	// flopsPerCycle is 0 when the flags match no assumption.
	flopsPerCycle int
	assumption    string
}

// estimatePeak picks FLOP per cycle from the CPU flags: AVX-512 with two
// FMA units gives 2 x 16 float32 lanes x 2 = 64, AVX2 with FMA 2 x 8 x 2 =
// 32. CPUs with one AVX-512 FMA unit reach half of the first, so the figure
// is an upper estimate. The clock is cpufreq's maximum where the kernel
// exposes it, else the MHz that /proc/cpuinfo reported.
func estimatePeak(info cpuInfo) peakEstimate {
	p := peakEstimate{cores: info.cores, mhz: info.mhz, clockSource: "/proc/cpuinfo cpu MHz"}
	if data, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"); err == nil {
		if khz, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64); err == nil && khz > 0 {
			p.mhz, p.clockSource = khz/1000, "cpufreq cpuinfo_max_freq"
		}
	}
	switch {
	case info.flags["avx512f"] && info.flags["fma"]:
		p.flopsPerCycle, p.assumption = 64, "AVX-512 (avx512f) with 2 FMA units: 2 x 16 float32 lanes x 2 FLOP"
	case info.flags["avx2"] && info.flags["fma"]:
		p.flopsPerCycle, p.assumption = 32, "AVX2 with FMA, 2 FMA units: 2 x 8 float32 lanes x 2 FLOP"
	default:
		p.assumption = "neither AVX-512 nor AVX2 with FMA in the CPU flags"
	}
	return p
}

// coreGFLOPS returns the estimated peak of one core in GFLOP/s, 0 when
// there is no estimate.
func (p peakEstimate) coreGFLOPS() float64 {
	return p.mhz * float64(p.flopsPerCycle) / 1000
}

func renderKernels(res *kernelsResult) string {
	var b strings.Builder
	var native, nativeSIMD, wasm []kernelTarget
	for _, t := range res.targets {
		switch {
		case t.wasm:
			wasm = append(wasm, t)
		case t.kernel == "scalar":
			native = append(native, t)
		default:
			native = append(native, t)
			nativeSIMD = append(nativeSIMD, t)
		}
	}
	writeParagraph(&b, fmt.Sprintf("The dense-layer kernel of the core's forward pass (`matMul`, with int8 "+
		"weights dequantized panel by panel, called through core.DenseBenchmark) in "+
		"cmd/m3ae-bench/kernelbench, before and after SIMD in one run. Natively, `native scalar` is built "+
		"without experiments and runs the scalar kernel, and the other native targets are built with "+
		"GOEXPERIMENT=%s and run the %s kernel. `matMul` splits large products across GOMAXPROCS "+
		"goroutines, so the native table gives one core (GOMAXPROCS=1) and every core. Built for "+
		"GOOS=wasip1, it runs on one thread in wazero %s's compiler. `wazero scalar` is built with the "+
		"running toolchain, whose wasm backend emits no SIMD, and runs without and with interruption "+
		"(`interrupt` checks the context at every loop head, the plugin host's default). `wazero simd` is "+
		"built with GOTOOLCHAIN=%s GOEXPERIMENT=simd, whose kernels use WebAssembly SIMD128, and runs "+
		"without interruption. "+
		"Each figure is GFLOP/s: 2 x rows x in x out over the median time of one call, after one warm-up "+
		"call, from at least %d timed call%s that take at least %s in all.",
		envOr("GOEXPERIMENT", defaultGoExperiment), targetKernel(nativeSIMD), res.wazero, harness.SIMDToolchain,
		res.timing.minCalls, plural(res.timing.minCalls), res.timing.minTime))
	writeParagraph(&b, clockSentence(res.targets))

	peak := res.peak
	if peak.flopsPerCycle > 0 {
		perCore := peak.coreGFLOPS()
		text := fmt.Sprintf("Peak estimate, assuming from the CPU flags %s, at %.0f MHz from %s: "+
			"%d FLOP/cycle x %.0f MHz = %.1f GFLOP/s per core, x %d cores = %.1f GFLOP/s for the machine.",
			peak.assumption, peak.mhz, peak.clockSource, peak.flopsPerCycle, peak.mhz, perCore,
			peak.cores, perCore*float64(peak.cores))
		for _, t := range res.targets {
			lo, hi := targetRange(res, t, "float32")
			share := perCore * float64(t.threads)
			text += fmt.Sprintf(" Float32 on %s runs at %.1f to %.1f GFLOP/s, %.1f to %.1f %% of the estimated peak of %d core%s.",
				t.name, lo, hi, 100*lo/share, 100*hi/share, t.threads, plural(t.threads))
		}
		text += " Every kernel rounds each product before adding it, never fusing the two, so that all " +
			"targets give the same bits. Without fused multiply-add, half of the estimated peak is the " +
			"ceiling."
		writeParagraph(&b, text)
	} else {
		writeParagraph(&b, fmt.Sprintf("No peak estimate: %s.", peak.assumption))
	}

	b.WriteString(kernelTable(res, native).String())
	b.WriteString("\n")
	b.WriteString(kernelTable(res, wasm).String())

	if len(res.gomlx) > 0 {
		g := res.gomlx[0]
		b.WriteString("\n")
		writeParagraph(&b, fmt.Sprintf("For context, GoMLX %s's matmul (backend `%s`, GOEXPERIMENT=%s): the "+
			"dense layer of package native as a one-op graph (cmd/m3ae-bench/gomlxbench), with its threads "+
			"set by GOMAXPROCS. GFLOP/s (wall) is the speed a caller sees. GFLOP per CPU second divides "+
			"by the CPU time of all the process's threads, which other processes on the machine disturb less.",
			g.GoMLX, g.Backend, g.GoExperiment))
		gomlxTable := newMarkdownTable("layer", "rows x in x out", "threads",
			"GFLOP/s (wall)", "% of the threads' estimated peak", "GFLOP per CPU second")
		for _, g := range res.gomlx {
			share := "-"
			if perCore := peak.coreGFLOPS(); perCore > 0 {
				share = fmt.Sprintf("%.0f", 100*g.GFLOPS/(perCore*float64(g.Threads)))
			}
			gomlxTable.add(g.layer, g.Shape, strconv.Itoa(g.Threads),
				fmt.Sprintf("%.1f", g.GFLOPS), share, fmt.Sprintf("%.1f", g.GFLOPSPerCPUSecond))
		}
		b.WriteString(gomlxTable.String())
	}
	return b.String()
}

// kernelTable returns one row per shape with a float32 and an int8 column
// per target.
func kernelTable(res *kernelsResult, targets []kernelTarget) *markdownTable {
	header := []string{"preset", "layer", "rows", "rows x in x out"}
	for _, t := range targets {
		header = append(header, t.name+" float32", t.name+" int8")
	}
	table := newMarkdownTable(header...)
	for _, s := range res.shapes {
		cells := []string{s.preset, s.layer, s.tokens, s.key()}
		for _, t := range targets {
			for _, w := range []string{"float32", "int8"} {
				cells = append(cells, fmt.Sprintf("%.2f", t.results[s.key()+"/"+w].GFLOPS))
			}
		}
		table.add(cells...)
	}
	return table
}

// targetKernel returns the kernel the targets ran, or the kernels joined
// when they differ.
func targetKernel(targets []kernelTarget) string {
	var kernels []string
	for _, t := range targets {
		if !slices.Contains(kernels, t.kernel) {
			kernels = append(kernels, t.kernel)
		}
	}
	return strings.Join(kernels, " and ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// clockSentence returns a sentence that names the clock behind the calls of
// every target.
func clockSentence(targets []kernelTarget) string {
	var cpu, monotonic []string
	for _, t := range targets {
		if t.clock == "thread-cpu" {
			cpu = append(cpu, t.name)
		} else {
			monotonic = append(monotonic, t.name)
		}
	}
	var sentences []string
	if len(cpu) > 0 {
		sentences = append(sentences, fmt.Sprintf("Calls on %s are timed by the CPU time of the thread that "+
			"runs them (Linux's CLOCK_THREAD_CPUTIME_ID; inside wazero the guest's monotonic clock reads the "+
			"host thread's CPU time), so other processes on a shared machine slow the run but barely change "+
			"those figures.", joinNames(cpu)))
	}
	if len(monotonic) > 0 {
		sentences = append(sentences, fmt.Sprintf("Calls on %s are timed by the monotonic clock, because "+
			"their work spreads over several threads or the platform offers no thread CPU clock, so load "+
			"from other processes lowers those figures.", joinNames(monotonic)))
	}
	return strings.Join(sentences, " ")
}

// joinNames lists names as "a", "a and b" or "a, b and c".
func joinNames(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// targetRange returns the lowest and highest GFLOP/s of t with weights.
func targetRange(res *kernelsResult, t kernelTarget, weights string) (lo, hi float64) {
	for _, s := range res.shapes {
		g := t.results[s.key()+"/"+weights].GFLOPS
		if lo == 0 || g < lo {
			lo = g
		}
		hi = max(hi, g)
	}
	return lo, hi
}
