package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/m3ae-edge/m3ae-edge/analysis"
	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
	"github.com/m3ae-edge/m3ae-edge/www"
)

// chromiumPath is the browser executable that Debian's chromium package
// installs.
const chromiumPath = "/usr/bin/chromium"

// demoGalleryImage is the gallery emoji that the test reconstructs, and
// demoGalleryCaption its caption.
const (
	demoGalleryImage   = "gallery/images/google/1f62c.png"
	demoGalleryCaption = "grimacing face"
)

// syncBuffer is a bytes.Buffer that a command and the test may use at
// once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireChromium skips the test when Chromium is not installed, unless
// M3AE_REQUIRE_BROWSER is 1, and in -short mode.
func requireChromium(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the browser test builds the module and runs Chromium")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("M3AE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s not found and M3AE_REQUIRE_BROWSER=1: install the chromium package", chromiumPath)
		}
		t.Skipf("%s not found: install chromium to run the browser test, or set M3AE_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
}

// buildDemoSite writes the embedded page to a new folder with both flavors
// of the module built from this tree, m3ae.wasm with scalar kernels and
// m3ae-simd.wasm with SIMD128 ones, which Chromium loads, and their
// wasm_exec.js. So the test needs no `make demo`, and a module left in
// www/static by an earlier one never runs in its place.
func buildDemoSite(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "www")
	if err := os.CopyFS(dir, www.Files()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{www.ModuleFile, www.SIMDModuleFile, www.WasmExecFile} {
		os.Remove(filepath.Join(dir, name))
	}
	if err := harness.BuildBrowserFlavor(ctx, harness.ScalarFlavor, filepath.Join(dir, www.ModuleFile)); err != nil {
		t.Fatal(err)
	}
	if err := harness.BuildBrowserFlavor(ctx, harness.WasmSIMDFlavor, filepath.Join(dir, www.SIMDModuleFile)); err != nil {
		t.Fatal(err)
	}
	wasmExec, err := harness.WasmExecJSFlavor(ctx, harness.ScalarFlavor)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, www.WasmExecFile), wasmExec, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveProcess is "m3ae-edge serve" running in the test process.
type serveProcess struct {
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs "m3ae-edge serve" with args until stop and returns once
// it has printed its URL.
func startServe(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, logs := &syncBuffer{}, &syncBuffer{}
	p := &serveProcess{logs: logs, cancel: cancel, done: make(chan error, 1)}
	root := newRootCommand()
	root.SetArgs(append([]string{"serve"}, args...))
	root.SetOut(stdout)
	root.SetErr(logs)
	go func() { p.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { p.stop(t) })

	urlPattern := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := urlPattern.FindStringSubmatch(stdout.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve exited before printing its URL: %v\nlogs:\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve printed no URL in 30 s; stdout %q\nlogs:\n%s", stdout, logs)
	return nil
}

// stop cancels the command's context, as SIGINT does, and waits for a
// clean shutdown.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("serve after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("serve did not stop within 10 s of its context ending")
	}
}

// requests returns the logged requests whose path starts with prefix, as
// "METHOD PATH STATUS" strings.
func (p *serveProcess) requests(prefix string) []string {
	line := regexp.MustCompile(`msg=request method=(\S+) path=(\S+) status=(\d+)`)
	var out []string
	for _, m := range line.FindAllStringSubmatch(p.logs.String(), -1) {
		if strings.HasPrefix(m[2], prefix) {
			out = append(out, m[1]+" "+m[2]+" "+m[3])
		}
	}
	return out
}

// startChromium starts headless Chromium with a fresh profile and the
// harness's flags, in a window large enough for the screenshot, and returns
// a tab context.
func startChromium(ctx context.Context, t *testing.T) context.Context {
	t.Helper()
	options := append(harness.ChromiumOptions(chromiumPath, t.TempDir()), chromedp.WindowSize(1200, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, options...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return tab
}

// pageState is the model status that the page shows.
type pageState struct {
	// State is "ready" or "error".
	State string
	// Source is where the model came from: "network" or "cache".
	Source string
	// Error is the status line's error message.
	Error string
	// Module is the module file that the page's main worker runs.
	Module string
}

// waitForPageState waits until the page has loaded the model or failed to.
func waitForPageState(ctx context.Context, t *testing.T) pageState {
	t.Helper()
	poll := chromedp.Poll[chromedp.Void](`document.body.dataset.state !== "loading"`, chromedp.WithPollingTimeout(90*time.Second))
	if err := chromedp.Do(ctx, poll); err != nil {
		t.Fatalf("wait for the model: %v", err)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](`({State: document.body.dataset.state,
	    Source: document.body.dataset.modelSource || "",
	    Module: document.body.dataset.module || "",
	    Error: document.getElementById("status-error").textContent})`))
	if err != nil {
		t.Fatalf("read the page state: %v", err)
	}
	return page
}

// waitForModel waits until the page has loaded the model, or fails with
// the page's error, and returns where the model came from.
func waitForModel(ctx context.Context, t *testing.T) string {
	t.Helper()
	page := waitForPageState(ctx, t)
	if page.State != "ready" {
		t.Fatalf("page state %q, want ready; error: %s", page.State, page.Error)
	}
	// Chromium supports WebAssembly SIMD, so the page must pick the SIMD
	// flavor that buildDemoSite built.
	if page.Module != www.SIMDModuleFile {
		t.Errorf("page runs %q, want %s", page.Module, www.SIMDModuleFile)
	}
	return page.Source
}

// pageResult is what the page shows for one reconstruction.
type pageResult struct {
	Pixels        int      `json:"pixels"`
	MaskedDiffers int      `json:"maskedDiffers"`
	Tokens        []string `json:"tokens"`
	Hidden        int      `json:"hidden"`
	Predicted     []string `json:"predicted"`
	Neighbours    []string `json:"neighbours"`
}

// readResultScript reads the canvases and lists of the output section.
const readResultScript = `(() => {
  const pixels = (id) => {
    const canvas = document.getElementById(id);
    return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const masked = pixels("masked"), reconstructed = pixels("reconstructed");
  let differs = 0;
  for (let i = 0; i < masked.length; i += 4) {
    if (masked[i] !== reconstructed[i] || masked[i + 1] !== reconstructed[i + 1] || masked[i + 2] !== reconstructed[i + 2]) {
      differs++;
    }
  }
  const texts = (selector) => Array.from(document.querySelectorAll(selector), (e) => e.textContent.trim());
  return {
    pixels: masked.length / 4,
    maskedDiffers: differs,
    tokens: texts("#tokens li"),
    hidden: document.querySelectorAll("#tokens li.hidden").length,
    predicted: texts("#predictions .candidates .word"),
    neighbours: texts("#neighbours li"),
  };
})()`

// reconstructGalleryImage picks the test's gallery emoji, waits for its
// reconstruction and nearest captions and returns what the page shows.
func reconstructGalleryImage(ctx context.Context, t *testing.T) pageResult {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#gallery button[title=%q]`, demoGalleryCaption))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#output[data-image=%q] #output-images`, demoGalleryImage))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#neighbours-output[data-image=%q]`, demoGalleryImage))),
	)
	if err != nil {
		t.Fatalf("reconstruct %s in the page: %v", demoGalleryImage, err)
	}
	result, err := chromedp.Run(ctx, chromedp.Evaluate[pageResult](readResultScript))
	if err != nil {
		t.Fatalf("read the reconstruction of %s: %v", demoGalleryImage, err)
	}
	return result
}

func checkPageResult(t *testing.T, visit string, got pageResult) {
	t.Helper()
	if got.Pixels == 0 {
		t.Errorf("%s: the reconstruction canvas is empty", visit)
	}
	if got.MaskedDiffers == 0 {
		t.Errorf("%s: the reconstruction equals the masked input in all %d pixels", visit, got.Pixels)
	}
	if got.Hidden == 0 {
		t.Errorf("%s: no caption token is marked hidden; tokens %q", visit, got.Tokens)
	}
	if len(got.Predicted) != 5*got.Hidden {
		t.Errorf("%s: %d predicted words for %d hidden tokens, want 5 each", visit, len(got.Predicted), got.Hidden)
	}
	for _, word := range got.Predicted {
		if word == "" {
			t.Errorf("%s: a predicted word is empty: %q", visit, got.Predicted)
			break
		}
	}
	if len(got.Neighbours) != 5 {
		t.Errorf("%s: %d nearest captions, want 5: %q", visit, len(got.Neighbours), got.Neighbours)
	}
}

// TestServeDemoInBrowser runs "m3ae-edge serve" on a free port with the
// default model, opens the page in headless Chromium and reconstructs a
// gallery emoji. It reloads the page and checks that the model came from
// the Cache API without a second download. Then it stops the server and
// checks that the page still works offline, with uploads too. It saves a
// screenshot of the first visit as demo.png in t.ArtifactDir (kept with
// go test -artifacts) and, when M3AE_SCREENSHOT names a file, there too.
func TestServeDemoInBrowser(t *testing.T) {
	requireChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	site := buildDemoSite(ctx, t)
	t.Logf("built the page and module in %v", time.Since(start).Round(time.Millisecond))
	server := startServe(t, "--addr", "127.0.0.1:0", "--www", site, "--log-level", "debug")
	tab := startChromium(ctx, t)

	// First visit: the model is downloaded once.
	start = time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(server.url)); err != nil {
		t.Fatalf("open %s: %v", server.url, err)
	}
	if source := waitForModel(tab, t); source != "network" {
		t.Errorf("first visit: model source %q, want network", source)
	}
	t.Logf("first visit: model ready %v after navigation", time.Since(start).Round(time.Millisecond))
	checkPageResult(t, "first visit", reconstructGalleryImage(tab, t))
	t.Logf("first visit: reconstruction and nearest captions shown %v after navigation", time.Since(start).Round(time.Millisecond))
	gallery := newNativeGallery(t)
	checkOODScore(tab, t, gallery, demoGalleryImage)
	// The out-of-distribution score appears after the reconstruction, so
	// the screenshot waits for it.
	saveScreenshot(tab, t)
	checkAttentionOverlay(tab, t, gallery)
	if err := chromedp.Do(tab, chromedp.Poll[chromedp.Void](`document.body.dataset.offline === "ready"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("wait for the service worker: %v", err)
	}
	if got := server.requests("/model/"); len(got) != 1 {
		t.Fatalf("first visit: model requests %q, want exactly one", got)
	}

	// Second visit: the model comes from the cache.
	start = time.Now()
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if source := waitForModel(tab, t); source != "cache" {
		t.Errorf("second visit: model source %q, want cache", source)
	}
	t.Logf("second visit: model ready %v after reload", time.Since(start).Round(time.Millisecond))
	checkPageResult(t, "second visit", reconstructGalleryImage(tab, t))
	if got := server.requests("/model/"); len(got) != 1 {
		t.Errorf("after the second visit: model requests %q, want only the first visit's", got)
	}
	for _, request := range server.requests("/" + www.ModuleFile) {
		t.Logf("module request: %s", request)
	}

	// Offline: the service worker serves the page and the cache the model.
	server.stop(t)
	start = time.Now()
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatalf("reload with the server stopped: %v", err)
	}
	if source := waitForModel(tab, t); source != "cache" {
		t.Errorf("offline visit: model source %q, want cache", source)
	}
	t.Logf("offline visit: model ready %v after reload", time.Since(start).Round(time.Millisecond))
	checkPageResult(t, "offline visit", reconstructGalleryImage(tab, t))

	checkUploads(tab, t, gallery)
	checkPhoneWidth(tab, t)
	checkFailedDownload(tab, t, server, site)
}

// checkFailedDownload deletes the cached model while the server is
// stopped and reloads the page, which must report the failed download
// and offer a retry. The retry must succeed once serve runs again on the
// same address.
func checkFailedDownload(ctx context.Context, t *testing.T, stopped *serveProcess, site string) {
	t.Helper()
	deleted, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`caches.delete("m3ae-models")`, chromedp.EvalAwaitPromise))
	if err != nil || !deleted {
		t.Fatalf("delete the model cache: deleted %v, error %v", deleted, err)
	}
	// The HTTP cache keeps the model too, since its URL is immutable.
	clearHTTPCache := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, network.ClearBrowserCache, cdp.Empty{})
		return err
	})
	if err := chromedp.Do(ctx, clearHTTPCache); err != nil {
		t.Fatalf("clear the HTTP cache: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload with the server stopped: %v", err)
	}
	page := waitForPageState(ctx, t)
	if page.State != "error" {
		t.Fatalf("page state %q with the server stopped and no cached model, want error", page.State)
	}
	const want = "The model download failed"
	if !strings.Contains(page.Error, want) || !strings.Contains(page.Error, "m3ae-edge serve is running") {
		t.Errorf("download error %q, want %q and a hint to check that m3ae-edge serve is running", page.Error, want)
	}

	addr := strings.TrimSuffix(strings.TrimPrefix(stopped.url, "http://"), "/")
	server := startServe(t, "--addr", addr, "--www", site, "--log-level", "debug")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#retry"))); err != nil {
		t.Fatalf("click Retry: %v", err)
	}
	if source := waitForModel(ctx, t); source != "network" {
		t.Errorf("after Retry: model source %q, want network", source)
	}
	if got := server.requests("/model/"); len(got) != 1 {
		t.Errorf("after Retry: model requests %q, want exactly one", got)
	}
}

// checkUploads uploads a GIF, an empty file, a PNG too large to decode, a
// JPEG photo and a truncated PNG, and checks the page's error messages, the
// photo's reconstruction and out-of-distribution score, and that the
// truncated PNG's error hides them.
func checkUploads(ctx context.Context, t *testing.T, gallery *nativeGallery) {
	t.Helper()
	dir := t.TempDir()
	gif := filepath.Join(dir, "anim.gif")
	if err := os.WriteFile(gif, []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A PNG signature and an IHDR chunk that claims 10000x5000 pixels:
	// the page reads the size from the header and rejects the file before
	// decoding it.
	huge := filepath.Join(dir, "huge.png")
	header := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x27\x10\x00\x00\x13\x88\x08\x02\x00\x00\x00")
	if err := os.WriteFile(huge, header, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.png")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, want string
	}{
		{gif, "anim.gif is a GIF file: the demo reads PNG and JPEG only."},
		{empty, "empty.png is empty (0 bytes)."},
		{huge, "huge.png is 10000 × 5000 pixels (50.0 megapixels); the demo takes images up to 40 megapixels."},
	} {
		err := chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{tt.file}),
			chromedp.WaitVisible(chromedp.CSS("#input-error")),
		)
		if err != nil {
			t.Fatalf("upload %s: %v", filepath.Base(tt.file), err)
		}
		message, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#input-error")))
		if err != nil {
			t.Fatalf("upload %s: %v", filepath.Base(tt.file), err)
		}
		if !strings.Contains(message, tt.want) {
			t.Errorf("upload %s: message %q, want it to contain %q", filepath.Base(tt.file), message, tt.want)
		}
	}

	photo, err := filepath.Abs(filepath.Join("..", "..", "testdata", "images", "photo512x384.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{photo}),
		chromedp.WaitVisible(chromedp.CSS(`#output[data-image^="upload:photo512x384.jpg"] #output-images`)),
		chromedp.WaitVisible(chromedp.CSS(`#neighbours-output[data-image^="upload:photo512x384.jpg"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("#input-error")),
	)
	if err != nil {
		t.Fatalf("upload %s: %v", photo, err)
	}
	result, err := chromedp.Run(ctx, chromedp.Evaluate[pageResult](readResultScript))
	if err != nil {
		t.Fatalf("read the reconstruction of %s: %v", photo, err)
	}
	checkPageResult(t, "uploaded photo", result)
	checkOODScore(ctx, t, gallery, "upload:photo512x384.jpg")

	// A PNG cut after its header passes the page's checks and fails to
	// decode in the worker. The photo's results must not stay under the
	// error.
	emoji, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "emoji64.png"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.png")
	if err := os.WriteFile(truncated, emoji[:60], 0o644); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{truncated}),
		chromedp.WaitVisible(chromedp.CSS("#output-error")),
		chromedp.WaitNotVisible(chromedp.CSS("#output-images")),
		chromedp.WaitNotVisible(chromedp.CSS("#neighbours-output")),
		chromedp.WaitNotVisible(chromedp.CSS("#ood-output")),
	)
	if err != nil {
		t.Fatalf("upload %s: %v", truncated, err)
	}
}

// checkPhoneWidth narrows the viewport to a phone's 390 CSS pixels and
// checks that nothing scrolls sideways. It saves demo-phone.png in
// t.ArtifactDir.
func checkPhoneWidth(ctx context.Context, t *testing.T) {
	t.Helper()
	const phoneWidth = 390
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, 844)); err != nil {
		t.Fatalf("emulate a phone viewport: %v", err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatalf("read the page width: %v", err)
	}
	if width > phoneWidth {
		t.Errorf("page is %d CSS pixels wide in a %d-pixel viewport: it scrolls sideways on phones", width, phoneWidth)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "demo-phone.png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// saveScreenshot writes a PNG of the whole page to t.ArtifactDir and to
// the file that M3AE_SCREENSHOT names, if any.
func saveScreenshot(ctx context.Context, t *testing.T) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	paths := []string{filepath.Join(t.ArtifactDir(), "demo.png")}
	if extra := os.Getenv("M3AE_SCREENSHOT"); extra != "" {
		paths = append(paths, extra)
	}
	for _, path := range paths {
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Errorf("write the screenshot: %v", err)
			continue
		}
		t.Logf("wrote a %d-byte screenshot to %s", len(png), path)
	}
}

// nativeGallery is the demo gallery embedded natively with the default
// model, which the page's module must match bit for bit.
type nativeGallery struct {
	pipeline   *core.Pipeline
	images     []string    // paths under the page's root, in gallery order
	embeddings [][]float32 // CLS embeddings, in gallery order
	reference  *analysis.ReferenceSet
}

// newNativeGallery embeds the gallery's images alone with CLS pooling, as
// the page does, and fits the page's reference set to them.
func newNativeGallery(t *testing.T) *nativeGallery {
	t.Helper()
	pipeline, err := loadPipeline("")
	if err != nil {
		t.Fatal(err)
	}
	site := www.Files()
	index, err := fs.ReadFile(site, "gallery/test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	g := &nativeGallery{pipeline: pipeline}
	for _, line := range strings.Split(strings.TrimSpace(string(index)), "\n") {
		var entry struct{ Image string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("gallery/test.jsonl: %v", err)
		}
		path := "gallery/" + entry.Image
		data, err := fs.ReadFile(site, path)
		if err != nil {
			t.Fatal(err)
		}
		g.images = append(g.images, path)
		g.embeddings = append(g.embeddings, g.embed(t, data))
	}
	if g.reference, err = analysis.NewReferenceSet(g.embeddings); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *nativeGallery) embed(t *testing.T, data []byte) []float32 {
	t.Helper()
	img, err := core.DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	embedding, err := g.pipeline.Embed(img, "", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	return embedding
}

// reading returns the out-of-distribution reading that the page should
// show for the input whose key starts with imageKey: a gallery path or
// "upload:" and the name of a file in testdata/images.
func (g *nativeGallery) reading(t *testing.T, imageKey string) analysis.Reading {
	t.Helper()
	if name, ok := strings.CutPrefix(imageKey, "upload:"); ok {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		reading, err := g.reference.Score(g.embed(t, data))
		if err != nil {
			t.Fatal(err)
		}
		return reading
	}
	index := slices.Index(g.images, imageKey)
	if index < 0 {
		t.Fatalf("%s is not in the gallery", imageKey)
	}
	reading, err := g.reference.Member(index)
	if err != nil {
		t.Fatal(err)
	}
	return reading
}

// checkOODScore waits for the out-of-distribution score of the input whose
// key starts with imageKey and checks that the page shows the natively
// computed score, to two decimals, with a reading in words.
func checkOODScore(ctx context.Context, t *testing.T, gallery *nativeGallery, imageKey string) {
	t.Helper()
	selector := fmt.Sprintf(`#ood-output[data-image^=%q]`, imageKey)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(selector))); err != nil {
		t.Fatalf("wait for the out-of-distribution score of %s: %v", imageKey, err)
	}
	type pageOOD struct{ Score, Words, Hint string }
	got, err := chromedp.Run(ctx, chromedp.Evaluate[pageOOD](`({
	    Score: document.getElementById("ood-score").textContent,
	    Words: document.getElementById("ood-words").textContent,
	    Hint: document.getElementById("ood-hint").textContent})`))
	if err != nil {
		t.Fatalf("read the out-of-distribution score of %s: %v", imageKey, err)
	}
	score, err := strconv.ParseFloat(got.Score, 64)
	if err != nil || math.IsNaN(score) || score <= 0 {
		t.Errorf("%s: out-of-distribution score %q, want a positive number", imageKey, got.Score)
	}
	want := gallery.reading(t, imageKey)
	if wantText := strconv.FormatFloat(want.Score, 'f', 2, 64); got.Score != wantText {
		t.Errorf("%s: out-of-distribution score %s, want %s as computed natively", imageKey, got.Score, wantText)
	}
	if !strings.Contains(got.Words, "gallery") {
		t.Errorf("%s: reading %q does not compare the score with the gallery", imageKey, got.Words)
	}
	if !strings.Contains(got.Hint, "Ledoit-Wolf") {
		t.Errorf("%s: help text %q does not name the Ledoit-Wolf shrinkage", imageKey, got.Hint)
	}
	t.Logf("%s: out-of-distribution score %s, percentile %.1f: %s", imageKey, got.Score, want.Percentile, got.Words)
}

// pageAttention is what the page draws for the attention switch.
type pageAttention struct {
	OverlayVisible bool      `json:"overlayVisible"`
	Width          int       `json:"width"`
	Height         int       `json:"height"`
	Alpha          []int     `json:"alpha"`
	Tokens         int       `json:"tokens"`
	Tinted         []float64 `json:"tinted"`
	Summary        string    `json:"summary"`
}

const readAttentionScript = `(() => {
  const overlay = document.getElementById("attention-overlay");
  const data = overlay.getContext("2d").getImageData(0, 0, overlay.width, overlay.height).data;
  const alpha = [];
  for (let i = 3; i < data.length; i += 4) {
    alpha.push(data[i]);
  }
  return {
    overlayVisible: !overlay.hidden && overlay.getBoundingClientRect().width > 0,
    width: overlay.width,
    height: overlay.height,
    alpha,
    tokens: document.querySelectorAll("#tokens li").length,
    tinted: Array.from(document.querySelectorAll("#tokens li[data-attention]"), (li) => Number(li.dataset.attention)),
    summary: document.getElementById("attention-summary").textContent,
  };
})()`

// checkAttentionOverlay switches the attention on for the test's gallery
// emoji and checks the overlay against the default model's rollout
// computed natively, the tinted caption tokens and the block selector,
// then switches it off.
func checkAttentionOverlay(ctx context.Context, t *testing.T, gallery *nativeGallery) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#show-attention")),
		chromedp.WaitVisible(chromedp.CSS("#attention-overlay")),
		chromedp.WaitVisible(chromedp.CSS(`#output[data-attention] #attention-summary`)),
	)
	if err != nil {
		t.Fatalf("switch the attention on: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[pageAttention](readAttentionScript))
	if err != nil {
		t.Fatalf("read the attention overlay: %v", err)
	}

	data, err := fs.ReadFile(www.Files(), demoGalleryImage)
	if err != nil {
		t.Fatal(err)
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	native, err := gallery.pipeline.EmbedWithAttention(img, demoGalleryCaption, core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	_, patches, text := native.Attention.ByPosition(native.Attention.Rollout()[:native.Attention.NumTokens()])
	grid := gallery.pipeline.Config().GridSize()

	if !got.OverlayVisible || got.Width != grid || got.Height != grid {
		t.Fatalf("overlay visible %v, %dx%d, want a visible %dx%d canvas", got.OverlayVisible, got.Width, got.Height, grid, grid)
	}
	// The page tints patches and tokens on one scale, up to the largest
	// weight of either.
	maxWeight := float64(max(slices.Max(patches), slices.Max(text)))
	painted := 0
	for n, alpha := range got.Alpha {
		want := math.Round(255 * 0.75 * float64(patches[n]) / maxWeight)
		if math.Abs(float64(alpha)-want) > 1 {
			t.Errorf("overlay opacity of patch %d = %d, want %v from the native rollout", n, alpha, want)
		}
		if alpha > 0 {
			painted++
		}
	}
	if painted == 0 {
		t.Errorf("the overlay is empty: no patch has a visible colour")
	}
	if len(got.Tinted) != got.Tokens || got.Tokens != len(native.Tokens) {
		t.Errorf("%d of %d caption tokens tinted, want all %d", len(got.Tinted), got.Tokens, len(native.Tokens))
	}
	for i, weight := range got.Tinted {
		if i < len(native.Tokens) && math.Abs(weight-float64(text[i])) > 1e-6 {
			t.Errorf("token %d attention %v, want %v from the native rollout", i, weight, text[i])
		}
	}
	if !strings.Contains(got.Summary, "the rollout over all blocks") {
		t.Errorf("attention summary %q does not name the rollout", got.Summary)
	}

	// One block, then the switch off again.
	pickFirstBlock := `(() => {
	    const select = document.getElementById("attention-layer");
	    select.value = "0";
	    select.dispatchEvent(new Event("change"));
	    return document.getElementById("attention-summary").textContent;
	})()`
	summary, err := chromedp.Run(ctx, chromedp.Evaluate[string](pickFirstBlock))
	if err != nil {
		t.Fatalf("pick block 1: %v", err)
	}
	if !strings.Contains(summary, "block 1") {
		t.Errorf("attention summary after picking block 1: %q", summary)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#show-attention")),
		chromedp.WaitNotVisible(chromedp.CSS("#attention-overlay")),
	)
	if err != nil {
		t.Fatalf("switch the attention off: %v", err)
	}
	tinted, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#tokens li[data-attention]").length`))
	if err != nil || tinted != 0 {
		t.Errorf("after switching the attention off, %d tokens stay tinted (error %v)", tinted, err)
	}
}

// workerProbeScript runs in the page before app.js. It wraps the Worker
// constructor, so the test can count the workers that the page starts and
// terminates, and it records console warnings. With #fail-gallery-workers
// in the URL, every worker after the page's first gets a script URL that the
// server does not have, so each gallery worker fails to start.
const workerProbeScript = `(() => {
  const PageWorker = window.Worker;
  const workers = [];
  window.testWorkers = workers;
  window.Worker = class extends PageWorker {
    constructor(url, options) {
      const failing = workers.length > 0 && location.hash === "#fail-gallery-workers";
      super(failing ? "missing-worker.js" : url, options);
      this.terminated = false;
      workers.push(this);
    }
    terminate() {
      this.terminated = true;
      super.terminate();
    }
  };
  window.testWarnings = [];
  const warn = console.warn.bind(console);
  console.warn = (...args) => {
    window.testWarnings.push(args.map(String).join(" "));
    warn(...args);
  };
})()`

// pageGallery is how the page embedded its gallery.
type pageGallery struct {
	// Workers is the number of workers that embedded at least one image,
	// and Millis the time from the start of the embedding to the last
	// result, as the neighbours section's data attributes give them.
	Workers int `json:"workers"`
	Millis  int `json:"millis"`
	// Timing is the sentence that the page shows under the neighbours.
	Timing string `json:"timing"`
	// Cores is navigator.hardwareConcurrency.
	Cores int `json:"cores"`
	// Started counts the workers that the page constructed, and Running
	// those that it has not terminated.
	Started  int      `json:"started"`
	Running  int      `json:"running"`
	Warnings []string `json:"warnings"`
	// Embeddings are the page's gallery embeddings, in gallery order.
	Embeddings [][]float64 `json:"embeddings"`
}

// readGalleryScript reads pageGallery from the page. The embeddings come
// from the page's state, which app.js declares at the top level.
const readGalleryScript = `(() => {
  const section = document.getElementById("neighbours-output");
  return {
    workers: Number(section.dataset.galleryWorkers),
    millis: Number(section.dataset.galleryMillis),
    timing: document.getElementById("gallery-timing").textContent,
    cores: navigator.hardwareConcurrency,
    started: testWorkers.length,
    running: testWorkers.filter((worker) => !worker.terminated).length,
    warnings: testWarnings,
    embeddings: state.gallery.map((entry) => Array.from(entry.embedding)),
  };
})()`

// embedGalleryInPage opens url, waits until the page has embedded its
// gallery and returns the page's record of it.
func embedGalleryInPage(ctx context.Context, t *testing.T, url string) pageGallery {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	waitForModel(ctx, t)
	done := `document.getElementById("neighbours-output").dataset.galleryMillis !== undefined ||
	    !document.getElementById("input-error").hidden`
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](done, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("%s: wait for the gallery embeddings: %v", url, err)
	}
	message, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("input-error").hidden ? "" : document.getElementById("input-error").textContent`))
	if err != nil {
		t.Fatalf("%s: read the input error: %v", url, err)
	}
	if message != "" {
		t.Fatalf("%s: the page reports %q", url, message)
	}
	gallery, err := chromedp.Run(ctx, chromedp.Evaluate[pageGallery](readGalleryScript))
	if err != nil {
		t.Fatalf("%s: read the gallery embeddings: %v", url, err)
	}
	wantTiming := fmt.Sprintf("in %d ms on %d Web Worker", gallery.Millis, gallery.Workers)
	if !strings.Contains(gallery.Timing, wantTiming) {
		t.Errorf("%s: gallery timing %q, want it to contain %q", url, gallery.Timing, wantTiming)
	}
	return gallery
}

// checkGalleryEmbeddings fails unless the page's gallery embeddings equal
// the native ones bit for bit, image by image in gallery order.
func checkGalleryEmbeddings(t *testing.T, visit string, got pageGallery, native *nativeGallery) {
	t.Helper()
	if len(got.Embeddings) != len(native.embeddings) {
		t.Errorf("%s: %d gallery embeddings, want %d", visit, len(got.Embeddings), len(native.embeddings))
		return
	}
	for i, want := range native.embeddings {
		values := got.Embeddings[i]
		if len(values) != len(want) {
			t.Errorf("%s: embedding of %s has %d values, want %d", visit, native.images[i], len(values), len(want))
			continue
		}
		for j := range want {
			// A value that is no float32 cannot come from the module.
			if float64(float32(values[j])) != values[j] || math.Float32bits(float32(values[j])) != math.Float32bits(want[j]) {
				t.Errorf("%s: embedding of %s differs from the native one at %d: %v, want %v", visit, native.images[i], j, values[j], want[j])
				break
			}
		}
	}
}

// TestServeDemoGalleryWorkers embeds the demo's gallery with the main
// worker alone (?workers=1), with the default pool of gallery workers,
// with gallery workers that fail to start and with an invalid ?workers.
// Each time the embeddings must equal the native ones bit for bit and the
// page must terminate its gallery workers afterwards. The default pool
// must spread the gallery over at least two workers where Chromium
// reports two or more cores. The test logs both timings.
func TestServeDemoGalleryWorkers(t *testing.T) {
	requireChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	site := buildDemoSite(ctx, t)
	server := startServe(t, "--addr", "127.0.0.1:0", "--www", site, "--log-level", "debug")
	tab := startChromium(ctx, t)
	addProbe := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: workerProbeScript})
		return err
	})
	if err := chromedp.Do(tab, addProbe); err != nil {
		t.Fatalf("add the worker probe: %v", err)
	}
	native := newNativeGallery(t)

	// The first visit downloads the model into the Cache API, from which
	// the later visits and their gallery workers read it.
	first := embedGalleryInPage(tab, t, server.url+"?workers=1")
	checkGalleryEmbeddings(t, "first visit, ?workers=1", first, native)

	pool := embedGalleryInPage(tab, t, server.url)
	single := embedGalleryInPage(tab, t, server.url+"?workers=1")
	t.Logf("%d gallery emoji embedded in %d ms by 1 worker and in %d ms by %d of %d workers; Chromium reports %d cores",
		len(native.images), single.Millis, pool.Millis, pool.Workers, pool.Started, pool.Cores)
	checkGalleryEmbeddings(t, "?workers=1", single, native)
	checkGalleryEmbeddings(t, "default workers", pool, native)
	if single.Started != 1 {
		t.Errorf("?workers=1: the page started %d workers, want the main worker alone", single.Started)
	}
	if single.Workers != 1 {
		t.Errorf("?workers=1: gallery embedded by %d workers, want the main worker alone", single.Workers)
	}
	wantStarted := min(max(pool.Cores, 2), 4)
	if pool.Started != wantStarted {
		t.Errorf("default workers: the page started %d workers with %d cores reported, want %d", pool.Started, pool.Cores, wantStarted)
	}
	if pool.Cores >= 2 && pool.Workers < 2 {
		t.Errorf("default workers: gallery embedded by %d worker with %d cores reported, want at least 2", pool.Workers, pool.Cores)
	}
	if pool.Running != 1 {
		t.Errorf("default workers: %d workers still running after the gallery, want the main worker alone", pool.Running)
	}
	if len(pool.Warnings) != 0 {
		t.Errorf("default workers: console warnings %q, want none", pool.Warnings)
	}
	if got := server.requests("/model/"); len(got) != 1 {
		t.Errorf("model requests %q, want only the first visit's", got)
	}

	// Gallery workers that fail to start leave their share to the main
	// worker, with one console warning for all of them.
	failing := embedGalleryInPage(tab, t, server.url+"?workers=3#fail-gallery-workers")
	checkGalleryEmbeddings(t, "failing gallery workers", failing, native)
	if failing.Started != 3 {
		t.Errorf("failing gallery workers: the page started %d workers, want 3", failing.Started)
	}
	if failing.Workers != 1 {
		t.Errorf("failing gallery workers: gallery embedded by %d workers, want the main worker alone", failing.Workers)
	}
	if failing.Running != 1 {
		t.Errorf("failing gallery workers: %d workers still running after the gallery, want the main worker alone", failing.Running)
	}
	if len(failing.Warnings) != 1 || !strings.Contains(failing.Warnings[0], "Gallery worker") {
		t.Errorf("failing gallery workers: console warnings %q, want one about a gallery worker", failing.Warnings)
	}

	invalid := embedGalleryInPage(tab, t, server.url+"?workers=0")
	checkGalleryEmbeddings(t, "?workers=0", invalid, native)
	if invalid.Started != wantStarted {
		t.Errorf("?workers=0: the page started %d workers, want the default %d", invalid.Started, wantStarted)
	}
	if len(invalid.Warnings) != 1 || !strings.Contains(invalid.Warnings[0], "Ignoring ?workers=0") {
		t.Errorf("?workers=0: console warnings %q, want one that ignores the parameter", invalid.Warnings)
	}
}
