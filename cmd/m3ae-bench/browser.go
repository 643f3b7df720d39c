// The browser group times the core's forward pass built for GOOS=js, in
// its scalar flavor and in its WebAssembly SIMD flavor, against
// onnxruntime-web's wasm backend, each in a Web Worker of one headless
// Chromium, on the same models and inputs as the onnx-node group.

package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/forwardinput"
	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

func init() {
	register(group{
		name:  "browser",
		about: "core forward pass for GOOS=js, scalar and SIMD, against onnxruntime-web (wasm, SIMD, 1 thread) in headless Chromium, tiny and small presets",
		run:   runBrowser,
	})
}

// chromiumFlag names the browser that the browser and wasm groups start.
var chromiumFlag = stringFlag("chromium", harness.DefaultChromiumPath, "Chromium executable of the browser and wasm groups")

// forwardPackage is the GOOS=js module that the browser group times: the
// core's forward pass on preprocessed inputs.
const forwardPackage = "github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/testdata/forward"

//go:embed testdata/browser
var browserPage embed.FS

func runBrowser(ctx context.Context, env *benchEnv) (string, error) {
	chromium := env.flag(chromiumFlag)
	if err := findChromium(chromium); err != nil {
		return "", err
	}
	ortDir, version, err := findNodePackage("onnxruntime-web")
	if err != nil {
		return "", err
	}
	if version != onnxRuntimeVersion {
		env.log.Warn("onnxruntime-web version differs from the one .ci/peers installs", "found", version, "want", onnxRuntimeVersion)
	}
	imageData, err := os.ReadFile(env.flag(imageFlag))
	if err != nil {
		return "", fmt.Errorf("read -image: %w", err)
	}
	dir, err := os.MkdirTemp("", "m3ae-bench-browser-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	builds, simdMissing, err := buildForwardModules(ctx, env.log, dir)
	if err != nil {
		return "", err
	}
	tab, closePage, err := openBenchPage(ctx, dir, chromium, filepath.Join(ortDir, "dist"))
	if err != nil {
		return "", err
	}
	defer closePage()

	peerName := "onnxruntime-web " + version
	table := newMarkdownTable("preset", "op", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs", "simd speed-up")
	var diffs outputDiffs
	for _, preset := range inferencePresets(env) {
		env.log.Info("browser: exporting", "preset", preset)
		setup, err := newInferenceSetup(preset, imageData, dir)
		if err != nil {
			return "", fmt.Errorf("preset %s: %w", preset, err)
		}
		if err := writeBrowserInputs(filepath.Join(dir, "files", preset), setup); err != nil {
			return "", err
		}
		counts := inferenceRuns(env, preset)

		ours := make([]*workerReply, len(builds))
		for i, build := range builds {
			env.log.Info("browser: timing the core", "preset", preset, "flavor", build.flavor.Name)
			ours[i], err = runInWorker(ctx, tab, "/ours-worker.js", oursSpec(preset, build, counts))
			if err != nil {
				return "", fmt.Errorf("preset %s, %s core in Chromium: %w", preset, build.flavor.Name, err)
			}
		}
		env.log.Info("browser: timing onnxruntime-web", "preset", preset)
		theirs, err := runInWorker(ctx, tab, "/ort-worker.js", ortSpec(setup, counts))
		if err != nil {
			return "", fmt.Errorf("preset %s, onnxruntime-web: %w", preset, err)
		}
		if err := addBrowserRows(table, setup, builds, ours, theirs, peerName, &diffs); err != nil {
			return "", fmt.Errorf("preset %s: %w", preset, err)
		}

		// Remove this preset's files before the next preset writes its own,
		// because small's take 733 MB.
		if err := os.RemoveAll(filepath.Join(dir, "files", preset)); err != nil {
			return "", err
		}
	}
	return browserText(env, diffs, simdMissing) + "\n" + table.String(), nil
}

// forwardBuild is one flavor of the GOOS=js forward-pass module, as the
// page serves it.
type forwardBuild struct {
	flavor harness.Flavor
	// runtime is the runtime cell of the build's rows.
	runtime string
	// module and wasmExec are the file names of the module and of its
	// toolchain's wasm_exec.js, both in the page server's folder and
	// under / on the page.
	module, wasmExec string
}

// buildForwardModules builds the forward-pass module into dir in the
// scalar flavor, with the running toolchain, and in the SIMD flavor, with
// harness.SIMDToolchain, each beside its toolchain's wasm_exec.js. When the
// go command can neither find nor fetch that toolchain, it logs a warning
// and returns the scalar build alone, with the reason in simdMissing. A
// failed build is an error in either flavor.
func buildForwardModules(ctx context.Context, log *slog.Logger, dir string) (builds []forwardBuild, simdMissing string, err error) {
	scalar := forwardBuild{
		flavor:   harness.ScalarFlavor,
		runtime:  "m3ae-edge core (Go, GOOS=js, scalar)",
		module:   "forward.wasm",
		wasmExec: "wasm_exec.js",
	}
	scalarExec, err := harness.WasmExecJS()
	if err != nil {
		return nil, "", err
	}
	if err := writeForwardBuild(ctx, log, dir, scalar, scalarExec); err != nil {
		return nil, "", err
	}
	builds = append(builds, scalar)

	simd := forwardBuild{
		flavor:   harness.WasmSIMDFlavor,
		runtime:  "m3ae-edge core (Go, GOOS=js, SIMD128)",
		module:   "forward-simd.wasm",
		wasmExec: "wasm_exec-simd.js",
	}
	// go env GOROOT fetches the toolchain from the module proxy unless
	// the module cache already has it, so its failure means that the SIMD
	// flavor cannot be built here.
	simdExec, err := harness.WasmExecJSFlavor(ctx, simd.flavor)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		log.Warn("browser: leaving the SIMD flavor out, because its Go toolchain is not available",
			"toolchain", harness.SIMDToolchain, "err", err)
		return builds, harness.SIMDToolchain + " could be neither found in the module cache nor fetched from the module proxy", nil
	}
	if err := writeForwardBuild(ctx, log, dir, simd, simdExec); err != nil {
		return nil, "", err
	}
	return append(builds, simd), "", nil
}

// writeForwardBuild builds b's module and writes wasmExec beside it in dir.
func writeForwardBuild(ctx context.Context, log *slog.Logger, dir string, b forwardBuild, wasmExec []byte) error {
	log.Info("browser: building the GOOS=js module", "package", forwardPackage, "flavor", b.flavor.Name, "env", b.flavor.Env)
	if err := buildJSModule(ctx, b.flavor, filepath.Join(dir, b.module), forwardPackage); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, b.wasmExec), wasmExec, 0o644)
}

// openBenchPage serves the page on 127.0.0.1 from dir, which holds the
// modules of buildForwardModules, and opens it in headless Chromium.
// closePage stops Chromium and the server.
func openBenchPage(ctx context.Context, dir, chromium, ortDist string) (tab context.Context, closePage func(), err error) {
	server, err := startPageServer(dir, ortDist)
	if err != nil {
		return nil, nil, err
	}
	tab, closeBrowser, err := openPage(ctx, chromium, filepath.Join(dir, "profile"), "http://"+server.Addr+"/")
	if err != nil {
		server.Close()
		return nil, nil, err
	}
	return tab, func() {
		closeBrowser()
		server.Close()
	}, nil
}

// outputDiffs are the largest differences from the native core's outputs
// of our side in Chromium, either flavor, and of onnxruntime-web, and the
// largest difference between the SIMD flavor's outputs and the scalar
// flavor's.
type outputDiffs struct {
	ours, theirs, flavors float64
}

// addBrowserRows checks the outputs of every build's worker in ours and
// of onnxruntime-web's worker against the native core's, and keeps the
// largest differences in diffs. Then it adds each op's rows to table: one
// per build, in the order of builds, and then onnxruntime-web's. A build's
// ours/theirs is its median over onnxruntime-web's. The simd speed-up of
// a later build is the first build's median over its own.
func addBrowserRows(table *markdownTable, setup *inferenceSetup, builds []forwardBuild, ours []*workerReply,
	theirs *workerReply, peerName string, diffs *outputDiffs,
) error {
	for i, op := range inferenceOps {
		want, err := setup.runCore(op)
		if err != nil {
			return err
		}
		type side struct {
			name   string
			result workerResult
			worst  *float64
		}
		sides := []side{{"onnxruntime-web", theirs.Results[i], &diffs.theirs}}
		for j, build := range builds {
			sides = append(sides, side{"the " + build.flavor.Name + " core in Chromium", ours[j].Results[i], &diffs.ours})
		}
		for _, side := range sides {
			diff := maxAbsDiff(side.result.Output, want)
			if diff > maxOutputDiff {
				return fmt.Errorf("%s: the output of %s differs from the native core's by %g, over %g: the two sides did not run the same model",
					op.name, side.name, diff, maxOutputDiff)
			}
			*side.worst = max(*side.worst, diff)
		}

		theirsSummary := summarize(theirs.Results[i].Millis)
		scalarSummary := summarize(ours[0].Results[i].Millis)
		for j, build := range builds {
			oursSummary := summarize(ours[j].Results[i].Millis)
			speedUp := "-"
			if j > 0 {
				speedUp = formatRatio(scalarSummary.median, oursSummary.median)
				diffs.flavors = max(diffs.flavors, maxAbsDiff(ours[j].Results[i].Output, ours[0].Results[i].Output))
			}
			row := timingRow([]string{setup.preset, op.name, build.runtime}, oursSummary, formatRatio(oursSummary.median, theirsSummary.median))
			table.add(append(row, speedUp)...)
		}
		table.add(append(timingRow([]string{setup.preset, op.name, peerName}, theirsSummary, "-"), "-")...)
	}
	return nil
}

// findChromium checks that the Chromium executable exists.
func findChromium(path string) error {
	if !harness.ChromiumAvailable(path) {
		return fmt.Errorf("%w: Chromium not found at %s: install Debian's chromium (.ci/peers does) or pass -chromium", errPeerMissing, path)
	}
	return nil
}

// buildJSModule builds the GOOS=js package pkg of flavor into out with the
// go command of the running toolchain, which switches to the toolchain
// that flavor's GOTOOLCHAIN names. The current folder must be inside this
// module.
func buildJSModule(ctx context.Context, flavor harness.Flavor, out, pkg string) error {
	tool, err := harness.GoTool()
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, tool, "build", "-trimpath", "-o", out, pkg)
	env := append(slices.Clone(flavor.Env), "GOOS=js", "GOARCH=wasm")
	cmd.Env = append(os.Environ(), env...)
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s go build %s: %w (run m3ae-bench from the repository)\n%s", strings.Join(env, " "), pkg, err, output)
	}
	return nil
}

// writeBrowserInputs writes the model file, the ONNX models and every
// input of setup into dir, one file each, which the page server serves
// under /files/<preset>/. It moves the ONNX files from s.onnxPaths.
func writeBrowserInputs(dir string, s *inferenceSetup) error {
	if err := writeForwardInputs(dir, s); err != nil {
		return err
	}
	for _, op := range inferenceOps {
		if err := os.Rename(s.onnxPaths[op.name], filepath.Join(dir, op.spec.FileName())); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		onnx.InputImageKeep: int32Bytes(keptIndices(s.masks.Image)),
		onnx.InputTextKeep:  int32Bytes(keptIndices(s.masks.Text)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeForwardInputs writes the model file and the example of s into dir,
// as package forwardinput reads them.
func writeForwardInputs(dir string, s *inferenceSetup) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, forwardinput.ModelFile))
	if err != nil {
		return err
	}
	if err := core.WriteModelFile(f, s.file); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	files := map[string][]byte{
		forwardinput.PatchesFile:   forwardinput.Float32Bytes(s.in.Patches),
		forwardinput.TokensFile:    int32Bytes(s.in.Tokens),
		forwardinput.ImageMaskFile: maskBytes(s.masks.Image),
		forwardinput.TextMaskFile:  maskBytes(s.masks.Text),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// maskBytes returns one byte per position, 1 for hidden.
func maskBytes(hidden []bool) []byte {
	out := make([]byte, len(hidden))
	for i, h := range hidden {
		if h {
			out[i] = 1
		}
	}
	return out
}

// workerSpec is the message that ours-worker.js and ort-worker.js read.
// Module and WasmExec, the URLs of the GOOS=js module and of its
// wasm_exec.js, are for ours-worker.js only.
type workerSpec struct {
	Module   string     `json:"module,omitempty"`
	WasmExec string     `json:"wasmExec,omitempty"`
	Model    string     `json:"model,omitempty"`
	Inputs   string     `json:"inputs"`
	Warmup   int        `json:"warmup"`
	Runs     int        `json:"runs"`
	Ops      []workerOp `json:"ops"`
}

type workerOp struct {
	Name   string       `json:"name"`
	Model  string       `json:"model,omitempty"`
	Output string       `json:"output,omitempty"`
	Feeds  []workerFeed `json:"feeds,omitempty"`
}

type workerFeed struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Dims []int  `json:"dims"`
}

type workerReply struct {
	OK      bool           `json:"ok"`
	Error   string         `json:"error"`
	Version string         `json:"version"`
	Results []workerResult `json:"results"`
}

type workerResult struct {
	Name   string    `json:"name"`
	Millis []float64 `json:"millis"`
	Output []float32 `json:"output"`
}

func oursSpec(preset string, build forwardBuild, counts runCounts) workerSpec {
	spec := workerSpec{
		Module:   "/" + build.module,
		WasmExec: "/" + build.wasmExec,
		Model:    "/files/" + preset + "/model.safetensors",
		Inputs:   "/files/" + preset + "/",
		Warmup:   counts.oursWarmup,
		Runs:     counts.oursRuns,
	}
	for _, op := range inferenceOps {
		spec.Ops = append(spec.Ops, workerOp{Name: op.name})
	}
	return spec
}

func ortSpec(s *inferenceSetup, counts runCounts) workerSpec {
	spec := workerSpec{Inputs: "/files/" + s.preset + "/", Warmup: counts.peerWarmup, Runs: counts.peerRuns}
	for _, op := range inferenceOps {
		var feeds []workerFeed
		for name, tensor := range s.onnxInputs(op) {
			feeds = append(feeds, workerFeed{Name: name, Type: tensor.Type, Dims: tensor.Dims})
		}
		spec.Ops = append(spec.Ops, workerOp{
			Name:   op.name,
			Model:  "/files/" + s.preset + "/" + op.spec.FileName(),
			Output: op.output,
			Feeds:  feeds,
		})
	}
	return spec
}

// runInWorker runs spec in a fresh Web Worker of the page and checks that
// the reply has one result with timed calls per op.
func runInWorker(ctx context.Context, tab context.Context, script string, spec workerSpec) (*workerReply, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	scriptJSON, err := json.Marshal(script)
	if err != nil {
		return nil, err
	}
	evaluate := chromedp.Evaluate[string]("runWorker("+string(scriptJSON)+", "+string(specJSON)+")", chromedp.EvalAwaitPromise)
	text, err := runInTab(ctx, tab, evaluate)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", script, err)
	}

	var reply workerReply
	if err := json.Unmarshal([]byte(text), &reply); err != nil {
		return nil, fmt.Errorf("decode the reply of %s: %w", script, err)
	}
	if !reply.OK {
		return nil, fmt.Errorf("%s failed: %s", script, reply.Error)
	}
	if len(reply.Results) != len(spec.Ops) {
		return nil, fmt.Errorf("%s returned %d results, want %d", script, len(reply.Results), len(spec.Ops))
	}
	for i, result := range reply.Results {
		if result.Name != spec.Ops[i].Name || len(result.Millis) != spec.Runs {
			return nil, fmt.Errorf("%s returned result %q with %d timed calls, want %q with %d",
				script, result.Name, len(result.Millis), spec.Ops[i].Name, spec.Runs)
		}
	}
	return &reply, nil
}

// runInTab runs action in the tab until it finishes or ctx is done.
func runInTab[T any](ctx context.Context, tab context.Context, action chromedp.Action[T]) (T, error) {
	tab, cancel := context.WithCancel(tab)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	value, err := chromedp.Run(tab, action)
	if ctx.Err() != nil {
		return value, ctx.Err()
	}
	return value, err
}

// openPage starts headless Chromium with a fresh profile in profileDir
// and opens url. closeBrowser stops Chromium.
func openPage(ctx context.Context, chromium, profileDir, url string) (tab context.Context, closeBrowser func(), err error) {
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return nil, nil, err
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), harness.ChromiumOptions(chromium, profileDir)...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	closeBrowser = func() {
		cancelTab()
		cancelAlloc()
	}
	// The first Run starts Chromium, which then lives as long as the
	// context of that call, so it runs on the tab's own context, and ctx
	// stops the browser only if the start does not finish in time.
	stop := context.AfterFunc(ctx, closeBrowser)
	err = chromedp.Do(tab, chromedp.Navigate(url))
	if !stop() || err != nil {
		closeBrowser()
		return nil, nil, fmt.Errorf("start Chromium and open %s: %w", url, errors.Join(err, ctx.Err()))
	}
	return tab, closeBrowser, nil
}

// pageServer serves the page on 127.0.0.1: the embedded page and workers,
// the files of the temporary folder dir (the modules, wasm_exec.js and
// /files/<preset>/), and onnxruntime-web's dist folder under /ort/.
type pageServer struct {
	Addr   string
	server *http.Server
}

func startPageServer(dir, ortDist string) (*pageServer, error) {
	page, err := fs.Sub(browserPage, "testdata/browser")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", http.FileServerFS(page))
	for _, name := range []string{"ours-worker.js", "ort-worker.js"} {
		mux.Handle("GET /"+name, http.FileServerFS(page))
	}
	for _, name := range []string{"forward.wasm", "wasm_exec.js", "forward-simd.wasm", "wasm_exec-simd.js"} {
		path := filepath.Join(dir, name)
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	}
	mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServer(http.Dir(filepath.Join(dir, "files")))))
	mux.Handle("GET /ort/", http.StripPrefix("/ort/", http.FileServer(http.Dir(ortDist))))

	listener, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	s := &pageServer{Addr: listener.Addr().String(), server: &http.Server{
		Handler:           noStore(mux),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go s.server.Serve(listener)
	return s, nil
}

func (s *pageServer) Close() { s.server.Close() }

// noStore turns off caching and sets the JavaScript type of .mjs files,
// which onnxruntime-web imports as modules.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, ".mjs") {
			w.Header().Set("Content-Type", mime.TypeByExtension(".js"))
		}
		next.ServeHTTP(w, r)
	})
}

// goRelease returns the release of the running toolchain, such as
// go1.26.8, without the experiments that runtime.Version appends.
func goRelease() string {
	release, _, _ := strings.Cut(runtime.Version(), "-X:")
	return release
}

// browserText returns the paragraphs above the table. simdMissing is the
// reason that the SIMD rows are left out, or is empty.
func browserText(env *benchEnv, diffs outputDiffs, simdMissing string) string {
	var b strings.Builder
	b.WriteString("Batch 1, float32, the models and inputs of the onnx-node group: seeded random weights, " +
		"the forward pass from the same preprocessed patches, token ids and masks on both sides. " +
		"Both run in a Web Worker of one headless Chromium, on a page served from 127.0.0.1, one after the other. " +
		"Ours is the core built with `GOOS=js GOARCH=wasm` (`cmd/m3ae-bench/testdata/forward`, " +
		"which calls `core.Model.Embed` and `core.Model.Reconstruct` as `wasm/browser` does, minus the image decoding, " +
		"tokenizing and output conversion that the wasm group's figures include). " +
		"onnxruntime-web runs the same ONNX files with its wasm backend, SIMD on, `numThreads = 1`, " +
		"timed around `session.run`. So both run on one thread, as Go's js/wasm port always does. ")
	fmt.Fprintf(&b, "The core comes in two flavors with the same outputs. "+
		"The scalar one is built with the running toolchain (%s, whose wasm backend emits no SIMD) and `GOEXPERIMENT=` unset. "+
		"The SIMD one is built with `GOTOOLCHAIN=%s GOEXPERIMENT=simd`, as `make wasm` does, so its kernels use WebAssembly SIMD128. ",
		goRelease(), harness.SIMDToolchain)
	for _, preset := range inferencePresets(env) {
		counts := inferenceRuns(env, preset)
		fmt.Fprintf(&b, "%s makes %s on our side and %d on onnxruntime-web's before the timed ones. ",
			preset, fmt.Sprintf("%d warm-up call%s", counts.oursWarmup, plural(counts.oursWarmup)), counts.peerWarmup)
	}
	b.WriteString("p90 is the nearest-rank 90th percentile. ours/theirs is the core row's median over onnxruntime-web's: above 1, ours is slower. " +
		"simd speed-up is the scalar median over the SIMD median: above 1, the SIMD flavor is faster. ")
	ours := "matched the native core's exactly"
	if diffs.ours > 0 {
		ours = fmt.Sprintf("differed from the native core's by at most %.2g", diffs.ours)
	}
	fmt.Fprintf(&b, "Our outputs (`cls_embedding`, `encoded`) %s, and onnxruntime-web's differed by at most %.2g. ",
		ours, diffs.theirs)
	switch {
	case simdMissing != "":
		fmt.Fprintf(&b, "\n\nSIMD rows left out: %s.\n", simdMissing)
	case diffs.flavors == 0:
		b.WriteString("The SIMD flavor's outputs matched the scalar flavor's exactly.\n")
	default:
		fmt.Fprintf(&b, "The SIMD flavor's outputs differed from the scalar flavor's by at most %.2g, although the two should match bit for bit.\n",
			diffs.flavors)
	}
	return b.String()
}
