package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

const fixtureTestCaptions = "../../testdata/emoji-mini/test.jsonl"

// writeMicroModel writes a float32 micro model with InitModelFile weights
// and the BERT vocabulary to dir and returns its path.
func writeMicroModel(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "micro.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	out := filepath.Join(dir, "micro.int8.safetensors")
	reportPath := filepath.Join(dir, "report.json")
	stdout, stderr, err := execute(t, "quantize", "--in", in, "--out", out, "--report", reportPath,
		"--captions", fixtureTestCaptions, "--limit", "3", "--seed", "7")
	if err != nil {
		t.Fatalf("m3ae-edge quantize: %v\nstderr:\n%s", err, stderr)
	}

	// The int8 file loads as an int8 model.
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := core.ReadModelFile(data)
	if err != nil {
		t.Fatalf("ReadModelFile(%s): %v", out, err)
	}
	if mf.Quantization != core.QuantizationInt8 {
		t.Errorf("%s quantization = %q, want %q", out, mf.Quantization, core.QuantizationInt8)
	}

	// The JSON report has every section, with the sizes of the files.
	reportData, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	var report quantize.Report
	if err := json.Unmarshal(reportData, &report); err != nil {
		t.Fatalf("%s: %v", reportPath, err)
	}
	inInfo, err := os.Stat(in)
	if err != nil {
		t.Fatal(err)
	}
	if report.Sizes.Float32Bytes != inInfo.Size() || report.Sizes.Int8Bytes != int64(len(data)) {
		t.Errorf("report sizes = %d and %d bytes, want %d and %d", report.Sizes.Float32Bytes, report.Sizes.Int8Bytes, inInfo.Size(), len(data))
	}
	if len(report.Tensors) != 17 {
		t.Errorf("report lists %d tensors, want 17 (16 dense kernels and the text embedding)", len(report.Tensors))
	}
	if report.Fidelity == nil || report.Fidelity.Examples != 3 || report.Fidelity.Seed != 7 {
		t.Fatalf("report fidelity = %+v, want 3 examples with mask seed 7", report.Fidelity)
	}
	if len(report.Targets) != 9 {
		t.Errorf("report has %d targets, want 9", len(report.Targets))
	}
	// The micro file's vocabulary header and float32 vectors of V values
	// keep its ratio near 0.32, above the 0.27 target.
	if ratio := report.Targets[0]; ratio.Name != "file size ratio" || ratio.Status != quantize.StatusFail {
		t.Errorf("report target 0 = %+v, want the file size ratio, failed", ratio)
	}
	if report.TargetsMet {
		t.Errorf("report all_targets_met = true, want false for the micro file's size ratio")
	}

	// The printed tables name every section.
	for _, want := range []string{
		"tensor", "max |error|", "decoder_text_output.Dense_0.kernel", "per-column", "text_embedding.embedding", "per-row",
		"file size: float32", "fidelity on 3 examples", "paired", "reconstruction PSNR", "masked token top-1 agreement",
		"file size ratio", "fail", "1 missed (file size ratio)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("m3ae-edge quantize output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "targets missed") {
		t.Errorf("m3ae-edge quantize log lacks the missed-targets warning:\n%s", stderr)
	}
}

func TestQuantizeCommandWithoutCaptions(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	out := filepath.Join(dir, "micro.int8.safetensors")
	stdout, stderr, err := execute(t, "quantize", "--in", in, "--out", out)
	if err != nil {
		t.Fatalf("m3ae-edge quantize: %v\nstderr:\n%s", err, stderr)
	}
	for _, want := range []string{"image embedding cosine mean", "not measured", "8 not measured for lack of samples"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("m3ae-edge quantize (no captions) output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "fidelity on") {
		t.Errorf("m3ae-edge quantize (no captions) printed fidelity figures:\n%s", stdout)
	}
}

func TestQuantizeCommandRejects(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	int8Path := filepath.Join(dir, "int8.safetensors")
	if _, _, err := execute(t, "quantize", "--in", in, "--out", int8Path); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing --in", []string{"--out", out}, `required flag(s) "in" not set`},
		{"absent input", []string{"--in", filepath.Join(dir, "absent"), "--out", out}, "--in " + filepath.Join(dir, "absent") + ": file not found"},
		{"int8 input", []string{"--in", int8Path, "--out", out}, `quantization is "int8-symmetric-v1", want "none"`},
		{"unknown pooling", []string{"--in", in, "--out", out, "--pooling", "max"}, `--pooling "max": use cls or mean`},
		{"negative limit", []string{"--in", in, "--out", out, "--limit", "-1"}, "--limit -1"},
		{"absent captions", []string{"--in", in, "--out", out, "--captions", filepath.Join(dir, "absent.jsonl")}, "read examples"},
		{"targets required", []string{"--in", in, "--out", out, "--require-targets"}, "--require-targets: 0 of 9 targets met, 1 missed (file size ratio), 8 not measured"},
		{"output is input", []string{"--in", in, "--out", in}, "is also --in, an input"},
		{"output is input by another path", []string{"--in", in, "--out", filepath.Join(dir, ".", filepath.Base(in))}, "is also --in, an input"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append([]string{"quantize"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("m3ae-edge quantize (%s) error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestQuantizeHelp(t *testing.T) {
	stdout, _, err := execute(t, "quantize", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"int8-symmetric-v1", "--captions", "--limit", "--report", "--seed", "(default none)", "0 reads all"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("m3ae-edge quantize --help lacks %q:\n%s", want, stdout)
		}
	}
}
