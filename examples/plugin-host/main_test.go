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

	// Without -text the program embeds the image alone.
	cmd = exec.CommandContext(ctx, programPath,
		"-plugin", pluginPath, "-model", modelPath, "-image", imagePath, "-cache", filepath.Join(dir, "cache"))
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("plugin-host without -text failed: %v\nstderr:\n%s", err, stderr.Bytes())
	}
	imageOnly := stdout.String()
	if !strings.Contains(imageOnly, "image  embedding: ") {
		t.Errorf("plugin-host without -text lacks the image embedding:\n%s", imageOnly)
	}
	for _, unwanted := range []string{"text   embedding", "cosine(", "tokens:"} {
		if strings.Contains(imageOnly, unwanted) {
			t.Errorf("plugin-host without -text prints %q:\n%s", unwanted, imageOnly)
		}
	}

	// A file that is no image fails the image and the pair's request, and
	// the program must report the failure once.
	badImage := filepath.Join(dir, "not-an-image.png")
	if err := os.WriteFile(badImage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.CommandContext(ctx, programPath,
		"-plugin", pluginPath, "-model", modelPath, "-image", badImage, "-text", caption, "-cache", filepath.Join(dir, "cache"))
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("plugin-host with a bad image succeeded, want a failure")
	}
	if got := strings.Count(stderr.String(), "plugin-host:"); got != 1 {
		t.Errorf("plugin-host with a bad image printed %d errors, want 1:\n%s", got, stderr.Bytes())
	}
	if got := strings.Count(stderr.String(), "embedding failed"); got != 1 {
		t.Errorf("plugin-host with a bad image reported %d embedding failures, want 1:\n%s", got, stderr.Bytes())
	}
}

func TestPluginHostRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-image", "x.png", "-text", "a cat"}, "-model is required"},
		{[]string{"-model", "m"}, "nothing to embed: pass -image, -text or both"},
		{[]string{"-model", "m", "-image", "x.png", "-text", "  "}, `-text "  " is blank`},
		{[]string{"-model", "m", "-text", "a cat", "-timeout", "0s"}, "-timeout 0s: want a positive duration"},
		{[]string{"-model", "m", "-text", "a cat", "-timeout", "-1m"}, "-timeout -1m0s: want a positive duration"},
		{[]string{"-model", "m", "-text", "a cat", "-bogus"}, "flag provided but not defined: -bogus (run plugin-host -help"},
		{[]string{"-model", "m", "a cat"}, `unexpected argument "a cat"`},
	}
	for _, tt := range tests {
		var stdout bytes.Buffer
		err := run(context.Background(), tt.args, &stdout)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) wrote %q to stdout, want nothing besides the returned error", tt.args, stdout.String())
		}
	}
}

func TestPluginHostAcceptsEitherInput(t *testing.T) {
	for _, args := range [][]string{
		{"-model", "m", "-image", "x.png"},
		{"-model", "m", "-text", "a cat"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err != nil {
			t.Errorf("parseFlags(%q) = %v, want nil", args, err)
		}
	}
}

func TestPluginHostHelp(t *testing.T) {
	for _, arg := range []string{"-help", "-h"} {
		var stdout bytes.Buffer
		if err := run(context.Background(), []string{arg}, &stdout); err != nil {
			t.Errorf("run(%s) = %v, want nil", arg, err)
		}
		if !strings.Contains(stdout.String(), "-timeout") {
			t.Errorf("run(%s) output lacks the flag list:\n%s", arg, stdout.String())
		}
		if strings.Contains(stdout.String(), "help requested") {
			t.Errorf("run(%s) output contains %q", arg, "help requested")
		}
	}
}
