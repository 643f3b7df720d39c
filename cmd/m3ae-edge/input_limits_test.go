package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sparseFile creates a file of size bytes that takes no disk space, or
// skips the test where the file system cannot.
func sparseFile(t *testing.T, name string, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	return path
}

// TestInputFilesAreBounded gives commands input paths that never end or
// are far over their limits. Reading them filled memory until the process
// died (--image /dev/zero) or ran until killed (inspect /dev/zero). Each
// must fail at once with an error that names the flag and the limit.
func TestInputFilesAreBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	hugeModel := sparseFile(t, "huge.safetensors", 5<<30)
	hugeImage := sparseFile(t, "huge.png", 1<<40)
	imageCaptions := func(image string) string {
		path := filepath.Join(t.TempDir(), "captions.jsonl")
		line := fmt.Sprintf("{\"image\": %q, \"caption\": \"a cat\", \"group\": \"animals\"}\n", image)
		if err := os.WriteFile(path, []byte(strings.Repeat(line, 2)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	out := filepath.Join(dir, "out.safetensors")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"embed", "--model", model, "--image", "/dev/zero"}, "--image /dev/zero: invalid image: image file /dev/zero has more than 67108864 bytes"},
		{[]string{"embed", "--model", model, "--image", hugeImage}, "is 1099511627776 bytes, over the limit of 67108864"},
		{[]string{"embed", "--model", "/dev/zero", "--text", "a"}, "--model /dev/zero: not a regular file"},
		{[]string{"embed", "--model", hugeModel, "--text", "a"}, "file is 5368709120 bytes, over the limit of 4294967296"},
		{[]string{"inspect", "/dev/zero"}, "not a regular file"},
		{[]string{"quantize", "--in", "/dev/zero", "--out", out}, "--in /dev/zero: not a regular file"},
		{[]string{"quantize", "--in", model, "--out", out, "--captions", imageCaptions("/dev/zero")}, "has more than 67108864 bytes"},
		{[]string{"probe", "--model", model, "--train", imageCaptions(hugeImage), "--test", imageCaptions(hugeImage)}, "over the limit of 67108864"},
		{[]string{"import", "--from", "m3ae-jax", "--out", out, "--vocab", "/dev/zero", model}, "--vocab /dev/zero is not a regular file"},
	}
	for _, tt := range tests {
		start := time.Now()
		_, _, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("m3ae-edge %q: error = %v, want one containing %q", tt.args, err, tt.want)
		}
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("m3ae-edge %q took %v to fail, want it to fail at once", tt.args, elapsed)
		}
	}
}
