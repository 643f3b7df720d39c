// The wasm group measures the WebAssembly builds, in the scalar flavor and
// in the WebAssembly SIMD flavor. It reports the module sizes (raw, gzip,
// brotli) and the scalar plugin's start-up time with and without the
// compilation cache. Then, for each preset, it times whole embed and
// reconstruct calls natively, and through the wazero plugin and in a Web
// Worker in headless Chromium in each flavor.

package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/quantize"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

func init() {
	register(group{
		name:  "wasm",
		about: "WebAssembly module sizes, plugin start-up, and embed and reconstruct natively, in wazero and in Chromium, scalar and SIMD",
		run:   runWasm,
	})
}

// Paths of the four modules that `make wasm` builds.
var (
	browserModuleFlag = stringFlag("browser", "build/m3ae.wasm", "GOOS=js module of wasm/browser for the wasm group (make wasm builds it)")
	pluginModuleFlag  = stringFlag("plugin", "build/m3ae-plugin.wasm", "GOOS=wasip1 plugin of wasm/plugin for the wasm group (make wasm builds it)")
	browserSIMDFlag   = stringFlag("browser-simd", "build/m3ae-simd.wasm",
		"GOOS=js module of wasm/browser with WebAssembly SIMD kernels for the wasm group (make wasm builds it); its rows are left out when the file is missing")
	pluginSIMDFlag = stringFlag("plugin-simd", "build/m3ae-plugin-simd.wasm",
		"GOOS=wasip1 plugin of wasm/plugin with WebAssembly SIMD kernels for the wasm group (make wasm builds it); its rows are left out when the file is missing")
)

// wasmSettings are the presets and call counts of one run, and what the
// text above the latency table reports.
type wasmSettings struct {
	presets      []string
	warmup, runs int
	// imageName is the base name of -image.
	imageName string
	// chromiumMissing names the Chromium executable that was not found, so
	// that the Chromium rows are left out, or is empty.
	chromiumMissing string
	// simdMissing lists the SIMD modules that were not found, so that
	// their rows are left out.
	simdMissing []string
}

// wasmFlavor is one flavor's modules, which the latency table times.
type wasmFlavor struct {
	// suffix follows "wazero" and "chromium" in the target names: empty
	// for the scalar flavor and " simd" for the SIMD one.
	suffix string
	// plugin is the GOOS=wasip1 plugin, or nil to leave its rows out.
	plugin []byte
	// browser runs the GOOS=js module, or is nil to leave its rows out.
	browser *harness.Browser
}

func newWasmSettings(env *benchEnv) wasmSettings {
	if env.quick {
		return wasmSettings{presets: []string{"micro"}, warmup: 1, runs: 2}
	}
	return wasmSettings{presets: []string{"micro", "tiny"}, warmup: 3, runs: 10}
}

func runWasm(ctx context.Context, env *benchEnv) (string, error) {
	s := newWasmSettings(env)
	browserPath, pluginPath := env.flag(browserModuleFlag), env.flag(pluginModuleFlag)
	browserModule, err := os.ReadFile(browserPath)
	if err != nil {
		return "", fmt.Errorf("read the browser module: %w (build it with make wasm, or pass -browser)", err)
	}
	pluginModule, err := os.ReadFile(pluginPath)
	if err != nil {
		return "", fmt.Errorf("read the plugin: %w (build it with make wasm, or pass -plugin)", err)
	}
	modules := map[string][]byte{browserPath: browserModule, pluginPath: pluginModule}
	browserSIMDPath, pluginSIMDPath := env.flag(browserSIMDFlag), env.flag(pluginSIMDFlag)
	browserSIMD, err := readSIMDModule(env.log, &s, browserSIMDPath, modules)
	if err != nil {
		return "", fmt.Errorf("read the SIMD browser module: %w (build it with make wasm, or pass -browser-simd)", err)
	}
	pluginSIMD, err := readSIMDModule(env.log, &s, pluginSIMDPath, modules)
	if err != nil {
		return "", fmt.Errorf("read the SIMD plugin: %w (build it with make wasm, or pass -plugin-simd)", err)
	}
	imageData, err := os.ReadFile(env.flag(imageFlag))
	if err != nil {
		return "", fmt.Errorf("read -image: %w", err)
	}
	s.imageName = filepath.Base(env.flag(imageFlag))

	var body strings.Builder
	env.log.Info("wasm: module sizes")
	sizes, err := moduleSizes(modules)
	if err != nil {
		return "", err
	}
	body.WriteString("### Module sizes (bytes)\n\n" + sizes + "\n")
	env.log.Info("wasm: plugin start-up")
	startup, err := pluginStartup(ctx, pluginModule)
	if err != nil {
		return "", err
	}
	body.WriteString("### Plugin start-up (ms)\n\n" + startup + "\n")

	flavors := []wasmFlavor{{suffix: "", plugin: pluginModule}, {suffix: " simd", plugin: pluginSIMD}}
	chromium := env.flag(chromiumFlag)
	if harness.ChromiumAvailable(chromium) {
		profile, err := os.MkdirTemp("", "m3ae-bench-chromium-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(profile)
		wasmExec, err := harness.WasmExecJS()
		if err != nil {
			return "", err
		}
		flavors[0].browser, err = startHarnessBrowser(ctx, chromium, browserModule, wasmExec, filepath.Join(profile, "scalar"))
		if err != nil {
			return "", err
		}
		defer flavors[0].browser.Close()
		if browserSIMD != nil {
			wasmExec, err = simdWasmExecJS(ctx, env.log, wasmExec)
			if err != nil {
				return "", err
			}
			flavors[1].browser, err = startHarnessBrowser(ctx, chromium, browserSIMD, wasmExec, filepath.Join(profile, "simd"))
			if err != nil {
				return "", err
			}
			defer flavors[1].browser.Close()
		}
	} else {
		s.chromiumMissing = chromium
	}

	// One compilation per host option set, shared by every plugin below,
	// so that only the start-up table pays for compiling.
	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	table := newMarkdownTable("preset", "op", "target", "load ms", "runs", "median ms", "p90 ms", "min ms", "x native")
	for _, preset := range s.presets {
		for _, precision := range []string{"float32", "int8"} {
			env.log.Info("wasm: timing", "preset", preset, "precision", precision)
			if err := latencyRows(ctx, table, s, preset, precision, flavors, cache, imageData); err != nil {
				return "", fmt.Errorf("preset %s %s: %w", preset, precision, err)
			}
		}
	}
	body.WriteString("### Latency (ms per call)\n\n" + latencyText(s) + "\n" + table.String())
	return body.String(), nil
}

// readSIMDModule reads the SIMD module at path into modules and returns
// it. When the file does not exist, it logs a warning, adds path to
// s.simdMissing and returns nil, so that the module's rows are left out.
func readSIMDModule(log *slog.Logger, s *wasmSettings, path string, modules map[string][]byte) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Warn("wasm: leaving the rows of a missing SIMD module out", "path", path)
		s.simdMissing = append(s.simdMissing, path)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	modules[path] = data
	return data, nil
}

// simdWasmExecJS returns the wasm_exec.js of harness.SIMDToolchain, which
// the go command finds in the module cache or fetches from the module
// proxy. When neither works, it logs a warning and returns scalar, the
// running toolchain's file, which make wasm checks to be the same.
func simdWasmExecJS(ctx context.Context, log *slog.Logger, scalar []byte) ([]byte, error) {
	wasmExec, err := harness.WasmExecJSFlavor(ctx, harness.WasmSIMDFlavor)
	if err == nil {
		return wasmExec, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	log.Warn("wasm: serving the SIMD browser module with the running toolchain's wasm_exec.js, because its own toolchain is not available",
		"toolchain", harness.SIMDToolchain, "err", err)
	return scalar, nil
}

// moduleSizes returns the table of each module's size raw, gzipped (level
// 9) and brotli-compressed (quality 11, with the brotli command).
func moduleSizes(modules map[string][]byte) (string, error) {
	table := newMarkdownTable("module", "raw", "gzip -9", "brotli -q 11")
	paths := make([]string, 0, len(modules))
	for path := range modules {
		paths = append(paths, path)
	}
	slices.SortFunc(paths, func(a, b string) int { return cmp.Compare(filepath.Base(a), filepath.Base(b)) })
	// brotli -q 11 takes seconds per module on one core, so all modules
	// are compressed at once.
	brotli := make([]string, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { brotli[i] = brotliSize(path) })
	}
	wg.Wait()

	for i, path := range paths {
		data := modules[path]
		var gz bytes.Buffer
		w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if err != nil {
			return "", err
		}
		if _, err := w.Write(data); err != nil {
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
		table.add(filepath.Base(path), fmt.Sprint(len(data)), fmt.Sprint(gz.Len()), brotli[i])
	}
	return table.String(), nil
}

// brotliSize returns the size of the file at path compressed by the brotli
// command at quality 11, or "brotli not installed" when the command fails.
func brotliSize(path string) string {
	out, err := exec.Command("brotli", "-c", "-q", "11", path).Output()
	if err != nil {
		return "brotli not installed"
	}
	return fmt.Sprint(len(out))
}

// pluginStartup times host.Open (compile and first instance) without a
// cache, with a cold cache folder and with a warm one, and the
// instantiation of one more instance of an already compiled module.
func pluginStartup(ctx context.Context, module []byte) (string, error) {
	dir, err := os.MkdirTemp("", "m3ae-bench-cache-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	table := newMarkdownTable("step", "ms")
	steps := []struct {
		name string
		opts []host.Option
	}{
		{"host.Open, no cache", nil},
		{"host.Open, cache folder cold", []host.Option{host.WithCompilationCacheDir(dir)}},
		{"host.Open, cache folder warm", []host.Option{host.WithCompilationCacheDir(dir)}},
	}
	for _, step := range steps {
		start := time.Now()
		p, err := host.Open(ctx, module, append(step.opts, host.WithPoolSize(1))...)
		if err != nil {
			return "", err
		}
		elapsed := time.Since(start)
		if err := p.Close(ctx); err != nil {
			return "", err
		}
		table.add(step.name, fmt.Sprintf("%.1f", toMillis(elapsed)))
	}

	// One more instance of a compiled module, as the pool creates them.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	compiled, err := r.CompileModule(ctx, module)
	if err != nil {
		return "", err
	}
	config := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime()
	const instances = 5
	millis := make([]float64, instances)
	for i := range millis {
		start := time.Now()
		mod, err := r.InstantiateModule(ctx, compiled, config)
		if err != nil {
			return "", err
		}
		millis[i] = toMillis(time.Since(start))
		if err := mod.Close(ctx); err != nil {
			return "", err
		}
	}
	table.add(fmt.Sprintf("one more instance of a compiled module (median of %d)", instances),
		fmt.Sprintf("%.1f", summarize(millis).median))
	return table.String(), nil
}

// startHarnessBrowser starts Chromium with a fresh profile in the folder
// profile, which it creates, on the harness page that runs module with
// wasmExec.
func startHarnessBrowser(ctx context.Context, chromium string, module, wasmExec []byte, profile string) (*harness.Browser, error) {
	if err := os.MkdirAll(profile, 0o755); err != nil {
		return nil, err
	}
	return harness.StartBrowser(ctx, harness.BrowserConfig{
		ChromiumPath: chromium,
		UserDataDir:  profile,
		Module:       module,
		WasmExecJS:   wasmExec,
	})
}

// wasmCases are the calls timed for every preset: whole calls from the
// encoded image and the caption, at the default mask ratios.
func wasmCases() []harness.Case {
	return []harness.Case{
		{Name: "embed", Op: harness.OpEmbed, Image: "input", Text: benchCaption, Pooling: "cls"},
		{Name: "reconstruct", Op: harness.OpReconstruct, Image: "input", Text: benchCaption,
			ImageMaskRatio: core.DefaultMaskRatio, TextMaskRatio: core.DefaultMaskRatio, Seed: 1, TopK: core.DefaultTopK},
	}
}

// pluginVariants are the wazero host settings timed: the default, which
// stops a running call when its context ends, and interruption off. A
// row's target is "wazero", the flavor's suffix and the variant's suffix.
var pluginVariants = []struct {
	suffix string
	opts   []host.Option
}{
	{"", nil},
	{", no interrupt", []host.Option{host.WithCloseOnContextDone(false)}},
}

// latencyRows adds the rows of one preset and precision to table: native,
// then each wazero variant of each flavor with a plugin, then Chromium in
// each flavor with a browser. The x native column is each row's median
// over the native median of the same op. Native calls run with GOMAXPROCS
// 1, because the wasm targets run Go code on one thread.
func latencyRows(ctx context.Context, table *markdownTable, s wasmSettings, preset, precision string,
	flavors []wasmFlavor, cache wazero.CompilationCache, imageData []byte,
) error {
	model, err := harness.ModelFile(preset, benchModelSeed)
	if err != nil {
		return err
	}
	if precision == "int8" {
		if model, err = quantizeModel(model); err != nil {
			return err
		}
	}
	label := preset + " " + precision
	inputs := harness.Inputs{"input": imageData}
	cases := wasmCases()

	// Native.
	start := time.Now()
	pipeline, err := core.Load(model)
	if err != nil {
		return err
	}
	load := toMillis(time.Since(start))
	native := map[string]float64{}
	for _, c := range cases {
		var millis []float64
		err := withGOMAXPROCS(1, func() error {
			var err error
			millis, err = timeCalls(ctx, s.warmup, s.runs, func() error {
				out, err := harness.RunNative(pipeline, c, inputs)
				if err == nil && out.Error != "" {
					err = errors.New(out.Error)
				}
				return err
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("native %s: %w", c.Name, err)
		}
		sum := summarize(millis)
		native[c.Name] = sum.median
		table.add(timingRow([]string{label, c.Name, "native", formatMillis(load)}, sum, "1.00")...)
	}

	// wazero plugin, with and without stopping calls on a done context.
	for _, flavor := range flavors {
		if flavor.plugin == nil {
			continue
		}
		for _, variant := range pluginVariants {
			target := "wazero" + flavor.suffix + variant.suffix
			opts := append([]host.Option{host.WithPoolSize(1), host.WithCompilationCache(cache)}, variant.opts...)
			if err := pluginRows(ctx, table, s, label, target, flavor.plugin, opts, model, cases, inputs, native); err != nil {
				return fmt.Errorf("%s: %w", target, err)
			}
		}
	}

	// Chromium.
	for _, flavor := range flavors {
		if flavor.browser == nil {
			continue
		}
		if err := browserRows(ctx, table, s, label, "chromium"+flavor.suffix, flavor.browser, model, cases, inputs, native); err != nil {
			return err
		}
	}
	return nil
}

func browserRows(ctx context.Context, table *markdownTable, s wasmSettings, label, target string, browser *harness.Browser,
	model []byte, cases []harness.Case, inputs harness.Inputs, native map[string]float64,
) error {
	run, err := browser.Run(ctx, model, cases, inputs, harness.RunOptions{Warmup: s.warmup, Repeat: s.runs})
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	for _, result := range run.Results {
		if result.Output.Error != "" {
			return fmt.Errorf("%s %s: %s", target, result.Name, result.Output.Error)
		}
		sum := summarize(result.Millis)
		table.add(timingRow([]string{label, result.Name, target, formatMillis(run.LoadMillis)}, sum,
			formatRatio(sum.median, native[result.Name]))...)
	}
	return nil
}

func pluginRows(ctx context.Context, table *markdownTable, s wasmSettings, label, target string, module []byte, opts []host.Option,
	model []byte, cases []harness.Case, inputs harness.Inputs, native map[string]float64,
) error {
	plugin, err := host.Open(ctx, module, opts...)
	if err != nil {
		return err
	}
	defer plugin.Close(ctx)
	start := time.Now()
	m, err := plugin.LoadModel(ctx, model)
	if err != nil {
		return err
	}
	load := toMillis(time.Since(start))
	for _, c := range cases {
		millis, err := timeCalls(ctx, s.warmup, s.runs, func() error {
			out, err := harness.RunPlugin(ctx, m, c, inputs)
			if err == nil && out.Error != "" {
				err = errors.New(out.Error)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		sum := summarize(millis)
		table.add(timingRow([]string{label, c.Name, target, formatMillis(load)}, sum, formatRatio(sum.median, native[c.Name]))...)
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

// latencyText returns the paragraph above the latency table.
func latencyText(s wasmSettings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Models have seeded random weights, and `int8` rows are the same model quantized with `m3ae-edge quantize`'s scheme. "+
		"Each call embeds or reconstructs `%s` with the caption %q, so every target's time includes decoding, resizing and tokenizing. "+
		"A row gives %d timed calls after %d warm-up calls, and load ms is the time to load the model file. "+
		"`wazero` is the plugin host's default, which stops a running call when its context ends. "+
		"`wazero, no interrupt` is the same with `host.WithCloseOnContextDone(false)`, which checks the context only between calls. "+
		"`chromium` runs the browser module inside a Web Worker. "+
		"`wazero`, `wazero, no interrupt` and `chromium` run the scalar flavor, built with Go 1.26, whose wasm backend emits no SIMD. "+
		"The `wazero simd`, `wazero simd, no interrupt` and `chromium simd` rows run the same code built with "+
		"`GOTOOLCHAIN=%s GOEXPERIMENT=simd` (`-plugin-simd`, `-browser-simd`), whose kernels use WebAssembly SIMD128. "+
		"Go's wasm ports run Go code on one thread, so the native rows run with GOMAXPROCS 1 as well. "+
		"x native is the row's median over the native median of the same op: above 1, the target is slower than native Go.\n",
		s.imageName, benchCaption, s.runs, s.warmup, harness.SIMDToolchain)
	if s.chromiumMissing != "" {
		fmt.Fprintf(&b, "\nChromium rows left out: %s not found.\n", s.chromiumMissing)
	}
	for _, path := range s.simdMissing {
		fmt.Fprintf(&b, "\nSIMD rows of %s left out: the file was not found (make wasm builds it).\n", path)
	}
	return b.String()
}
