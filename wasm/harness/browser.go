package harness

import (
	"context"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"

	"github.com/chromedp/chromedp"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// DefaultChromiumPath is the browser executable that Debian's chromium
// package installs.
const DefaultChromiumPath = "/usr/bin/chromium"

//go:embed page
var page embed.FS

// BrowserConfig configures StartBrowser.
type BrowserConfig struct {
	// ChromiumPath is the browser executable, DefaultChromiumPath when
	// empty.
	ChromiumPath string
	// UserDataDir is a fresh, empty profile directory.
	UserDataDir string
	// Module is the GOOS=js build of wasm/browser.
	Module []byte
	// WasmExecJS is the toolchain's wasm_exec.js.
	WasmExecJS []byte
}

// Browser is a headless Chromium with a page served on 127.0.0.1 that
// runs the browser module in a Web Worker.
type Browser struct {
	server *httptest.Server
	cancel []context.CancelFunc
	tab    context.Context

	mu    sync.Mutex
	files map[string][]byte // served paths, such as /model and /inputs/<name>
}

// ChromiumAvailable reports whether the browser executable exists.
func ChromiumAvailable(path string) bool {
	if path == "" {
		path = DefaultChromiumPath
	}
	_, err := os.Stat(path)
	return err == nil
}

// ChromiumOptions returns the options with which StartBrowser starts
// Chromium: headless, with the profile userDataDir, no sandbox and no GPU.
// They also turn off QUIC and Chromium's background network traffic, such
// as updates and sync.
func ChromiumOptions(chromiumPath, userDataDir string) []chromedp.ExecAllocatorOption {
	if chromiumPath == "" {
		chromiumPath = DefaultChromiumPath
	}
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userDataDir),
	}
}

// StartBrowser serves the page, starts Chromium and opens the page. Close
// stops both.
func StartBrowser(ctx context.Context, cfg BrowserConfig) (*Browser, error) {
	if cfg.ChromiumPath == "" {
		cfg.ChromiumPath = DefaultChromiumPath
	}
	if cfg.UserDataDir == "" {
		return nil, errors.New("start browser: UserDataDir is empty: pass a fresh directory")
	}
	b := &Browser{files: map[string][]byte{
		"/m3ae.wasm":    cfg.Module,
		"/wasm_exec.js": cfg.WasmExecJS,
	}}
	for _, name := range []string{"index.html", "worker.js"} {
		data, err := page.ReadFile("page/" + name)
		if err != nil {
			return nil, err
		}
		b.files["/"+name] = data
	}
	b.files["/"] = b.files["/index.html"]

	listener, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start browser: listen on 127.0.0.1: %w", err)
	}
	b.server = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.server.Listener = listener
	b.server.Start()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		ChromiumOptions(cfg.ChromiumPath, cfg.UserDataDir)...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	b.tab = tab
	b.cancel = []context.CancelFunc{cancelTab, cancelAlloc}

	// The first Run starts Chromium, which then lives as long as the
	// context of that call, so it runs on the tab's own context, and ctx
	// stops the whole browser only if the start does not finish in time.
	stop := context.AfterFunc(ctx, b.Close)
	err = chromedp.Do(tab, chromedp.Navigate(b.server.URL+"/"))
	if !stop() || err != nil {
		b.Close()
		return nil, fmt.Errorf("start browser: open the page: %w", errors.Join(err, ctx.Err()))
	}
	return b, nil
}

// runTab runs action in the tab until it finishes or ctx is done.
func runTab[T any](ctx context.Context, b *Browser, action chromedp.Action[T]) (T, error) {
	tab, cancel := context.WithCancel(b.tab)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	value, err := chromedp.Run(tab, action)
	if ctx.Err() != nil {
		return value, ctx.Err()
	}
	return value, err
}

func (b *Browser) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	data, ok := b.files[r.URL.Path]
	b.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, ".wasm"):
		w.Header().Set("Content-Type", "application/wasm")
	case strings.HasSuffix(r.URL.Path, ".js"):
		w.Header().Set("Content-Type", "text/javascript")
	case r.URL.Path == "/" || strings.HasSuffix(r.URL.Path, ".html"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// Close stops Chromium and the server.
func (b *Browser) Close() {
	for _, cancel := range b.cancel {
		cancel()
	}
	b.server.Close()
}

// BrowserRun is the reply of one Run.
type BrowserRun struct {
	// LoadMillis is the time m3ae.load took.
	LoadMillis float64
	Results    []BrowserResult
	// Checks maps the name of each API misuse check of worker.js to its
	// outcome, when Run was asked for them.
	Checks map[string]CheckOutcome
}

// BrowserResult is one case's output and the time of each timed call.
type BrowserResult struct {
	Name   string
	Output Output
	Millis []float64
}

// CheckOutcome is the end of one API call: Value is its JSON result, and
// Error the message of its rejection.
type CheckOutcome struct {
	Value string `json:"value"`
	Error string `json:"error"`
}

// browserCase is a Case as the worker reads it, with the size of a pixel
// input.
type browserCase struct {
	Case
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// RunOptions sets how often the worker calls each case.
type RunOptions struct {
	// Warmup calls are made first and not timed.
	Warmup int
	// Repeat is the number of timed calls, at least 1. The output is the
	// last call's.
	Repeat int
	// APIChecks also runs the worker's API misuse checks.
	APIChecks bool
}

// Run loads model in the worker and runs every case.
func (b *Browser) Run(ctx context.Context, model []byte, cases []Case, inputs Inputs, opts RunOptions) (*BrowserRun, error) {
	if opts.Repeat < 1 {
		opts.Repeat = 1
	}
	files := map[string][]byte{"/model": model}
	spec := struct {
		Cases     []browserCase `json:"cases"`
		Warmup    int           `json:"warmup"`
		Repeat    int           `json:"repeat"`
		APIChecks bool          `json:"apiChecks"`
	}{Warmup: opts.Warmup, Repeat: opts.Repeat, APIChecks: opts.APIChecks}
	for _, c := range cases {
		bc := browserCase{Case: c}
		if c.Image != "" {
			files["/inputs/"+c.Image] = inputs[c.Image]
		}
		if c.Image != "" && c.Pixels {
			pixels, err := inputs.Pixels(c.Image)
			if err != nil {
				return nil, fmt.Errorf("case %s: %w", c.Name, err)
			}
			files["/pixels/"+c.Image] = pixels.Pix
			bc.Width, bc.Height = pixels.Rect.Dx(), pixels.Rect.Dy()
		}
		spec.Cases = append(spec.Cases, bc)
	}
	b.mu.Lock()
	for path, data := range files {
		b.files[path] = data
	}
	b.mu.Unlock()

	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	evaluate := chromedp.Evaluate[string]("runSpec("+string(specJSON)+")", chromedp.EvalAwaitPromise)
	reply, err := runTab(ctx, b, evaluate)
	if err != nil {
		return nil, fmt.Errorf("run cases in the worker: %w", err)
	}
	return decodeWorkerReply(reply)
}

// workerReply is the message that worker.js posts. encoding/json decodes
// its base64 strings into the []byte fields.
type workerReply struct {
	OK         bool                    `json:"ok"`
	Error      string                  `json:"error"`
	LoadMillis float64                 `json:"loadMillis"`
	Results    []workerResult          `json:"results"`
	Checks     map[string]CheckOutcome `json:"checks"`
	Released   bool                    `json:"released"`
}

type workerResult struct {
	Name           string                `json:"name"`
	Error          string                `json:"error"`
	Millis         []float64             `json:"millis"`
	Embedding      []byte                `json:"embedding"`
	Reconstruction *workerReconstruction `json:"reconstruction"`
}

type workerImage struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Data   []byte `json:"data"`
}

type workerReconstruction struct {
	ImageMask     []byte       `json:"imageMask"`
	TextMask      []byte       `json:"textMask"`
	Original      *workerImage `json:"original"`
	Masked        *workerImage `json:"masked"`
	Reconstructed *workerImage `json:"reconstructed"`
	PixelPred     []byte       `json:"pixelPred"`
	Tokens        []string     `json:"tokens"`
	Hidden        []bool       `json:"hidden"`
	Predictions   []struct {
		Position   int    `json:"position"`
		Original   string `json:"original"`
		Candidates []struct {
			ID    int32   `json:"id"`
			Token string  `json:"token"`
			Prob  float64 `json:"prob"`
		} `json:"candidates"`
	} `json:"predictions"`
}

func decodeWorkerReply(text string) (*BrowserRun, error) {
	var reply workerReply
	if err := json.Unmarshal([]byte(text), &reply); err != nil {
		return nil, fmt.Errorf("decode the worker's reply: %w", err)
	}
	if !reply.OK {
		return nil, fmt.Errorf("worker failed: %s", reply.Error)
	}
	if !reply.Released {
		return nil, errors.New("worker: m3ae.release(handle) returned false for the loaded model")
	}
	run := &BrowserRun{LoadMillis: reply.LoadMillis, Checks: reply.Checks}
	for _, r := range reply.Results {
		out := Output{Error: r.Error}
		if r.Embedding != nil {
			out.Embedding = float32s(r.Embedding)
		}
		if r.Reconstruction != nil {
			rec, err := r.Reconstruction.decode()
			if err != nil {
				return nil, fmt.Errorf("case %s: %w", r.Name, err)
			}
			out.Reconstruction = rec
		}
		run.Results = append(run.Results, BrowserResult{Name: r.Name, Output: out, Millis: r.Millis})
	}
	return run, nil
}

// decode converts the worker's JSON into the form the other targets
// return. The text fields are nil when the text mask is null, as core
// leaves them nil without text.
func (w *workerReconstruction) decode() (*abi.Reconstruction, error) {
	r := &abi.Reconstruction{
		Masks: core.Masks{Image: bools(w.ImageMask), Text: bools(w.TextMask)},
	}
	if w.Original != nil {
		images := make([]*image.RGBA, 3)
		for i, img := range []*workerImage{w.Original, w.Masked, w.Reconstructed} {
			if img == nil || len(img.Data) != 4*img.Width*img.Height {
				return nil, errors.New("reconstruction images are missing or of the wrong size")
			}
			images[i] = &image.RGBA{Pix: img.Data, Stride: 4 * img.Width, Rect: image.Rect(0, 0, img.Width, img.Height)}
		}
		r.Image = &core.ImageReconstruction{Original: images[0], Masked: images[1], Reconstructed: images[2]}
		r.PixelPred = float32s(w.PixelPred)
	}
	if w.TextMask != nil {
		text := &core.TextReconstruction{Tokens: w.Tokens, Hidden: w.Hidden}
		for _, p := range w.Predictions {
			word := core.WordPrediction{Position: p.Position, Original: p.Original}
			for _, c := range p.Candidates {
				word.Candidates = append(word.Candidates, core.WordCandidate{ID: c.ID, Token: c.Token, Prob: float32(c.Prob)})
			}
			text.Predictions = append(text.Predictions, word)
		}
		r.Text = text
	}
	return r, nil
}

func bools(data []byte) []bool {
	if data == nil {
		return nil
	}
	out := make([]bool, len(data))
	for i, b := range data {
		out[i] = b != 0
	}
	return out
}

func float32s(data []byte) []float32 {
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}
