// The memory group: peak resident memory of the CLI and of a plugin host
// that embed or reconstruct one image and caption, per preset and weight
// type, beside the model file's size.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

func init() {
	register(group{
		name:  "memory",
		about: "peak resident memory of the CLI and the plugin host embedding and reconstructing one image and caption",
		run:   runMemoryGroup,
	})
}

// The input of every run: a committed photo and a caption.
const (
	memoryImage   = "testdata/images/photo512x384.jpg"
	memoryCaption = "a photo of a red apple on a wooden table"
	// memoryModelSeed seeds the random weights of every model file.
	memoryModelSeed = 1
)

// memoryColumns are the measured programs and calls, in table order.
var memoryColumns = []struct{ program, op string }{
	{"CLI", "embed"}, {"CLI", "reconstruct"},
	{"plugin host", "embed"}, {"plugin host", "reconstruct"},
}

// rssResult is the JSON that peakrss writes.
type rssResult struct {
	MaxRSSKiB   int64   `json:"max_rss_kib"`
	WallSeconds float64 `json:"wall_s"`
	CPUSeconds  float64 `json:"cpu_s"`
	ExitCode    int     `json:"exit_code"`
}

// memoryRow is one model file and the peak of every column, in KiB.
type memoryRow struct {
	preset, weights string
	fileBytes       int64
	peaksKiB        []int64
}

// memoryResult is the measurements of the memory group, before rendering.
type memoryResult struct {
	rows []memoryRow
	// versionKiB is the peak of `m3ae-edge version`, the CLI binary alone.
	versionKiB int64
	// compileKiB is the plugin host's first run, which compiles the plugin
	// into an empty cache.
	compileKiB int64
	compileRun string
}

// memoryTools are the built programs and the shared inputs.
type memoryTools struct {
	dir, peakrss, cli, pluginHost, plugin, cache, image string
}

func runMemoryGroup(ctx context.Context, env *benchEnv) (string, error) {
	res, err := measureMemory(ctx, env)
	if err != nil {
		return "", err
	}
	return renderMemory(res), nil
}

func measureMemory(ctx context.Context, env *benchEnv) (*memoryResult, error) {
	root, err := repositoryRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "m3ae-bench-memory-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tools := memoryTools{
		dir:        dir,
		peakrss:    filepath.Join(dir, "peakrss"),
		cli:        filepath.Join(dir, "m3ae-edge"),
		pluginHost: filepath.Join(dir, "pluginhost"),
		plugin:     filepath.Join(dir, "m3ae-plugin.wasm"),
		cache:      filepath.Join(dir, "wazero-cache"),
		image:      filepath.Join(root, memoryImage),
	}
	env.log.Info("building the CLI, the plugin, the plugin host and peakrss")
	for _, build := range []struct {
		pkg, out string
		env      []string
		args     []string
	}{
		{modulePath + "/cmd/m3ae-bench/peakrss", tools.peakrss, nil, nil},
		{modulePath + "/cmd/m3ae-bench/pluginhost", tools.pluginHost, nil, nil},
		{modulePath + "/cmd/m3ae-edge", tools.cli, nil, nil},
		// As the Makefile's wasm target builds it.
		{modulePath + "/wasm/plugin", tools.plugin, []string{"GOOS=wasip1", "GOARCH=wasm"}, []string{"-trimpath", "-buildmode=c-shared"}},
	} {
		if err := buildProgram(ctx, build.pkg, build.out, build.env, build.args...); err != nil {
			return nil, err
		}
	}

	res := &memoryResult{}
	version, err := tools.measure(ctx, env, "m3ae-edge version", tools.cli, "version")
	if err != nil {
		return nil, err
	}
	res.versionKiB = version.MaxRSSKiB

	presets := []string{"micro", "mini", "tiny", "small"}
	if env.quick {
		presets = []string{"micro"}
	}
	for i, preset := range presets {
		files, err := writeMemoryModels(dir, preset)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			// The first plugin host run compiles the plugin into the empty
			// cache; the table's runs read the compiled code from it.
			res.compileRun = preset + " " + files[0].weights + " embed"
			first, err := tools.measure(ctx, env, "plugin host, compiling, "+res.compileRun,
				tools.pluginHost, tools.pluginArgs(files[0].path, "embed")...)
			if err != nil {
				return nil, err
			}
			res.compileKiB = first.MaxRSSKiB
		}
		for _, f := range files {
			row := memoryRow{preset: preset, weights: f.weights, fileBytes: f.size}
			for _, column := range memoryColumns {
				program, args := tools.cli, []string{column.op, "--model", f.path, "--image", tools.image, "--text", memoryCaption}
				if column.op == "reconstruct" {
					args = append(args, "--out", filepath.Join(dir, "reconstruction.png"), "--seed", "1")
				}
				if column.program == "plugin host" {
					program, args = tools.pluginHost, tools.pluginArgs(f.path, column.op)
				}
				label := fmt.Sprintf("%s %s, %s %s", column.program, column.op, preset, f.weights)
				r, err := tools.measure(ctx, env, label, program, args...)
				if err != nil {
					return nil, err
				}
				row.peaksKiB = append(row.peaksKiB, r.MaxRSSKiB)
			}
			res.rows = append(res.rows, row)
			if err := os.Remove(f.path); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func (t memoryTools) pluginArgs(model, op string) []string {
	return []string{"-plugin", t.plugin, "-cache", t.cache, "-model", model,
		"-image", t.image, "-text", memoryCaption, "-op", op}
}

// measure runs program through peakrss and returns its figures. A program
// that fails is an error. label names the run in the log.
func (t memoryTools) measure(ctx context.Context, env *benchEnv, label, program string, args ...string) (rssResult, error) {
	resultPath := filepath.Join(t.dir, "peakrss.json")
	peakArgs := append([]string{"-o", resultPath, "--", program}, args...)
	if _, err := runChild(ctx, nil, t.peakrss, peakArgs...); err != nil {
		return rssResult{}, err
	}
	data, err := os.ReadFile(resultPath)
	if err != nil {
		return rssResult{}, err
	}
	var r rssResult
	if err := json.Unmarshal(data, &r); err != nil {
		return rssResult{}, fmt.Errorf("peakrss result %s: %w", resultPath, err)
	}
	if r.ExitCode != 0 || r.MaxRSSKiB <= 0 {
		return rssResult{}, fmt.Errorf("%s %s: exit code %d, peak %d KiB; want 0 and a positive peak",
			filepath.Base(program), strings.Join(args, " "), r.ExitCode, r.MaxRSSKiB)
	}
	env.log.Info("measured peak memory", "run", label,
		"MiB", fmt.Sprintf("%.1f", mebibytes(r.MaxRSSKiB*1024)), "wall_s", fmt.Sprintf("%.1f", r.WallSeconds))
	return r, nil
}

// memoryModel is one model file written for the group.
type memoryModel struct {
	weights, path string
	size          int64
}

// writeMemoryModels writes a float32 model of preset with seeded random
// weights and its int8 quantization into dir.
func writeMemoryModels(dir, preset string) ([]memoryModel, error) {
	cfg, err := core.Preset(preset)
	if err != nil {
		return nil, err
	}
	float32Model, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, memoryModelSeed)
	if err != nil {
		return nil, err
	}
	int8Model, _, err := quantize.QuantizeModelFile(float32Model)
	if err != nil {
		return nil, err
	}
	var files []memoryModel
	for _, m := range []struct {
		weights string
		model   *core.ModelFile
	}{{"float32", float32Model}, {"int8", int8Model}} {
		path := filepath.Join(dir, preset+"."+m.weights+".safetensors")
		size, err := writeModel(path, m.model)
		if err != nil {
			return nil, err
		}
		files = append(files, memoryModel{weights: m.weights, path: path, size: size})
	}
	return files, nil
}

// writeModel writes mf to path and returns the file's size.
func writeModel(path string, mf *core.ModelFile) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	if err := core.WriteModelFile(f, mf); err != nil {
		f.Close()
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func mebibytes(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func renderMemory(res *memoryResult) string {
	var b strings.Builder
	writeParagraph(&b, fmt.Sprintf("Peak resident memory (ru_maxrss, in MiB) of one process that loads a "+
		"model file with seeded random weights and embeds or reconstructs `%s` with the caption %q. The CLI "+
		"is `m3ae-edge embed` or `m3ae-edge reconstruct`. The plugin host is cmd/m3ae-bench/pluginhost, "+
		"which runs the same call in the wasip1 plugin (built as `make wasm` builds "+
		"build/m3ae-plugin.wasm) under wazero with one instance. int8 files come from "+
		"quantize.QuantizeModelFile, as `m3ae-edge quantize` writes them. Each process runs under "+
		"cmd/m3ae-bench/peakrss, because a child that m3ae-bench started itself would report at least "+
		"m3ae-bench's own peak.", memoryImage, memoryCaption))

	header := []string{"preset", "weights", "model file MiB"}
	for _, c := range memoryColumns {
		header = append(header, c.program+" "+c.op)
	}
	table := newMarkdownTable(header...)
	for _, row := range res.rows {
		cells := []string{row.preset, row.weights, fmt.Sprintf("%.1f", mebibytes(row.fileBytes))}
		for _, kib := range row.peaksKiB {
			cells = append(cells, fmt.Sprintf("%.1f", mebibytes(kib*1024)))
		}
		table.add(cells...)
	}
	b.WriteString(table.String())

	b.WriteString("\n")
	writeParagraph(&b, fmt.Sprintf("For scale: `m3ae-edge version`, which loads no model, peaks at %.1f MiB. "+
		"The plugin host's first run (%s) compiled the plugin into an empty wazero cache and peaked at "+
		"%.1f MiB; every run in the table read the compiled code from that cache.",
		mebibytes(res.versionKiB*1024), res.compileRun, mebibytes(res.compileKiB*1024)))
	return b.String()
}
