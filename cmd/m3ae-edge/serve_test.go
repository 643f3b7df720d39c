package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/m3ae-edge/m3ae-edge/www"
)

// testSite is a small page with fake module files.
func testSite() fstest.MapFS {
	file := func(text string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(text)} }
	return fstest.MapFS{
		"index.html":                   file("<!doctype html><title>demo</title>"),
		"app.js":                       file("console.log(1);"),
		"style.css":                    file("body{}"),
		"sw.js":                        file("// service worker"),
		www.ModuleFile:                 file("\x00asm\x01\x00\x00\x00"),
		www.WasmExecFile:               file("// wasm_exec"),
		"gallery/test.jsonl":           file(`{"image":"images/a.png"}`),
		"gallery/images/a.png":         file("\x89PNG"),
		"gallery/NOTICE.md":            file("# notice"),
		"gallery/LICENSES/x.LICENSE":   file("licence"),
		"gallery/LICENSES/Apache.txt":  file("licence"),
		"gallery/.hidden":              file("secret"),
		"data.bin":                     file("\x01\x02"),
		"gallery/images/photo.jpg":     file("\xff\xd8\xff"),
		"gallery/images/nested/b.jpeg": file("\xff\xd8\xff"),
	}
}

func newTestHandler(t *testing.T) (http.Handler, *servedModel) {
	t.Helper()
	model := newServedModel([]byte("model bytes"), "tiny model.safetensors")
	return newDemoHandler(testSite(), model, slog.New(slog.DiscardHandler)), model
}

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestServeHandlerContentTypes(t *testing.T) {
	h, _ := newTestHandler(t)
	tests := []struct {
		path, contentType, body string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html><title>demo</title>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html><title>demo</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "console.log(1);"},
		{"/sw.js", "text/javascript; charset=utf-8", "// service worker"},
		{"/style.css", "text/css; charset=utf-8", "body{}"},
		{"/m3ae.wasm", "application/wasm", "\x00asm\x01\x00\x00\x00"},
		{"/gallery/test.jsonl", "text/plain; charset=utf-8", `{"image":"images/a.png"}`},
		{"/gallery/images/a.png", "image/png", "\x89PNG"},
		{"/gallery/images/photo.jpg", "image/jpeg", "\xff\xd8\xff"},
		{"/gallery/images/nested/b.jpeg", "image/jpeg", "\xff\xd8\xff"},
		{"/gallery/NOTICE.md", "text/plain; charset=utf-8", "# notice"},
		{"/gallery/LICENSES/x.LICENSE", "text/plain; charset=utf-8", "licence"},
		{"/gallery/LICENSES/Apache.txt", "text/plain; charset=utf-8", "licence"},
		{"/data.bin", "application/octet-stream", "\x01\x02"},
	}
	for _, tt := range tests {
		resp := get(t, h, http.MethodGet, tt.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tt.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tt.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, got, tt.contentType)
		}
		if got := resp.Header.Get("Cache-Control"); got != revalidateCacheControl {
			t.Errorf("GET %s: Cache-Control %q, want %q", tt.path, got, revalidateCacheControl)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tt.path, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "'wasm-unsafe-eval'") {
			t.Errorf("GET %s: Content-Security-Policy %q lacks 'wasm-unsafe-eval'", tt.path, got)
		}
		if got := body(t, resp); got != tt.body {
			t.Errorf("GET %s: body %q, want %q", tt.path, got, tt.body)
		}
	}
}

func TestServeHandlerRevalidates(t *testing.T) {
	h, _ := newTestHandler(t)
	first := get(t, h, http.MethodGet, "/m3ae.wasm", nil)
	etag := first.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
		t.Fatalf("ETag %q, want 32 quoted hex digits", etag)
	}
	again := get(t, h, http.MethodGet, "/m3ae.wasm", map[string]string{"If-None-Match": etag})
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: status %d, want 304", again.StatusCode)
	}
	if got := body(t, again); got != "" {
		t.Errorf("GET with If-None-Match: body %q, want none", got)
	}
	other := get(t, h, http.MethodGet, "/app.js", nil)
	if other.Header.Get("ETag") == etag {
		t.Errorf("app.js and m3ae.wasm share the ETag %s", etag)
	}
}

func TestServeHandlerModel(t *testing.T) {
	h, model := newTestHandler(t)
	resp := get(t, h, http.MethodGet, modelInfoPath, nil)
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", modelInfoPath, got)
	}
	if got := resp.Header.Get("Cache-Control"); got != revalidateCacheControl {
		t.Errorf("GET %s: Cache-Control %q, want %q", modelInfoPath, got, revalidateCacheControl)
	}
	var info modelInfo
	if err := json.Unmarshal([]byte(body(t, resp)), &info); err != nil {
		t.Fatal(err)
	}
	want := modelInfo{
		Name:   "tiny model.safetensors",
		URL:    "model/" + model.sha256[:modelHashChars] + "/tiny%20model.safetensors",
		Bytes:  len("model bytes"),
		SHA256: model.sha256,
	}
	if info != want {
		t.Errorf("GET %s = %+v, want %+v", modelInfoPath, info, want)
	}

	modelURL := "/" + info.URL
	resp = get(t, h, http.MethodGet, modelURL, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", modelURL, resp.StatusCode)
	}
	if got := body(t, resp); got != "model bytes" {
		t.Errorf("GET %s: body %q, want the model file", modelURL, got)
	}
	if got := resp.Header.Get("Cache-Control"); got != immutableCacheControl {
		t.Errorf("GET %s: Cache-Control %q, want %q", modelURL, got, immutableCacheControl)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("GET %s: Content-Type %q, want application/octet-stream", modelURL, got)
	}
	if got := resp.Header.Get("Content-Length"); got != "11" {
		t.Errorf("GET %s: Content-Length %q, want 11, which the page's progress bar needs", modelURL, got)
	}
	etag := resp.Header.Get("ETag")
	if again := get(t, h, http.MethodGet, modelURL, map[string]string{"If-None-Match": etag}); again.StatusCode != http.StatusNotModified {
		t.Errorf("GET %s with If-None-Match %s: status %d, want 304", modelURL, etag, again.StatusCode)
	}
	if head := get(t, h, http.MethodHead, modelURL, nil); head.StatusCode != http.StatusOK || body(t, head) != "" {
		t.Errorf("HEAD %s: status %d, want 200 with no body", modelURL, head.StatusCode)
	}
	if ranged := get(t, h, http.MethodGet, modelURL, map[string]string{"Range": "bytes=6-"}); body(t, ranged) != "bytes" {
		t.Errorf("GET %s with Range bytes=6-: status %d, want 206 with %q", modelURL, ranged.StatusCode, "bytes")
	}

	for _, path := range []string{
		"/model/0123456789abcdef/tiny%20model.safetensors", // another model's hash
		"/model/" + model.sha256[:modelHashChars] + "/other.safetensors",
		"/model/",
	} {
		if resp := get(t, h, http.MethodGet, path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestServeHandlerNotFound(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, path := range []string{
		"/missing.js",
		"/gallery",
		"/gallery/",
		"/gallery/.hidden",
		"/.git/config",
		"/../serve.go",
		"/gallery/../../serve.go",
		"/%2e%2e/serve.go",
		"/gallery/%2e%2e/%2e%2e/serve.go",
		"/..%2fserve.go",
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestServeHandlerRejectsMethods(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		resp := get(t, h, method, "/index.html", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /index.html: status %d, want 405", method, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s /index.html: Allow %q, want \"GET, HEAD\"", method, got)
		}
	}
}

// writeSiteDir writes testSite to a new folder, with or without the
// module files, and returns its path.
func writeSiteDir(t *testing.T, withModule bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	site := testSite()
	if !withModule {
		delete(site, www.ModuleFile)
		delete(site, www.WasmExecFile)
	}
	if err := os.CopyFS(dir, site); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServeWWWDirStaysInside links a file outside the --www folder into
// it and checks that the server does not follow the link.
func TestServeWWWDirStaysInside(t *testing.T) {
	dir := writeSiteDir(t, true)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link.txt")); err != nil {
		t.Skipf("symbolic links unsupported here: %v", err)
	}
	site, _, err := openSite(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := newDemoHandler(site, newServedModel([]byte("m"), "m.safetensors"), slog.New(slog.DiscardHandler))
	resp := get(t, h, http.MethodGet, "/link.txt", nil)
	if got := body(t, resp); strings.Contains(got, "secret") {
		t.Errorf("GET /link.txt served the file outside the folder: status %d", resp.StatusCode)
	}
}

func TestServeCommandRejects(t *testing.T) {
	dir := t.TempDir()
	badModel, _ := writeBadFiles(t, dir)
	absent := filepath.Join(dir, "absent")
	built := writeSiteDir(t, true)
	unbuilt := writeSiteDir(t, false)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"absent model", []string{"--www", built, "--model", absent}, "--model " + absent + ": file not found"},
		{"bad model", []string{"--www", built, "--model", badModel}, "--model " + badModel + ": invalid model file"},
		{"absent www", []string{"--www", absent}, "--www " + absent + ":"},
		{"www without index.html", []string{"--www", dir}, "--www " + dir + ": index.html not found"},
		{"www without module", []string{"--www", unbuilt}, "browser module not built"},
		{"www without module names make demo", []string{"--www", unbuilt}, "run `make demo`"},
		{"bad address", []string{"--www", built, "--addr", "127.0.0.1:99999"}, "--addr 127.0.0.1:99999:"},
		{"busy address", []string{"--www", built, "--addr", busy.Addr().String()}, "pick a free port"},
		{"arguments", []string{"extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"serve"}, tt.args...)...)
			if err == nil {
				t.Fatalf("m3ae-edge serve %v succeeded, want an error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("m3ae-edge serve %v error = %q, want it to contain %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestServeEmbeddedPage checks the embedded page: without the built
// module, serve must name `make demo`; with it, index.html and the module
// must be there.
func TestServeEmbeddedPage(t *testing.T) {
	site := www.Files()
	for _, name := range []string{"index.html", "app.js", "worker.js", "sw.js", "style.css", "gallery/test.jsonl", "gallery/NOTICE.md"} {
		if _, err := site.Open(name); err != nil {
			t.Errorf("embedded page lacks %s: %v", name, err)
		}
	}
	if err := www.CheckBuilt(site); err != nil {
		_, _, err := openSite("")
		if err == nil || !strings.Contains(err.Error(), "run `make demo`") {
			t.Errorf("serve without a built module: error %v, want one that names make demo", err)
		}
		if !errors.Is(err, www.ErrNotBuilt) {
			t.Errorf("serve without a built module: error %v, want www.ErrNotBuilt", err)
		}
	}
}

// TestServeCommandServesAndStops runs serve on a free port, fetches the
// page and the default model, and stops it as SIGINT would.
func TestServeCommandServesAndStops(t *testing.T) {
	server := startServe(t, "--www", writeSiteDir(t, true), "--addr", "127.0.0.1:0", "--log-level", "debug")

	resp, err := http.Get(server.url + "model.json")
	if err != nil {
		t.Fatal(err)
	}
	var info modelInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if info.Name != modelName("") {
		t.Errorf("model.json name %q, want the default model's %q", info.Name, modelName(""))
	}
	resp, err = http.Get(server.url + info.URL)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != info.Bytes || !bytes.Equal(data[:8], readDefaultModelPrefix(t)) {
		t.Errorf("GET %s: %d bytes, want the %d-byte default model", info.URL, len(data), info.Bytes)
	}

	server.stop(t)
	if _, err := http.Get(server.url); err == nil {
		t.Errorf("GET %s succeeded after the server stopped", server.url)
	}
	for _, want := range []string{"msg=\"serving the demo\"", "msg=request method=GET path=/model.json status=200", "msg=stopped"} {
		if !strings.Contains(server.logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, server.logs)
		}
	}
}

func readDefaultModelPrefix(t *testing.T) []byte {
	t.Helper()
	data, err := readModel("--model", "")
	if err != nil {
		t.Fatal(err)
	}
	return data[:8]
}

func TestServeShutdownWaitsForRequests(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveUntilDone(ctx, server, listener, slog.New(slog.DiscardHandler)) }()

	reply := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + listener.Addr().String() + "/")
		if err != nil {
			reply <- err.Error()
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		reply <- string(data)
	}()
	<-started
	cancel()
	if got := <-reply; got != "done" {
		t.Errorf("request open at shutdown got %q, want its full reply \"done\"", got)
	}
	if err := <-served; err != nil {
		t.Errorf("serveUntilDone = %v, want nil after a clean shutdown", err)
	}
}

func TestPageURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/"},
		{"[::]:9000", "http://127.0.0.1:9000/"},
		{"[::1]:9000", "http://[::1]:9000/"},
		{"192.168.1.5:80", "http://192.168.1.5:80/"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageURL(addr); got != tt.want {
			t.Errorf("pageURL(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
