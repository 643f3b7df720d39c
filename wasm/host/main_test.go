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

// fixturesEnv names the folder of the fixtures that the process running
// the tests built. go test -fuzz runs a fuzz target in worker processes of
// the same test binary, which find the folder here and reuse its modules
// and compiled code, so they start in about a second instead of building
// the modules again.
const fixturesEnv = "M3AE_HOST_TEST_FIXTURES"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir := os.Getenv(fixturesEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "m3ae-host-test-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := buildFixtures(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv(fixturesEnv, dir)
	}
	if err := readFixtures(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cacheDir = filepath.Join(dir, "wazero-cache")
	var err error
	if cache, err = wazero.NewCompilationCacheWithDir(cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cache.Close(context.Background())
	return m.Run()
}

// buildFixtures builds the plugin and the test guest into dir.
func buildFixtures(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := harness.BuildPlugin(ctx, filepath.Join(dir, "m3ae-plugin.wasm")); err != nil {
		return err
	}
	return harness.BuildGuest(ctx, filepath.Join(dir, "testguest.wasm"), "../../testdata/wasm/testguest")
}

// readFixtures reads the modules that buildFixtures wrote into dir and
// writes the micro model.
func readFixtures(dir string) error {
	pluginPath = filepath.Join(dir, "m3ae-plugin.wasm")
	var err error
	if pluginWasm, err = os.ReadFile(pluginPath); err != nil {
		return err
	}
	if guestWasm, err = os.ReadFile(filepath.Join(dir, "testguest.wasm")); err != nil {
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
