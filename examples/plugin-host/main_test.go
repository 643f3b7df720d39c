package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// goTool returns the go command of the toolchain running the test.
func goTool(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(tool); err == nil {
		return tool
	}
	path, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	return path
}

func goBuild(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(goTool(t), append([]string{"build"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, out)
	}
}

// writeMicroModel writes a micro preset model file with InitModelFile
// weights and the bert-base-uncased vocabulary, and returns its Pipeline.
func writeMicroModel(t *testing.T, path string) *core.Pipeline {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 5)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pipeline, err := core.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return pipeline
}

func TestPluginHostRunsAgainstBuiltPlugin(t *testing.T) {
	dir := t.TempDir()
	pluginPath := filepath.Join(dir, "m3ae-plugin.wasm")
	goBuild(t, []string{"GOOS=wasip1", "GOARCH=wasm"}, "-buildmode=c-shared", "-o", pluginPath, "../../wasm/plugin")
	programPath := filepath.Join(dir, "plugin-host")
	goBuild(t, nil, "-o", programPath, ".")
	modelPath := filepath.Join(dir, "micro.safetensors")
	native := writeMicroModel(t, modelPath)
	imagePath := filepath.Join("..", "..", "testdata", "images", "emoji64.png")
	const caption = "a yellow smiling face"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, programPath,
		"-plugin", pluginPath, "-model", modelPath, "-image", imagePath, "-text", caption,
		"-cache", filepath.Join(dir, "cache"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("plugin-host failed: %v\nstderr:\n%s", err, stderr.Bytes())
	}
	output := stdout.String()
	t.Logf("plugin-host output:\n%s", output)

	// The printed embeddings must be the native ones.
	imageData, err := os.ReadFile(imagePath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := core.DecodeImage(imageData)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		img  image.Image
		text string
	}{
		{"image", img, ""},
		{"text", nil, caption},
		{"both", img, caption},
	} {
		embedding, err := native.Embed(tt.img, tt.text, core.PoolCLS)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%-6s embedding: %s", tt.name, formatVector(embedding))
		if !strings.Contains(output, want) {
			t.Errorf("plugin-host output lacks %q", want)
		}
	}
	for _, want := range []string{"cosine(image, text) = ", "tokens: a yellow smiling face", "hidden "} {
		if !strings.Contains(output, want) {
			t.Errorf("plugin-host output lacks %q", want)
		}
	}
}

func TestPluginHostRejectsMissingFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-image", "x.png", "-text", "a cat"}, "-model is required"},
		{[]string{"-model", "m", "-text", "a cat"}, "-image is required"},
		{[]string{"-model", "m", "-image", "x.png", "-text", "  "}, "-text is required"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}
