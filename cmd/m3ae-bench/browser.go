// The browser group times the core's forward pass built for GOOS=js
// against onnxruntime-web's wasm backend, each in a Web Worker of one
// headless Chromium, on the same models and inputs as the onnx-node group.

package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

func init() {
	register(group{
		name:  "browser",
		about: "core forward pass for GOOS=js against onnxruntime-web (wasm, SIMD, 1 thread) in headless Chromium, tiny and small presets",
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

	env.log.Info("browser: building the GOOS=js module", "package", forwardPackage)
	tab, closePage, err := openBenchPage(ctx, dir, chromium, filepath.Join(ortDir, "dist"))
	if err != nil {
		return "", err
	}
	defer closePage()

	peerName := "onnxruntime-web " + version
	table := newMarkdownTable("preset", "op", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs")
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

		env.log.Info("browser: timing the core", "preset", preset)
		ours, err := runInWorker(ctx, tab, "/ours-worker.js", oursSpec(preset, counts))
		if err != nil {
			return "", fmt.Errorf("preset %s, core in Chromium: %w", preset, err)
		}
		env.log.Info("browser: timing onnxruntime-web", "preset", preset)
		theirs, err := runInWorker(ctx, tab, "/ort-worker.js", ortSpec(setup, counts))
		if err != nil {
			return "", fmt.Errorf("preset %s, onnxruntime-web: %w", preset, err)
		}
		if err := addBrowserRows(table, setup, ours, theirs, peerName, &diffs); err != nil {
			return "", fmt.Errorf("preset %s: %w", preset, err)
		}

		// Remove this preset's files before the next preset writes its own,
		// because small's take 733 MB.
		if err := os.RemoveAll(filepath.Join(dir, "files", preset)); err != nil {
			return "", err
		}
	}
	return browserText(env, diffs) + "\n" + table.String(), nil
}

// openBenchPage builds the GOOS=js module into dir, serves the page on
// 127.0.0.1 and opens it in headless Chromium. closePage stops Chromium
// and the server.
func openBenchPage(ctx context.Context, dir, chromium, ortDist string) (tab context.Context, closePage func(), err error) {
	if err := buildJSModule(ctx, filepath.Join(dir, "forward.wasm"), forwardPackage); err != nil {
		return nil, nil, err
	}
	wasmExec, err := harness.WasmExecJS()
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), wasmExec, 0o644); err != nil {
		return nil, nil, err
	}
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
// of our side in Chromium and of onnxruntime-web.
type outputDiffs struct {
	ours, theirs float64
}

// addBrowserRows checks both workers' outputs against the native core's,
// keeping the largest differences in diffs, and adds the rows of every op
// to table.
func addBrowserRows(table *markdownTable, setup *inferenceSetup, ours, theirs *workerReply, peerName string, diffs *outputDiffs) error {
	for i, op := range inferenceOps {
		want, err := setup.runCore(op)
		if err != nil {
			return err
		}
		for _, side := range []struct {
			name   string
			result workerResult
			worst  *float64
		}{{"the core in Chromium", ours.Results[i], &diffs.ours}, {"onnxruntime-web", theirs.Results[i], &diffs.theirs}} {
			diff := maxAbsDiff(side.result.Output, want)
			if diff > maxOutputDiff {
				return fmt.Errorf("%s: the output of %s differs from the native core's by %g, over %g: the two sides did not run the same model",
					op.name, side.name, diff, maxOutputDiff)
			}
			*side.worst = max(*side.worst, diff)
		}

		oursSummary, theirsSummary := summarize(ours.Results[i].Millis), summarize(theirs.Results[i].Millis)
		table.add(timingRow([]string{setup.preset, op.name, "m3ae-edge core (Go, GOOS=js)"}, oursSummary, "-")...)
		ratio := formatRatio(oursSummary.median, theirsSummary.median)
		table.add(timingRow([]string{setup.preset, op.name, peerName}, theirsSummary, ratio)...)
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

// buildJSModule builds the GOOS=js package pkg into out with the go
// command of the running toolchain. The current folder must be inside
// this module.
func buildJSModule(ctx context.Context, out, pkg string) error {
	tool, err := harness.GoTool()
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, tool, "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	output, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("GOOS=js GOARCH=wasm go build %s: %w (run m3ae-bench from the repository)\n%s", pkg, err, output)
	}
	return nil
}

// writeBrowserInputs writes the model file, the ONNX models and every
// input of setup into dir, one file each, which the page server serves
// under /files/<preset>/.
func writeBrowserInputs(dir string, s *inferenceSetup) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
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
	for _, op := range inferenceOps {
		if err := os.Rename(s.onnxPaths[op.name], filepath.Join(dir, op.spec.FileName())); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		onnx.InputPatches:   float32Bytes(s.in.Patches),
		onnx.InputTokens:    int32Bytes(s.in.Tokens),
		onnx.InputImageKeep: int32Bytes(keptIndices(s.masks.Image)),
		onnx.InputTextKeep:  int32Bytes(keptIndices(s.masks.Text)),
		"image_mask":        maskBytes(s.masks.Image),
		"text_mask":         maskBytes(s.masks.Text),
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
type workerSpec struct {
	Model  string     `json:"model,omitempty"`
	Inputs string     `json:"inputs"`
	Warmup int        `json:"warmup"`
	Runs   int        `json:"runs"`
	Ops    []workerOp `json:"ops"`
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

func oursSpec(preset string, counts runCounts) workerSpec {
	spec := workerSpec{
		Model:  "/files/" + preset + "/model.safetensors",
		Inputs: "/files/" + preset + "/",
		Warmup: counts.oursWarmup,
		Runs:   counts.oursRuns,
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
	for _, name := range []string{"forward.wasm", "wasm_exec.js"} {
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

// browserText returns the paragraphs above the table.
func browserText(env *benchEnv, diffs outputDiffs) string {
	var b strings.Builder
	b.WriteString("Batch 1, float32, the models and inputs of the onnx-node group: seeded random weights, " +
		"the forward pass from the same preprocessed patches, token ids and masks on both sides. " +
		"Both run in a Web Worker of one headless Chromium, on a page served from 127.0.0.1, one after the other. " +
		"Ours is the core built with `GOOS=js GOARCH=wasm` (`cmd/m3ae-bench/testdata/forward`, " +
		"which calls `core.Model.Embed` and `core.Model.Reconstruct` as `wasm/browser` does, minus the image decoding, " +
		"tokenizing and output conversion that the wasm group's figures include). " +
		"onnxruntime-web runs the same ONNX files with its wasm backend, SIMD on, `numThreads = 1`, " +
		"timed around `session.run`. So both run on one thread, as Go's js/wasm port always does. ")
	for _, preset := range inferencePresets(env) {
		counts := inferenceRuns(env, preset)
		fmt.Fprintf(&b, "%s makes %d warm-up calls on our side and %d on onnxruntime-web's before the timed ones. ",
			preset, counts.oursWarmup, counts.peerWarmup)
	}
	b.WriteString("p90 is the nearest-rank 90th percentile. ours/theirs is the ratio of medians: above 1, ours is slower. ")
	ours := "matched the native core's exactly"
	if diffs.ours > 0 {
		ours = fmt.Sprintf("differed from the native core's by at most %.2g", diffs.ours)
	}
	fmt.Fprintf(&b, "Our outputs (`cls_embedding`, `encoded`) %s, and onnxruntime-web's differed by at most %.2g.\n",
		ours, diffs.theirs)
	return b.String()
}
