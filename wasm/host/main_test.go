package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

// modelSeed is the InitModelFile seed of the micro model every test loads.
const modelSeed = 7

// Fixtures that TestMain builds once for every test.
var (
	// pluginPath is the plugin module built from wasm/plugin. Real programs
	// read the m3ae-plugin.wasm that `make wasm` writes.
	pluginPath string
	pluginWasm []byte
	// guestWasm is testdata/wasm/testguest, a guest that misbehaves on
	// request.
	guestWasm []byte
	// microModel is a micro preset model file.
	microModel []byte
	// cache is shared by every Plugin, so each module compiles once. It
	// writes the compiled code to cacheDir.
	cache    wazero.CompilationCache
	cacheDir string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "m3ae-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildFixtures(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cacheDir = filepath.Join(dir, "wazero-cache")
	if cache, err = wazero.NewCompilationCacheWithDir(cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cache.Close(context.Background())
	return m.Run()
}

func buildFixtures(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pluginPath = filepath.Join(dir, "m3ae-plugin.wasm")
	if err := harness.BuildPlugin(ctx, pluginPath); err != nil {
		return err
	}
	guestPath := filepath.Join(dir, "testguest.wasm")
	if err := harness.BuildGuest(ctx, guestPath, "../../testdata/wasm/testguest"); err != nil {
		return err
	}
	var err error
	if pluginWasm, err = os.ReadFile(pluginPath); err != nil {
		return err
	}
	if guestWasm, err = os.ReadFile(guestPath); err != nil {
		return err
	}
	microModel, err = harness.ModelFile("micro", modelSeed)
	return err
}

// openPlugin opens module with the shared compilation cache and closes it
// when the test ends.
func openPlugin(t *testing.T, module []byte, opts ...host.Option) *host.Plugin {
	t.Helper()
	opts = append([]host.Option{host.WithCompilationCache(cache)}, opts...)
	p, err := host.Open(context.Background(), module, opts...)
	if err != nil {
		t.Fatalf("Open() failed: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// loadMicro loads the micro model into p.
func loadMicro(t *testing.T, p *host.Plugin) *host.Model {
	t.Helper()
	m, err := p.LoadModel(context.Background(), microModel)
	if err != nil {
		t.Fatalf("LoadModel(micro) failed: %v", err)
	}
	return m
}

func readImage(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
