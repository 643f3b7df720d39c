package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/defaultmodel"
)

func TestInspectCommandPlain(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	info, err := os.Stat(model)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := execute(t, "inspect", model)
	if err != nil {
		t.Fatalf("m3ae-edge inspect: %v\nstderr:\n%s", err, stderr)
	}
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"image_size", "patch_size", "text_length", "vocab_size", "emb_dim", "depth", "num_heads",
		"dec_emb_dim", "dec_depth", "dec_num_heads", "mlp_ratio",
		"quantization:", "none",
		"mean [0.5762 0.5503 0.5213], std [0.3207 0.3169 0.3307]",
		"vocabulary:", "30522 tokens",
		"tensor", "dtype", "shape", "bytes", "text_embedding.embedding", "F32", "[30522 32]", "3906816",
		" parameters", " tensor bytes",
		"file size " + strconv.FormatInt(info.Size(), 10) + " bytes",
		strconv.Itoa(cfg.NumParams()) + " parameters",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("m3ae-edge inspect output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestInspectCommandJSON(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	int8Model := filepath.Join(dir, "micro.int8.safetensors")
	if _, _, err := execute(t, "quantize", "--in", model, "--out", int8Model); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path         string
		quantization string
	}{{model, core.QuantizationNone}, {int8Model, core.QuantizationInt8}} {
		stdout, stderr, err := execute(t, "inspect", tt.path, "--json")
		if err != nil {
			t.Fatalf("m3ae-edge inspect %s --json: %v\nstderr:\n%s", tt.path, err, stderr)
		}
		var got modelSummary
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("m3ae-edge inspect --json output: %v\n%s", err, stdout)
		}
		cfg, err := core.Preset("micro")
		if err != nil {
			t.Fatal(err)
		}
		if got.Config != cfg {
			t.Errorf("%s config = %+v, want the micro preset %+v", tt.path, got.Config, cfg)
		}
		if got.Quantization != tt.quantization {
			t.Errorf("%s quantization = %q, want %q", tt.path, got.Quantization, tt.quantization)
		}
		if got.ImageNorm != core.CC12MNorm {
			t.Errorf("%s image_norm = %+v, want %+v", tt.path, got.ImageNorm, core.CC12MNorm)
		}
		if got.VocabSize != core.BertVocabSize {
			t.Errorf("%s vocab_size = %d, want %d", tt.path, got.VocabSize, core.BertVocabSize)
		}
		if got.Parameters != cfg.NumParams() {
			t.Errorf("%s parameters = %d, want %d", tt.path, got.Parameters, cfg.NumParams())
		}
		info, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got.FileSizeBytes != info.Size() {
			t.Errorf("%s file_size_bytes = %d, want %d", tt.path, got.FileSizeBytes, info.Size())
		}
		var values, bytes int64
		for _, row := range got.Tensors {
			elements := int64(1)
			for _, d := range row.Shape {
				elements *= int64(d)
			}
			if row.Bytes != elements*int64(row.DType.Size()) {
				t.Errorf("%s tensor %s bytes = %d, want %d elements of %s", tt.path, row.Name, row.Bytes, elements, row.DType)
			}
			values += elements
			bytes += row.Bytes
		}
		if got.StoredValues != values || got.TensorBytes != bytes {
			t.Errorf("%s totals = %d values, %d bytes, want %d and %d", tt.path, got.StoredValues, got.TensorBytes, values, bytes)
		}
		if got.TensorBytes >= got.FileSizeBytes {
			t.Errorf("%s tensor_bytes %d, want under the file size %d", tt.path, got.TensorBytes, got.FileSizeBytes)
		}
	}
}

// TestInspectCommandDefaultModel describes the model embedded from
// defaultmodel when no file is given.
func TestInspectCommandDefaultModel(t *testing.T) {
	stdout, _, err := execute(t, "inspect", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got modelSummary
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("decode --json output: %v\n%s", err, stdout)
	}
	if got.Path != defaultModelLabel {
		t.Errorf("path = %q, want %q", got.Path, defaultModelLabel)
	}
	if want := int64(len(defaultmodel.Bytes())); got.FileSizeBytes != want {
		t.Errorf("file_size_bytes = %d, want %d", got.FileSizeBytes, want)
	}
	if got.Quantization != core.QuantizationInt8 {
		t.Errorf("quantization = %q, want %q", got.Quantization, core.QuantizationInt8)
	}
}

func TestInspectCommandRejects(t *testing.T) {
	dir := t.TempDir()
	badModel, _ := writeBadFiles(t, dir)
	absent := filepath.Join(dir, "absent")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two models", []string{"a.safetensors", "b.safetensors"}, "accepts at most 1 arg(s), received 2"},
		{"absent model", []string{absent}, "model " + absent + ": file not found: check the path"},
		{"bad model", []string{badModel}, "model " + badModel + ": invalid model file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"inspect"}, tt.args...)...)
			if err == nil {
				t.Fatalf("m3ae-edge inspect %v succeeded, want an error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("m3ae-edge inspect %v error = %q, want it to contain %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("m3ae-edge inspect %v error has more than one line: %q", tt.args, err)
			}
		})
	}
}
