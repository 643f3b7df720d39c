package host_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

func TestEmbedMatchesNative(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	m := loadMicro(t, p)
	native, err := core.Load(microModel)
	if err != nil {
		t.Fatal(err)
	}
	inputs := harness.Inputs{"emoji": readImage(t, "emoji64.png")}
	cases := []harness.Case{
		{Name: "image and text, cls", Op: harness.OpEmbed, Image: "emoji", Text: "a red apple"},
		{Name: "image pixels, mean", Op: harness.OpEmbed, Image: "emoji", Pixels: true, Pooling: "mean"},
		{Name: "text only", Op: harness.OpEmbed, Text: "strawberries on a plate"},
		{Name: "reconstruct", Op: harness.OpReconstruct, Image: "emoji", Text: "a red apple",
			ImageMaskRatio: 0.75, TextMaskRatio: 0.5, Seed: 3, TopK: 2},
	}
	for _, c := range cases {
		want, err := harness.RunNative(native, c, inputs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := harness.RunPlugin(context.Background(), m, c, inputs)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if diff := harness.DiffDigests(harness.Digest(got), harness.Digest(want)); len(diff) > 0 {
			t.Errorf("%s: plugin output differs from native in %v", c.Name, diff)
		}
	}
}

func TestLoadModelRejectsCorruptFiles(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	flipped := bytes.Clone(microModel)
	flipped[len(flipped)/2] ^= 0xff // a weight byte: the value may become non-finite or stay valid
	badHeader := bytes.Clone(microModel)
	binary.LittleEndian.PutUint64(badHeader, uint64(len(badHeader))) // header length past the end
	tests := []struct {
		name      string
		data      []byte
		wantGuest bool // the guest, not the host, rejects it
	}{
		{"empty", nil, false},
		{"garbage", []byte("definitely not a safetensors file"), true},
		{"truncated", microModel[:len(microModel)/3], true},
		{"header length too long", badHeader, true},
	}
	for _, tt := range tests {
		_, err := p.LoadModel(context.Background(), tt.data)
		if !errors.Is(err, core.ErrInvalidModelFile) {
			t.Errorf("LoadModel(%s) = %v, want an error matching core.ErrInvalidModelFile", tt.name, err)
			continue
		}
		var guestErr *host.GuestError
		if got := errors.As(err, &guestErr); got != tt.wantGuest {
			t.Errorf("LoadModel(%s) error %v is a GuestError: %v, want %v", tt.name, err, got, tt.wantGuest)
		}
		if tt.wantGuest && guestErr.Code != abi.CodeInvalidModelFile {
			t.Errorf("LoadModel(%s) code = %v, want %v", tt.name, guestErr.Code, abi.CodeInvalidModelFile)
		}
	}
	// The instance that rejected the files still serves.
	m := loadMicro(t, p)
	if _, err := m.Embed(context.Background(), host.EmbedRequest{Text: "still serving"}); err != nil {
		t.Errorf("Embed after corrupt loads failed: %v", err)
	}
	_, _ = p.LoadModel(context.Background(), flipped) // must not crash whether it loads or not
}

func TestGuestErrorsCarryCoreMessages(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	m := loadMicro(t, p)
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func() error
		wantCode abi.Code
		wantIs   error
	}{
		{"no image and no text", func() error {
			_, err := m.Embed(ctx, host.EmbedRequest{Text: "   "})
			return err
		}, abi.CodeInvalidInput, core.ErrInvalidInput},
		{"truncated png", func() error {
			_, err := m.Embed(ctx, host.EmbedRequest{Image: host.Image{Encoded: readImage(t, "truncated.png")}})
			return err
		}, abi.CodeInvalidImage, core.ErrInvalidImage},
		{"gif", func() error {
			_, err := m.Embed(ctx, host.EmbedRequest{Image: host.Image{Encoded: readImage(t, "tiny.gif")}})
			return err
		}, abi.CodeInvalidImage, core.ErrInvalidImage},
		{"mask ratio 2", func() error {
			_, err := m.Reconstruct(ctx, host.ReconstructRequest{Text: "a cat", Options: core.ReconstructOptions{TextMaskRatio: 2}})
			return err
		}, abi.CodeInvalidInput, core.ErrInvalidInput},
		{"top-k 1000", func() error {
			_, err := m.Reconstruct(ctx, host.ReconstructRequest{Text: "a cat", Options: core.ReconstructOptions{TopK: 1000}})
			return err
		}, abi.CodeInvalidInput, core.ErrInvalidInput},
		{"image mask of wrong length", func() error {
			_, err := m.Reconstruct(ctx, host.ReconstructRequest{
				Image:   host.Image{Encoded: readImage(t, "emoji64.png")},
				Options: core.ReconstructOptions{Masks: &core.Masks{Image: []bool{true}}},
			})
			return err
		}, abi.CodeInvalidInput, core.ErrInvalidInput},
	}
	for _, tt := range tests {
		err := tt.call()
		var guestErr *host.GuestError
		if !errors.As(err, &guestErr) {
			t.Errorf("%s: error = %v, want a *host.GuestError", tt.name, err)
			continue
		}
		if guestErr.Code != tt.wantCode {
			t.Errorf("%s: code = %v, want %v", tt.name, guestErr.Code, tt.wantCode)
		}
		if !errors.Is(err, tt.wantIs) {
			t.Errorf("%s: error %v does not match %v", tt.name, err, tt.wantIs)
		}
		if !strings.HasPrefix(err.Error(), "m3ae plugin: ") || guestErr.Message == "" {
			t.Errorf("%s: error = %q, want the prefix \"m3ae plugin: \" and the guest's message", tt.name, err)
		}
	}
	if _, err := m.Embed(ctx, host.EmbedRequest{Text: "still serving"}); err != nil {
		t.Errorf("Embed after guest errors failed: %v", err)
	}
}

func TestRequestsOverLimitsFailBeforeTheGuest(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	m := loadMicro(t, p)
	ctx := context.Background()
	longText := strings.Repeat("a", abi.MaxTextBytes+1)
	if _, err := m.Embed(ctx, host.EmbedRequest{Text: longText}); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("Embed(text of %d bytes) = %v, want core.ErrInvalidInput", len(longText), err)
	}
	both := host.Image{Encoded: readImage(t, "emoji64.png"), Pixels: image.NewNRGBA(image.Rect(0, 0, 1, 1))}
	if _, err := m.Embed(ctx, host.EmbedRequest{Image: both}); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("Embed(encoded and pixels) = %v, want core.ErrInvalidInput", err)
	}
	empty := host.Image{Pixels: image.NewNRGBA(image.Rect(0, 0, 0, 5))}
	if _, err := m.Embed(ctx, host.EmbedRequest{Image: empty}); !errors.Is(err, core.ErrInvalidImage) {
		t.Errorf("Embed(0x5 pixels) = %v, want core.ErrInvalidImage", err)
	}
	if _, err := m.Embed(ctx, host.EmbedRequest{Text: "x", Pooling: 9}); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("Embed(pooling 9) = %v, want core.ErrInvalidInput", err)
	}
}

// probeReport is the JSON the test guest's probe command fails with.
type probeReport struct {
	Environ       []string `json:"environ"`
	Args          []string `json:"args"`
	ReadFile      string   `json:"readFile"`
	ReadFileBytes int      `json:"readFileBytes"`
	ReadDir       string   `json:"readDir"`
	ReadDirDot    string   `json:"readDirDot"`
	WriteFile     string   `json:"writeFile"`
	Dial          string   `json:"dial"`
}

func TestGuestCannotReachTheHost(t *testing.T) {
	p := openPlugin(t, guestWasm, host.WithPoolSize(1))
	m, err := p.LoadModel(context.Background(), []byte("any bytes"))
	if err != nil {
		t.Fatal(err)
	}
	// A listener on the host that the guest tries to reach.
	listener, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := listener.Accept(); err == nil {
			accepted <- conn
		}
	}()

	_, err = m.Embed(context.Background(), host.EmbedRequest{Text: "probe:" + listener.Addr().String()})
	var guestErr *host.GuestError
	if !errors.As(err, &guestErr) {
		t.Fatalf("Embed(probe) = %v, want the guest's report as a *host.GuestError", err)
	}
	var report probeReport
	if err := json.Unmarshal([]byte(guestErr.Message), &report); err != nil {
		t.Fatalf("probe report %q: %v", guestErr.Message, err)
	}
	if len(report.Environ) != 0 {
		t.Errorf("guest environment = %q, want none", report.Environ)
	}
	if len(report.Args) != 0 {
		t.Errorf("guest arguments = %q, want none", report.Args)
	}
	for _, outcome := range []struct{ name, got string }{
		{"read /etc/hostname", report.ReadFile},
		{"list /", report.ReadDir},
		{"list .", report.ReadDirDot},
		{"write /tmp", report.WriteFile},
		{"dial the host's listener", report.Dial},
	} {
		if !strings.HasPrefix(outcome.got, "error: ") {
			t.Errorf("guest %s = %q, want an error", outcome.name, outcome.got)
		}
	}
	if report.ReadFileBytes != 0 {
		t.Errorf("guest read %d bytes of /etc/hostname, want 0", report.ReadFileBytes)
	}
	select {
	case conn := <-accepted:
		conn.Close()
		t.Errorf("guest connected to the host's listener at %s", listener.Addr())
	case <-time.After(100 * time.Millisecond):
	}
}

func TestContextStopsSpinningGuest(t *testing.T) {
	p := openPlugin(t, guestWasm, host.WithPoolSize(1))
	m, err := p.LoadModel(context.Background(), []byte("any bytes"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		ctx, cancel := tt.ctx()
		start := time.Now()
		_, err := m.Embed(ctx, host.EmbedRequest{Text: "spin"})
		elapsed := time.Since(start)
		cancel()
		if !errors.Is(err, tt.wantIs) {
			t.Errorf("Embed(spin, %s) = %v, want %v", tt.name, err, tt.wantIs)
		}
		if elapsed > 5*time.Second {
			t.Errorf("Embed(spin, %s) returned after %v, want soon after 100ms", tt.name, elapsed)
		}
		// The stopped instance is replaced, with the model re-loaded.
		if got, err := m.Embed(context.Background(), host.EmbedRequest{Text: "ok"}); err != nil || !slices.Equal(got, []float32{1, 2, 3}) {
			t.Errorf("Embed(ok) after %s = %v, %v, want [1 2 3]", tt.name, got, err)
		}
	}
}

func TestTrapsReplaceTheInstance(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := openPlugin(t, guestWasm, host.WithPoolSize(1), host.WithMemoryLimitBytes(64<<20), host.WithLogger(logger))
	m, err := p.LoadModel(context.Background(), []byte("any bytes"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		command    string
		wantStderr string // part of the guest's standard error quoted in the message
	}{
		{"exit", ""},
		{"panic", "test guest panics on request"},
		{"grow:200000000", "out of memory"},
	}
	for _, tt := range tests {
		_, err := m.Embed(context.Background(), host.EmbedRequest{Text: tt.command})
		if !errors.Is(err, host.ErrTrap) {
			t.Errorf("Embed(%s) = %v, want host.ErrTrap", tt.command, err)
		} else if !strings.Contains(err.Error(), tt.wantStderr) {
			t.Errorf("Embed(%s) = %q, want it to quote %q", tt.command, err, tt.wantStderr)
		}
		if got, err := m.Embed(context.Background(), host.EmbedRequest{Text: "ok"}); err != nil || !slices.Equal(got, []float32{1, 2, 3}) {
			t.Errorf("Embed(ok) after %s = %v, %v, want [1 2 3]", tt.command, got, err)
		}
	}
	if got, want := strings.Count(logs.String(), "level=WARN msg=\"m3ae plugin instance discarded\""), len(tests); got != want {
		t.Errorf("logged %d discarded instances, want %d:\n%s", got, want, logs.String())
	}
}

func TestMemoryLimitTrapsAndHostKeepsServing(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1), host.WithMemoryLimitBytes(96<<20))
	m := loadMicro(t, p)
	ctx := context.Background()
	request := host.EmbedRequest{Image: host.Image{Encoded: readImage(t, "emoji64.png")}, Text: "a red apple"}
	want, err := m.Embed(ctx, request)
	if err != nil {
		t.Fatalf("Embed under the limit failed: %v", err)
	}

	// 4000x4000 RGBA pixels are 64 MB in the request buffer and as much
	// again when core composites them, over the 96 MiB limit.
	big := image.NewNRGBA(image.Rect(0, 0, 4000, 4000))
	_, err = m.Embed(ctx, host.EmbedRequest{Image: host.Image{Pixels: big}})
	if !errors.Is(err, host.ErrTrap) {
		t.Fatalf("Embed(4000x4000 pixels) = %v, want host.ErrTrap", err)
	}
	got, err := m.Embed(ctx, request)
	if err != nil {
		t.Fatalf("Embed after the trap failed: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Embed after the trap = %v, want %v as before", got[:4], want[:4])
	}
}

func TestConcurrentCallsMatchSerial(t *testing.T) {
	// The interrupting build runs guest code several times slower, so it
	// gets fewer calls; both modes share the pool code under test.
	for _, mode := range []struct {
		name     string
		numCalls int
		opts     []host.Option
	}{
		{"no interrupt", 1000, []host.Option{host.WithCloseOnContextDone(false)}},
		{"close on context done", 200, nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := openPlugin(t, pluginWasm, append(mode.opts, host.WithPoolSize(3))...)
			checkConcurrentCalls(t, loadMicro(t, p), mode.numCalls)
		})
	}
}

// checkConcurrentCalls makes numCalls calls on m from 8 goroutines and
// compares each result with the same call made serially.
func checkConcurrentCalls(t *testing.T, m *host.Model, numCalls int) {
	const numGoroutines = 8
	ctx := context.Background()
	// small16.png is already the micro model's 16x16 input size, so
	// calls spend their time in the model rather than in resizing.
	small := readImage(t, "small16.png")
	requests := []host.EmbedRequest{
		{Text: "a red apple"},
		{Text: "strawberries", Pooling: core.PoolMean},
		{Image: host.Image{Encoded: small}},
		{Image: host.Image{Encoded: small}, Text: "a disc", Pooling: core.PoolMean},
	}
	reconstruct := host.ReconstructRequest{Image: host.Image{Encoded: small}, Text: "a red apple",
		Options: core.ReconstructOptions{ImageMaskRatio: 0.5, TextMaskRatio: 0.5, Seed: 11, TopK: 3}}

	// Serial results first.
	want := make([][]float32, len(requests))
	for i, req := range requests {
		var err error
		if want[i], err = m.Embed(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	wantReconstruction, err := m.Reconstruct(ctx, reconstruct)
	if err != nil {
		t.Fatal(err)
	}
	wantDigest := harness.Digest(harness.Output{Reconstruction: wantReconstruction})

	// Every 50th call is a reconstruction, which costs about twenty embeds
	// because of the [Nt, V] text head.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, numCalls)
	for g := range numGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for call := g; call < numCalls; call += numGoroutines {
				if call%50 == 0 {
					got, err := m.Reconstruct(ctx, reconstruct)
					if err != nil {
						errs <- err
						continue
					}
					if diff := harness.DiffDigests(harness.Digest(harness.Output{Reconstruction: got}), wantDigest); len(diff) > 0 {
						errs <- errors.New("reconstruction differs from the serial one in " + strings.Join(diff, ", "))
					}
					continue
				}
				i := call % len(requests)
				got, err := m.Embed(ctx, requests[i])
				if err != nil {
					errs <- err
				} else if !slices.Equal(got, want[i]) {
					errs <- errors.New("embedding differs from the serial one")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Logf("%d calls from %d goroutines on 3 instances took %v", numCalls, numGoroutines, time.Since(start))
	failures := 0
	for err := range errs {
		if failures++; failures <= 5 {
			t.Errorf("concurrent call: %v", err)
		}
	}
	if failures > 5 {
		t.Errorf("%d concurrent calls failed in all", failures)
	}
}

func TestCloseStopsCallsAndRejectsNewOnes(t *testing.T) {
	p, err := host.Open(context.Background(), guestWasm, host.WithCompilationCache(cache), host.WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.LoadModel(context.Background(), []byte("any bytes"))
	if err != nil {
		t.Fatal(err)
	}

	// A spinning call and a call waiting for the only instance both end
	// with ErrClosed.
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := m.Embed(context.Background(), host.EmbedRequest{Text: "spin"})
			results <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	for range 2 {
		select {
		case err := <-results:
			if !errors.Is(err, host.ErrClosed) {
				t.Errorf("call running during Close = %v, want host.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("call running during Close did not return within 10s")
		}
	}

	if _, err := m.Embed(context.Background(), host.EmbedRequest{Text: "ok"}); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Embed after Close = %v, want host.ErrClosed", err)
	}
	if _, err := p.LoadModel(context.Background(), []byte("any bytes")); !errors.Is(err, host.ErrClosed) {
		t.Errorf("LoadModel after Close = %v, want host.ErrClosed", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestModelCloseLeavesOtherModels(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	first := loadMicro(t, p)
	second := loadMicro(t, p)
	ctx := context.Background()
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Embed(ctx, host.EmbedRequest{Text: "a cat"}); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Embed on a closed model = %v, want host.ErrClosed", err)
	}
	if _, err := second.Embed(ctx, host.EmbedRequest{Text: "a cat"}); err != nil {
		t.Errorf("Embed on the open model = %v, want nil", err)
	}
	if got, want := second.Config(), mustPreset(t, "micro"); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}

func TestOpenRejectsBadModulesAndOptions(t *testing.T) {
	tests := []struct {
		name   string
		module []byte
		opts   []host.Option
		want   string
	}{
		{"not wasm", []byte("not a wasm module"), nil, "compile module"},
		{"pool size 0", pluginWasm, []host.Option{host.WithPoolSize(0)}, "pool size 0 is invalid"},
		{"memory limit 0", pluginWasm, []host.Option{host.WithMemoryLimitPages(0)}, "memory limit of 0 pages"},
		{"memory limit 8 GiB", pluginWasm, []host.Option{host.WithMemoryLimitBytes(8 << 30)}, "memory limit of 131072 pages"},
		{"cache and directory", pluginWasm, []host.Option{host.WithCompilationCacheDir(t.TempDir())}, "use one"},
	}
	for _, tt := range tests {
		opts := append([]host.Option{host.WithCompilationCache(cache)}, tt.opts...)
		p, err := host.Open(context.Background(), tt.module, opts...)
		if err == nil {
			p.Close(context.Background())
			t.Errorf("Open(%s) = nil error, want one containing %q", tt.name, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s) = %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestCompilationCacheDir(t *testing.T) {
	// cacheDir already holds the plugin's compiled code when an earlier
	// test has opened it, so the first Open here may be fast too.
	for run := range 2 {
		start := time.Now()
		p, err := host.Open(context.Background(), pluginWasm, host.WithCompilationCacheDir(cacheDir), host.WithPoolSize(1))
		if err != nil {
			t.Fatalf("Open(run %d) failed: %v", run, err)
		}
		t.Logf("Open with a cache directory, run %d: %v", run, time.Since(start))
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close(run %d) = %v, want nil", run, err)
		}
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil || len(entries) == 0 {
		t.Errorf("cache directory %s holds %d entries (error %v), want compiled code", cacheDir, len(entries), err)
	}
}

func mustPreset(t *testing.T, name string) core.Config {
	t.Helper()
	cfg, err := core.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestWithoutCloseOnContextDone(t *testing.T) {
	p := openPlugin(t, pluginWasm, host.WithPoolSize(1), host.WithCloseOnContextDone(false))
	m := loadMicro(t, p)
	reference := openPlugin(t, pluginWasm, host.WithPoolSize(1))
	want, err := loadMicro(t, reference).Embed(context.Background(), host.EmbedRequest{Text: "a red apple"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Embed(context.Background(), host.EmbedRequest{Text: "a red apple"})
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Embed without interruption = %v, %v, want %v", got, err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Embed(ctx, host.EmbedRequest{Text: "a red apple"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Embed with a cancelled context = %v, want context.Canceled", err)
	}
}
