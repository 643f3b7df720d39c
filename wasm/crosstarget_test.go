package wasm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/quantize"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

// modelSeed is the InitModelFile seed of the micro model under test.
const modelSeed = 20240607

// crossTargetCases cover every input kind and option that the three
// targets parse on their own: encoded and pixel images, text alone, both
// poolings, seeds as Number and BigInt, and errors that core reports.
var crossTargetCases = []harness.Case{
	{Name: "embed image and text cls", Op: harness.OpEmbed, Image: "emoji", Text: "A red apple, sliced!", Pooling: "cls"},
	{Name: "embed image and text mean", Op: harness.OpEmbed, Image: "emoji", Text: "A red apple, sliced!", Pooling: "mean"},
	{Name: "embed image only", Op: harness.OpEmbed, Image: "photo"},
	{Name: "embed pixels mean", Op: harness.OpEmbed, Image: "photo", Pixels: true, Pooling: "mean"},
	{Name: "embed text only", Op: harness.OpEmbed, Text: "Strawberries and crème brûlée"},
	{Name: "reconstruct image and text", Op: harness.OpReconstruct, Image: "emoji", Text: "a smiling face with sunglasses",
		ImageMaskRatio: 0.75, TextMaskRatio: 0.5, Seed: 42, TopK: 5},
	{Name: "reconstruct bigint seed", Op: harness.OpReconstruct, Image: "scene", Text: "a checkerboard over a gradient",
		ImageMaskRatio: 0.5, TextMaskRatio: 0.75, Seed: 1<<63 + 12345, TopK: 3, SeedAsBigInt: true},
	{Name: "reconstruct pixels", Op: harness.OpReconstruct, Image: "paletted", Pixels: true,
		ImageMaskRatio: 0.6, Seed: 7, TopK: 1},
	{Name: "reconstruct image only", Op: harness.OpReconstruct, Image: "photo", ImageMaskRatio: 0.9, Seed: 1},
	{Name: "reconstruct text only", Op: harness.OpReconstruct, Text: "the quick brown fox jumps over the lazy dog",
		TextMaskRatio: 0.3, Seed: 9007199254740991, TopK: 4},
	{Name: "error no input", Op: harness.OpEmbed, Text: "  "},
	{Name: "error truncated png", Op: harness.OpEmbed, Image: "truncated"},
	{Name: "error mask ratio", Op: harness.OpReconstruct, Text: "a cat", TextMaskRatio: 1.5},
}

func loadInputs(t *testing.T) harness.Inputs {
	t.Helper()
	files := map[string]string{
		"emoji":     "emoji64.png",
		"photo":     "photo512x384.jpg",
		"scene":     "scene96x72.png",
		"paletted":  "paletted64.png",
		"truncated": "truncated.png",
	}
	inputs := harness.Inputs{}
	for name, file := range files {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "images", file))
		if err != nil {
			t.Fatal(err)
		}
		inputs[name] = data
	}
	return inputs
}

// crossTargetModel is one model file under test and the native digests of
// its outputs, case by case.
type crossTargetModel struct {
	name string
	data []byte
	want []map[string]string
}

// TestOutputsMatchAcrossTargets hashes every output of every case natively,
// through the wazero plugin and in a Web Worker in headless Chromium, for a
// float32 and an int8 model, and requires the same bits everywhere. The
// reference is this test's own native build. Native builds of the scalar
// and SIMD flavors run beside it. Both wasm flavors run in wazero and in
// Chromium: the scalar modules of the running toolchain and the SIMD128
// modules of harness.SIMDToolchain. The go command fetches that toolchain
// from the module proxy on first use.
func TestOutputsMatchAcrossTargets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	inputs := loadInputs(t)
	models := crossTargetModels(t, inputs)

	for _, flavor := range harness.NativeFlavors {
		t.Run("native "+flavor.Name, func(t *testing.T) {
			binary := filepath.Join(t.TempDir(), "nativecases")
			if err := harness.BuildNative(ctx, flavor, binary); err != nil {
				t.Fatal(err)
			}
			for _, model := range models {
				got, err := harness.RunNativeBuild(ctx, binary, model.data, crossTargetCases, inputs)
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range crossTargetCases {
					if diff := harness.DiffDigests(got[i], model.want[i]); len(diff) > 0 {
						t.Errorf("native %s build(%s model, %s) differs from this test's build in %v", flavor.Name, model.name, c.Name, diff)
					}
				}
			}
		})
	}

	for _, flavor := range harness.WasmFlavors {
		t.Run("wazero "+flavor.Name, func(t *testing.T) {
			plugin := openPlugin(ctx, t, flavor)
			for _, model := range models {
				m, err := plugin.LoadModel(ctx, model.data)
				if err != nil {
					t.Fatalf("load the %s model: %v", model.name, err)
				}
				for i, c := range crossTargetCases {
					out, err := harness.RunPlugin(ctx, m, c, inputs)
					if err != nil {
						t.Fatalf("plugin(%s model, %s): %v", model.name, c.Name, err)
					}
					if diff := harness.DiffDigests(harness.Digest(out), model.want[i]); len(diff) > 0 {
						t.Errorf("%s plugin(%s model, %s) differs from native in %v (error %q)", flavor.Name, model.name, c.Name, diff, out.Error)
					}
				}
			}
		})

		t.Run("chromium "+flavor.Name, func(t *testing.T) {
			browser := startBrowser(ctx, t, flavor)
			for i, model := range models {
				// The API misuse checks do not depend on the model, so
				// they run once.
				run, err := browser.Run(ctx, model.data, crossTargetCases, inputs, harness.RunOptions{APIChecks: i == 0})
				if err != nil {
					t.Fatalf("%s model: %v", model.name, err)
				}
				if len(run.Results) != len(crossTargetCases) {
					t.Fatalf("browser returned %d results for the %s model, want %d", len(run.Results), model.name, len(crossTargetCases))
				}
				for i, c := range crossTargetCases {
					got := run.Results[i]
					if diff := harness.DiffDigests(harness.Digest(got.Output), model.want[i]); len(diff) > 0 {
						t.Errorf("%s browser module(%s model, %s) differs from native in %v (error %q)", flavor.Name, model.name, c.Name, diff, got.Output.Error)
					}
				}
				if i == 0 {
					checkBrowserAPI(t, run.Checks)
				}
			}
		})
	}
}

// crossTargetModels returns the micro model under test, float32 and
// quantized to int8, with the digests of their outputs in this test's
// native build.
func crossTargetModels(t *testing.T, inputs harness.Inputs) []crossTargetModel {
	t.Helper()
	float32Data, err := harness.ModelFile("micro", modelSeed)
	if err != nil {
		t.Fatal(err)
	}
	float32File, err := core.ReadModelFile(float32Data)
	if err != nil {
		t.Fatal(err)
	}
	int8File, _, err := quantize.QuantizeModelFile(float32File)
	if err != nil {
		t.Fatal(err)
	}
	var int8Data bytes.Buffer
	if err := core.WriteModelFile(&int8Data, int8File); err != nil {
		t.Fatal(err)
	}

	models := []crossTargetModel{{name: "float32", data: float32Data}, {name: "int8", data: int8Data.Bytes()}}
	for m := range models {
		pipeline, err := core.Load(models[m].data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range crossTargetCases {
			out, err := harness.RunNative(pipeline, c, inputs)
			if err != nil {
				t.Fatal(err)
			}
			checkNotVacuous(t, c, out)
			models[m].want = append(models[m].want, harness.Digest(out))
		}
	}
	return models
}

// openPlugin builds the plugin of flavor and opens it in wazero.
func openPlugin(ctx context.Context, t *testing.T, flavor harness.Flavor) *host.Plugin {
	t.Helper()
	pluginPath := filepath.Join(t.TempDir(), "m3ae-plugin.wasm")
	if err := harness.BuildPluginFlavor(ctx, flavor, pluginPath); err != nil {
		t.Fatal(err)
	}
	pluginWasm, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	plugin, err := host.Open(ctx, pluginWasm, host.WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plugin.Close(context.Background()) })
	return plugin
}

// checkNotVacuous fails when a case that should produce outputs produced
// an error or hid nothing, so that equal hashes mean something.
func checkNotVacuous(t *testing.T, c harness.Case, out harness.Output) {
	t.Helper()
	if strings.HasPrefix(c.Name, "error ") {
		if out.Error == "" {
			t.Errorf("native(%s) succeeded, want an error", c.Name)
		}
		return
	}
	if out.Error != "" {
		t.Fatalf("native(%s) failed: %s", c.Name, out.Error)
	}
	r := out.Reconstruction
	if c.Op != harness.OpReconstruct || r == nil {
		return
	}
	if c.Text != "" && c.TextMaskRatio > 0 && (r.Text == nil || len(r.Text.Predictions) == 0) {
		t.Errorf("native(%s) predicted no hidden words", c.Name)
	}
	if c.Image != "" && r.Image == nil {
		t.Errorf("native(%s) returned no images", c.Name)
	}
}

// startBrowser starts Chromium on the browser module of flavor and its
// toolchain's wasm_exec.js. It skips the test when Chromium is not
// installed, unless M3AE_REQUIRE_BROWSER is 1.
func startBrowser(ctx context.Context, t *testing.T, flavor harness.Flavor) *harness.Browser {
	t.Helper()
	if !harness.ChromiumAvailable("") {
		if os.Getenv("M3AE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s not found and M3AE_REQUIRE_BROWSER=1: install the chromium package", harness.DefaultChromiumPath)
		}
		t.Skipf("%s not found: install chromium to run the browser leg, or set M3AE_REQUIRE_BROWSER=1 to fail instead", harness.DefaultChromiumPath)
	}

	// The module, wasm_exec.js and a fresh profile.
	dir := t.TempDir()
	modulePath := filepath.Join(dir, "m3ae.wasm")
	if err := harness.BuildBrowserFlavor(ctx, flavor, modulePath); err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(modulePath)
	if err != nil {
		t.Fatal(err)
	}
	wasmExec, err := harness.WasmExecJSFlavor(ctx, flavor)
	if err != nil {
		t.Fatal(err)
	}

	browser, err := harness.StartBrowser(ctx, harness.BrowserConfig{
		UserDataDir: filepath.Join(dir, "chromium-profile"),
		Module:      module,
		WasmExecJS:  wasmExec,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(browser.Close)
	return browser
}

// checkBrowserAPI compares the worker's API misuse checks with what the
// browser module documents.
func checkBrowserAPI(t *testing.T, checks map[string]harness.CheckOutcome) {
	t.Helper()
	tests := []struct {
		check     string
		wantError string // part of the rejection message; empty for success
		wantValue string // part of the JSON value on success
	}{
		{"unknownHandle", "handle 987654 is not loaded", ""},
		{"negativeSeed", "seed -1 is not a safe non-negative integer", ""},
		{"unsafeSeed", "pass a BigInt", ""},
		{"bigSeed", "seed 18446744073709551616n is outside", ""},
		{"maxSeed", "", "ok"},
		{"imageNotBytes", "image must be a Uint8Array or ArrayBuffer, got String", ""},
		{"imageAndPixels", "both image and pixels are set", ""},
		{"pixelsWrongLength", "pixels.data has 3 bytes, want 4*width*height = 4", ""},
		{"badPooling", `pooling is "max"`, ""},
		{"noInput", "no image and no text tokens", ""},
		{"noOptions", "no image and no text tokens", ""},
		{"throwingGetter", "getter throws", ""},
		{"customMasks", "", "1111111111111111"},
		{"config", "", `"embedDim":32`},
		{"loadGarbage", "invalid model file", ""},
		{"releaseUnknown", "", "false"},
		{"stillServing", "", "32"},
	}
	for _, tt := range tests {
		got, ok := checks[tt.check]
		switch {
		case !ok:
			t.Errorf("browser API check %s is missing", tt.check)
		case tt.wantError != "" && !strings.Contains(got.Error, tt.wantError):
			t.Errorf("browser API %s = %+v, want a rejection containing %q", tt.check, got, tt.wantError)
		case tt.wantError == "" && (got.Error != "" || !strings.Contains(got.Value, tt.wantValue)):
			t.Errorf("browser API %s = %+v, want a value containing %q", tt.check, got, tt.wantValue)
		}
	}
}
