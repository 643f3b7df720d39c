// Command bench measures the WebAssembly builds in one run. It prints the
// module sizes (raw, gzip, brotli) and the plugin's start-up time with and
// without the compilation cache. Then, for each preset, it times embed and
// reconstruct calls natively, through the wazero plugin and in a Web Worker
// in headless Chromium.
//
// Models have InitModelFile weights, which cost the same time as trained
// ones. Every call starts from encoded image bytes and a caption, so each
// target's time includes decoding, resizing and tokenizing.
//
//	make bench-wasm
//	go run ./wasm/bench -browser build/m3ae.wasm -plugin build/m3ae-plugin.wasm
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/quantize"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
	"github.com/m3ae-edge/m3ae-edge/wasm/internal/harness"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// settings holds the command-line flags.
type settings struct {
	browserPath  string
	pluginPath   string
	chromiumPath string
	imagePath    string
	text         string
	presets      []string
	warmup       int
	runs         int
}

func parseFlags(args []string) (settings, error) {
	var s settings
	var presets string
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.StringVar(&s.browserPath, "browser", "build/m3ae.wasm", "GOOS=js module")
	flags.StringVar(&s.pluginPath, "plugin", "build/m3ae-plugin.wasm", "GOOS=wasip1 plugin module")
	flags.StringVar(&s.chromiumPath, "chromium", harness.DefaultChromiumPath, "Chromium executable; the browser rows are left out when it is missing")
	flags.StringVar(&s.imagePath, "image", "testdata/images/photo512x384.jpg", "PNG or JPEG input")
	flags.StringVar(&s.text, "text", "a photo of a red apple on a wooden table", "caption input")
	flags.StringVar(&presets, "presets", "micro,tiny", "comma-separated model presets")
	flags.IntVar(&s.warmup, "warmup", 3, "untimed calls before each measurement")
	flags.IntVar(&s.runs, "runs", 10, "timed calls per measurement")
	if err := flags.Parse(args); err != nil {
		return settings{}, err
	}
	if s.runs < 1 || s.warmup < 0 {
		return settings{}, fmt.Errorf("-runs %d and -warmup %d: use at least 1 run and no negative warmup", s.runs, s.warmup)
	}
	s.presets = strings.Split(presets, ",")
	return s, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	s, err := parseFlags(args)
	if err != nil {
		return err
	}
	browserModule, err := os.ReadFile(s.browserPath)
	if err != nil {
		return fmt.Errorf("read the browser module: %w (build it with make wasm)", err)
	}
	pluginModule, err := os.ReadFile(s.pluginPath)
	if err != nil {
		return fmt.Errorf("read the plugin: %w (build it with make wasm)", err)
	}
	imageData, err := os.ReadFile(s.imagePath)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "# m3ae wasm benchmark\n\n%s, %s/%s, %d CPUs, GOMAXPROCS %d, %s\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))

	if err := printSizes(stdout, map[string][]byte{s.browserPath: browserModule, s.pluginPath: pluginModule}); err != nil {
		return err
	}
	if err := printStartup(ctx, stdout, pluginModule); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "## Latency (ms per call, %d timed after %d warm-up)\n\n", s.runs, s.warmup)
	fmt.Fprintln(stdout, "| preset | op | target | load ms | median | p90 | min |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	var browser *harness.Browser
	if harness.ChromiumAvailable(s.chromiumPath) {
		profile, err := os.MkdirTemp("", "m3ae-bench-chromium-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(profile)
		browser, err = startBrowser(ctx, s, browserModule, profile)
		if err != nil {
			return err
		}
		defer browser.Close()
	}
	for _, preset := range s.presets {
		for _, precision := range []string{"float32", "int8"} {
			if err := benchPreset(ctx, stdout, s, preset, precision, pluginModule, browser, imageData); err != nil {
				return fmt.Errorf("preset %s %s: %w", preset, precision, err)
			}
		}
	}
	if browser == nil {
		fmt.Fprintf(stdout, "\nChromium rows left out: %s not found.\n", s.chromiumPath)
	}
	return nil
}

// printSizes prints each module's size raw, gzipped (level 9) and
// brotli-compressed (quality 11, with the brotli command).
func printSizes(stdout io.Writer, modules map[string][]byte) error {
	fmt.Fprintln(stdout, "## Module sizes (bytes)\n\n| module | raw | gzip -9 | brotli -q 11 |\n|---|---|---|---|")
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := modules[name]
		var gz bytes.Buffer
		w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return err
		}
		w.Write(data)
		w.Close()
		brotli := "brotli not installed"
		if out, err := exec.Command("brotli", "-c", "-q", "11", name).Output(); err == nil {
			brotli = fmt.Sprint(len(out))
		}
		fmt.Fprintf(stdout, "| %s | %d | %d | %s |\n", filepath.Base(name), len(data), gz.Len(), brotli)
	}
	fmt.Fprintln(stdout)
	return nil
}

// printStartup times host.Open (compile and first instance) without a
// cache, with a cold cache directory and with a warm one, and the
// instantiation of one more instance of an already compiled module.
func printStartup(ctx context.Context, stdout io.Writer, module []byte) error {
	fmt.Fprintln(stdout, "## Plugin start-up (ms)\n\n| step | ms |\n|---|---|")
	dir, err := os.MkdirTemp("", "m3ae-bench-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	steps := []struct {
		name string
		opts []host.Option
	}{
		{"host.Open, no cache", nil},
		{"host.Open, cache directory cold", []host.Option{host.WithCompilationCacheDir(dir)}},
		{"host.Open, cache directory warm", []host.Option{host.WithCompilationCacheDir(dir)}},
	}
	for _, step := range steps {
		start := time.Now()
		p, err := host.Open(ctx, module, append(step.opts, host.WithPoolSize(1))...)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if err := p.Close(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "| %s | %.1f |\n", step.name, millis(elapsed))
	}

	// One more instance of a compiled module, as the pool creates them.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	compiled, err := r.CompileModule(ctx, module)
	if err != nil {
		return err
	}
	config := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime()
	var times []time.Duration
	for range 5 {
		start := time.Now()
		mod, err := r.InstantiateModule(ctx, compiled, config)
		if err != nil {
			return err
		}
		times = append(times, time.Since(start))
		mod.Close(ctx)
	}
	fmt.Fprintf(stdout, "| one more instance of a compiled module (median of 5) | %.1f |\n\n", millis(median(times)))
	return nil
}

func startBrowser(ctx context.Context, s settings, module []byte, profile string) (*harness.Browser, error) {
	wasmExec, err := harness.WasmExecJS()
	if err != nil {
		return nil, err
	}
	return harness.StartBrowser(ctx, harness.BrowserConfig{
		ChromiumPath: s.chromiumPath,
		UserDataDir:  profile,
		Module:       module,
		WasmExecJS:   wasmExec,
	})
}

// benchCases are the calls timed for every preset.
func benchCases() []harness.Case {
	return []harness.Case{
		{Name: "embed", Op: harness.OpEmbed, Image: "input", Pooling: "cls"},
		{Name: "reconstruct", Op: harness.OpReconstruct, Image: "input",
			ImageMaskRatio: core.DefaultMaskRatio, TextMaskRatio: core.DefaultMaskRatio, Seed: 1, TopK: core.DefaultTopK},
	}
}

func benchPreset(ctx context.Context, stdout io.Writer, s settings, presetName, precision string, pluginModule []byte, browser *harness.Browser, imageData []byte) error {
	model, err := harness.ModelFile(presetName, 1)
	if err != nil {
		return err
	}
	if precision == "int8" {
		if model, err = quantizeModel(model); err != nil {
			return err
		}
	}
	preset := presetName + " " + precision
	inputs := harness.Inputs{"input": imageData}
	cases := benchCases()
	for i := range cases {
		cases[i].Text = s.text
	}

	// Native.
	start := time.Now()
	pipeline, err := core.Load(model)
	if err != nil {
		return err
	}
	load := time.Since(start)
	for _, c := range cases {
		times, err := timeCalls(s, func() error {
			_, err := harness.RunNative(pipeline, c, inputs)
			return err
		})
		if err != nil {
			return err
		}
		printRow(stdout, preset, c.Name, "native", millis(load), times)
	}

	// wazero plugin, with and without stopping calls on a done context.
	for _, variant := range []struct {
		target string
		opts   []host.Option
	}{
		{"wazero", nil},
		{"wazero, no interrupt", []host.Option{host.WithCloseOnContextDone(false)}},
	} {
		if err := benchPlugin(ctx, stdout, s, preset, variant.target, pluginModule, variant.opts, model, cases, inputs); err != nil {
			return err
		}
	}

	// Chromium.
	if browser == nil {
		return nil
	}
	run, err := browser.Run(ctx, model, cases, inputs, harness.RunOptions{Warmup: s.warmup, Repeat: s.runs})
	if err != nil {
		return err
	}
	for _, result := range run.Results {
		if result.Output.Error != "" {
			return fmt.Errorf("chromium %s: %s", result.Name, result.Output.Error)
		}
		times := make([]time.Duration, len(result.Millis))
		for i, ms := range result.Millis {
			times[i] = time.Duration(ms * float64(time.Millisecond))
		}
		printRow(stdout, preset, result.Name, "chromium", run.LoadMillis, times)
	}
	return nil
}

// quantizeModel converts a float32 model file to the int8 scheme.
func quantizeModel(data []byte) ([]byte, error) {
	mf, err := core.ReadModelFile(data)
	if err != nil {
		return nil, err
	}
	quantized, _, err := quantize.QuantizeModelFile(mf)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, quantized); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func benchPlugin(ctx context.Context, stdout io.Writer, s settings, preset, target string, module []byte, opts []host.Option,
	model []byte, cases []harness.Case, inputs harness.Inputs,
) error {
	plugin, err := host.Open(ctx, module, append(opts, host.WithPoolSize(1))...)
	if err != nil {
		return err
	}
	defer plugin.Close(ctx)
	start := time.Now()
	m, err := plugin.LoadModel(ctx, model)
	if err != nil {
		return err
	}
	load := time.Since(start)
	for _, c := range cases {
		times, err := timeCalls(s, func() error {
			out, err := harness.RunPlugin(ctx, m, c, inputs)
			if err == nil && out.Error != "" {
				err = errors.New(out.Error)
			}
			return err
		})
		if err != nil {
			return err
		}
		printRow(stdout, preset, c.Name, target, millis(load), times)
	}
	return nil
}

// timeCalls makes s.warmup untimed calls and s.runs timed ones.
func timeCalls(s settings, call func() error) ([]time.Duration, error) {
	for range s.warmup {
		if err := call(); err != nil {
			return nil, err
		}
	}
	times := make([]time.Duration, s.runs)
	for i := range times {
		start := time.Now()
		if err := call(); err != nil {
			return nil, err
		}
		times[i] = time.Since(start)
	}
	return times, nil
}

func printRow(stdout io.Writer, preset, op, target string, loadMillis float64, times []time.Duration) {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	p90 := sorted[min(len(sorted)-1, len(sorted)*9/10)]
	fmt.Fprintf(stdout, "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f |\n",
		preset, op, target, loadMillis, millis(median(times)), millis(p90), millis(sorted[0]))
}

func median(times []time.Duration) time.Duration {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
