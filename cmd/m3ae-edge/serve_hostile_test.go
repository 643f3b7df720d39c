package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/www"
)

// loadRequests and loadTimeout bound TestServeSurvivesConcurrentLoad.
const (
	loadRequests = 1000
	loadTimeout  = 90 * time.Second
)

// loadRequest is one request of the load test and the status it expects.
type loadRequest struct {
	method, path string
	header       map[string]string
	wantStatus   int
}

// TestServeSurvivesConcurrentLoad starts serve on 127.0.0.1 and sends it
// loadRequests requests at once, each on its own connection: page files,
// model.json, HEAD and Range requests of the model, a few whole model
// downloads, missing paths and rejected methods. Every request must get its
// status, and the server must still serve and stop cleanly afterwards.
func TestServeSurvivesConcurrentLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1000 requests; skipped with -short")
	}
	server := startServe(t, "--www", writeSiteDir(t, true), "--addr", "127.0.0.1:0")
	if !strings.HasPrefix(server.url, "http://127.0.0.1:") {
		t.Fatalf("serve URL %s, want one on 127.0.0.1", server.url)
	}
	info := fetchModelInfo(t, server.url)

	kinds := []loadRequest{
		{http.MethodGet, "/", nil, http.StatusOK},
		{http.MethodGet, "/app.js", nil, http.StatusOK},
		{http.MethodGet, "/m3ae.wasm", nil, http.StatusOK},
		{http.MethodGet, "/model.json", nil, http.StatusOK},
		{http.MethodHead, "/" + info.URL, nil, http.StatusOK},
		{http.MethodGet, "/" + info.URL, map[string]string{"Range": "bytes=0-1023"}, http.StatusPartialContent},
		{http.MethodGet, "/missing-" + strings.Repeat("x", 4000), nil, http.StatusNotFound},
		{http.MethodGet, "/../../etc/passwd", nil, http.StatusNotFound},
		{http.MethodPost, "/index.html", nil, http.StatusMethodNotAllowed},
	}
	// One whole download of the 9 MB model in 100 requests keeps the
	// transfer small.
	modelDownload := loadRequest{http.MethodGet, "/" + info.URL, nil, http.StatusOK}

	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	var firstFailure sync.Once
	for i := range loadRequests {
		req := kinds[i%len(kinds)]
		if i%100 == 0 {
			req = modelDownload
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := sendLoadRequest(ctx, client, server.url, req); err != nil {
				failures.Add(1)
				firstFailure.Do(func() { t.Errorf("request %d: %v", i, err) })
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	t.Logf("%d requests in %v", loadRequests, elapsed.Round(time.Millisecond))
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed", n, loadRequests)
	}

	// The server still serves, and the 4xx log lines stayed within the
	// rate limit.
	if err := sendLoadRequest(context.Background(), http.DefaultClient, server.url, kinds[0]); err != nil {
		t.Errorf("request after the load: %v", err)
	}
	server.stop(t)
	windows := 1 + int(elapsed/clientErrorWindow)
	if logged := strings.Count(server.logs.String(), "status=404"); logged > windows*clientErrorBurst {
		t.Errorf("logged %d requests that got 404 in %v, want at most %d (clientErrorBurst per window)", logged, elapsed, windows*clientErrorBurst)
	}
}

// sendLoadRequest sends req and reads the whole body.
func sendLoadRequest(ctx context.Context, client *http.Client, baseURL string, req loadRequest) error {
	r, err := http.NewRequestWithContext(ctx, req.method, strings.TrimSuffix(baseURL, "/")+req.path, nil)
	if err != nil {
		return err
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := client.Do(r)
	if err != nil {
		return fmt.Errorf("%s %.60s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("%s %.60s: reading the body: %w", req.method, req.path, err)
	}
	if resp.StatusCode != req.wantStatus {
		return fmt.Errorf("%s %.60s: status %d, want %d", req.method, req.path, resp.StatusCode, req.wantStatus)
	}
	return nil
}

func fetchModelInfo(t *testing.T, baseURL string) modelInfo {
	t.Helper()
	resp, err := http.Get(baseURL + "model.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info modelInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestServeBindsLoopbackByDefault checks the default of --addr, which must
// keep the server off every interface but the loopback one.
func TestServeBindsLoopbackByDefault(t *testing.T) {
	flag := newServeCommand().Flags().Lookup("addr")
	if flag.DefValue != defaultServeAddr {
		t.Errorf("--addr default = %q, want defaultServeAddr %q", flag.DefValue, defaultServeAddr)
	}
	host, _, err := net.SplitHostPort(defaultServeAddr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("defaultServeAddr %q has host %q, want a loopback IP address", defaultServeAddr, host)
	}
}

// TestServeRejectsOtherHosts starts serve on 127.0.0.1 and requests the
// page's URL with various Host headers. Loopback names get the page. Names
// of other origins, as a page that rebinds its own name to 127.0.0.1 sends
// them, get 421 Misdirected Request and a log line.
func TestServeRejectsOtherHosts(t *testing.T) {
	server := startServe(t, "--www", writeSiteDir(t, true), "--addr", "127.0.0.1:0")
	_, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(server.url, "http://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"127.0.0.2:" + port, http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"attacker.example:" + port, http.StatusMisdirectedRequest},
		{"attacker.example", http.StatusMisdirectedRequest},
		{"127.0.0.1.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"localhost.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"192.168.1.10:" + port, http.StatusMisdirectedRequest},
		{"[::ffff:10.0.0.1]:" + port, http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, server.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s with Host %q: %v", server.url, tt.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s with Host %q: status %d, want %d (body %q)", server.url, tt.host, resp.StatusCode, tt.want, body)
		}
		if tt.want == http.StatusMisdirectedRequest && !strings.Contains(string(body), "open the URL that serve printed") {
			t.Errorf("Host %q: body %q, want it to say which URL to open", tt.host, body)
		}
	}
	if !strings.Contains(server.logs.String(), `host=attacker.example`) {
		t.Errorf("logs lack the rejected host:\n%s", server.logs)
	}
}

// TestServeServesOnlyEmbeddedFiles serves the page embedded in this binary
// and checks that every one of its files is served as it is. Paths that
// lead out of the page, to dot files, to the Go sources beside it or to
// the folder it is embedded from must get 404.
func TestServeServesOnlyEmbeddedFiles(t *testing.T) {
	site := www.Files()
	h := newDemoHandler(site, newServedModel([]byte("model bytes"), "m.safetensors"), slog.New(slog.DiscardHandler))
	served := 0
	err := fs.WalkDir(site, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(site, name)
		if err != nil {
			return err
		}
		resp := get(t, h, http.MethodGet, "/"+name, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal([]byte(body(t, resp)), want) {
			t.Errorf("GET /%s: status %d, want 200 and the embedded file", name, resp.StatusCode)
		}
		served++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if served == 0 {
		t.Fatal("the embedded page has no files")
	}

	for _, path := range []string{
		"/www.go",
		"/static/index.html",
		"/../www.go",
		"/../../go.mod",
		"/%2e%2e/www.go",
		"/..%2f..%2fgo.mod",
		"//etc/passwd",
		"/etc/passwd",
		"/index.html%00.js",
		"/.git/HEAD",
		"/gallery/..%5c..%5cwww.go",
		"/" + strings.Repeat("../", 50) + "etc/passwd",
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestServeLogCapsPathLength requests a path of 10000 bytes that is not
// found: its log line must quote only the start of the path and its length.
func TestServeLogCapsPathLength(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newDemoHandler(testSite(), newServedModel([]byte("m"), "m.safetensors"), logger)
	long := "/" + strings.Repeat("é", 5000) // 10001 bytes, and the cut falls inside a rune
	if resp := get(t, h, http.MethodGet, long, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET (10001-byte path): status %d, want 404", resp.StatusCode)
	}
	line := logs.String()
	if len(line) > 2*maxLoggedPathBytes+200 {
		t.Errorf("log line for a 10001-byte path has %d bytes, want about %d", len(line), maxLoggedPathBytes+200)
	}
	if !strings.Contains(line, "... (10001 bytes)") {
		t.Errorf("log line %q lacks the path's length", line)
	}
	if got := loggedPath(long); !strings.HasPrefix(got, "/é") || len(got) > maxLoggedPathBytes+len("... (10001 bytes)") {
		t.Errorf("loggedPath(10001 bytes) = %q, want at most %d bytes of the path and its length", got, maxLoggedPathBytes)
	}
	if got := loggedPath("/index.html"); got != "/index.html" {
		t.Errorf("loggedPath(/index.html) = %q, want it unchanged", got)
	}
}

// TestServeLogLimitsClientErrors sends 100 requests that are not found:
// only clientErrorBurst of them may be logged.
func TestServeLogLimitsClientErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := newDemoHandler(testSite(), newServedModel([]byte("m"), "m.safetensors"), logger)
	for i := range 100 {
		get(t, h, http.MethodGet, fmt.Sprintf("/missing-%d", i), nil)
	}
	if got := strings.Count(logs.String(), "status=404"); got != clientErrorBurst {
		t.Errorf("logged %d of 100 requests that got 404, want clientErrorBurst = %d", got, clientErrorBurst)
	}
	// Successful requests are logged at debug level, which this logger
	// drops, and are not limited.
	get(t, h, http.MethodGet, "/index.html", nil)
}

func TestLogLimiterWindows(t *testing.T) {
	now := time.Unix(0, 0)
	l := &logLimiter{burst: 2, window: time.Second, now: func() time.Time { return now }}
	type result struct {
		ok      bool
		dropped int
	}
	var got []result
	for range 5 {
		ok, dropped := l.allow()
		got = append(got, result{ok, dropped})
	}
	now = now.Add(time.Second)
	ok, dropped := l.allow()
	got = append(got, result{ok, dropped})
	ok, dropped = l.allow()
	got = append(got, result{ok, dropped})
	want := []result{{true, 0}, {true, 0}, {false, 0}, {false, 0}, {false, 0}, {true, 3}, {true, 0}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("allow() call %d = %+v, want %+v", i+1, got[i], want[i])
		}
	}
}

// TestServeWWWDirNotFoundCases requests, from a --www folder, names that
// the file system rejects: a name over its length limit and a file used as
// a folder. Both got 500 and logged a server error, which any client could
// repeat at will. They must get 404.
func TestServeWWWDirNotFoundCases(t *testing.T) {
	site, _, err := openSite(writeSiteDir(t, true))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := newDemoHandler(site, newServedModel([]byte("m"), "m.safetensors"), slog.New(slog.NewTextHandler(&logs, nil)))
	for _, path := range []string{
		"/" + strings.Repeat("x", 300),
		"/gallery/" + strings.Repeat("y", 4000) + ".png",
		"/index.html/x",
	} {
		if resp := get(t, h, http.MethodGet, path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %.40s: status %d, want 404", path, resp.StatusCode)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("requests for names that do not exist logged server errors:\n%s", logs.String())
	}
}

// TestServeLogsServerErrorOnce links a file outside the --www folder into
// it, which os.Root refuses to open: the request gets 500, and its single
// log line carries the error.
func TestServeLogsServerErrorOnce(t *testing.T) {
	dir := writeSiteDir(t, true)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "outside.txt")); err != nil {
		t.Skipf("symbolic links unsupported here: %v", err)
	}
	site, _, err := openSite(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := newDemoHandler(site, newServedModel([]byte("m"), "m.safetensors"), slog.New(slog.NewTextHandler(&logs, nil)))
	for range 2 * clientErrorBurst {
		if resp := get(t, h, http.MethodGet, "/outside.txt", nil); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("GET /outside.txt: status %d, want 500", resp.StatusCode)
		}
	}
	lines := strings.Count(logs.String(), "level=ERROR")
	if lines != clientErrorBurst {
		t.Errorf("logged %d server errors for %d requests, want clientErrorBurst = %d:\n%s", lines, 2*clientErrorBurst, clientErrorBurst, logs.String())
	}
	if !strings.Contains(logs.String(), `error="read page file outside.txt: `) {
		t.Errorf("server error lines lack the error:\n%s", logs.String())
	}
}
