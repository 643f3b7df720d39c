package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// execute runs the root command with args and returns its stdout and
// stderr.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestDataHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"data", "--help"}, []string{"emoji", "fashion-mnist", "stats"}},
		{[]string{"data", "emoji", "--help"}, []string{"emojibase-data@17.0.0", "--max-train", "--test-percent", "in percent", "(default 10)", "--cache"}},
		{[]string{"data", "fashion-mnist", "--help"}, []string{"apt-get install", "--source", "/usr/share/datasets/fashion-mnist", "0 keeps all 60000"}},
		{[]string{"data", "stats", "--help"}, []string{"--image-size", "side in pixels", "(default 64)", "--sample"}},
	}
	for _, tt := range tests {
		stdout, _, err := execute(t, tt.args...)
		if err != nil {
			t.Fatalf("m3ae-edge %s: %v", strings.Join(tt.args, " "), err)
		}
		for _, want := range tt.want {
			if !strings.Contains(stdout, want) {
				t.Errorf("m3ae-edge %s output lacks %q:\n%s", strings.Join(tt.args, " "), want, stdout)
			}
		}
	}
}

// writeFakeEmojiCache writes a cache folder whose node_modules contains the
// pinned emoji packages with two emoji, so no npm run is needed.
func writeFakeEmojiCache(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	png, err := os.ReadFile("../../testdata/emoji-mini/images/google/1f31e.png")
	if err != nil {
		t.Fatal(err)
	}
	write := func(path string, content []byte) {
		t.Helper()
		path = filepath.Join(cache, "node_modules", path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range data.EmojiPackages {
		write(filepath.Join(p.Name, "package.json"), []byte(fmt.Sprintf(`{"version": %q}`, p.Version)))
		write(filepath.Join(p.Name, "LICENSE"), []byte("MIT"))
	}
	for source, pkg := range data.EmojiSources {
		write(filepath.Join(pkg, "emoji.json"), []byte(fmt.Sprintf(
			`[{"unified": "1F31E", "image": "1f31e.png", "has_img_%[1]s": true},
			  {"unified": "2600-FE0F", "image": "2600-fe0f.png", "has_img_%[1]s": true}]`, source)))
		write(filepath.Join(pkg, "img", source, "64", "1f31e.png"), png)
		write(filepath.Join(pkg, "img", source, "64", "2600-fe0f.png"), png)
	}
	write(filepath.Join("emojibase-data", "en", "data.json"), []byte(
		`[{"label": "sun with face", "hexcode": "1F31E", "tags": ["sun"], "group": 5}, {"label": "sun", "hexcode": "2600", "tags": ["sunny"], "group": 5}]`))
	write(filepath.Join("emojibase-data", "meta", "groups.json"), []byte(`{"groups": {"5": "travel-places"}}`))
	return cache
}

func TestDataEmoji(t *testing.T) {
	cache := writeFakeEmojiCache(t)
	out := filepath.Join(t.TempDir(), "emoji")
	t.Setenv("PATH", "") // the packages are in place, so npm must not run
	stdout, _, err := execute(t, "data", "emoji", "--cache", cache, "--out", out, "--test-percent", "0", "--log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"split  google  twitter  total", "train       2        2      4", "test       0        0      0", "wrote " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("data emoji output lacks %q:\n%s", want, stdout)
		}
	}
	lines, err := os.ReadFile(filepath.Join(out, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(lines), "\n"); n != 4 {
		t.Errorf("train.jsonl has %d lines, want 4", n)
	}
}

func TestDataEmojiErrors(t *testing.T) {
	tests := []struct {
		args        []string
		wantInError string
	}{
		{[]string{"data", "emoji"}, `required flag(s) "out" not set`},
		{[]string{"data", "emoji", "--out", "x", "--cache", "CACHE", "--sources", "apple"}, `unknown image set "apple"`},
		{[]string{"data", "emoji", "--out", "x", "--cache", "CACHE", "--test-percent", "101"}, "test percent 101"},
		{[]string{"data", "emoji", "--out", "x", "--log-level", "loud"}, `--log-level "loud"`},
	}
	cache := writeFakeEmojiCache(t)
	t.Chdir(t.TempDir())
	for _, tt := range tests {
		args := make([]string, len(tt.args))
		for i, a := range tt.args {
			args[i] = strings.ReplaceAll(a, "CACHE", cache)
		}
		_, _, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("m3ae-edge %s = %v, want an error containing %q", strings.Join(tt.args, " "), err, tt.wantInError)
		}
	}
}

func TestDataFashionMNIST(t *testing.T) {
	out := t.TempDir()
	// The IDX fixture is written by: go run testdata/pipeline/gen.go
	stdout, _, err := execute(t, "data", "fashion-mnist", "--source", "../../testdata/pipeline/fashion", "--out", out, "--max-train", "2")
	if err != nil {
		t.Fatal(err)
	}
	if want := "train 2 images, test 2 images\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("data fashion-mnist output = %q, want it to start with %q", stdout, want)
	}
	if _, err := os.Stat(filepath.Join(out, "images", "test", "00001.png")); err != nil {
		t.Errorf("output lacks images/test/00001.png: %v", err)
	}

	_, _, err = execute(t, "data", "fashion-mnist", "--source", t.TempDir(), "--out", out)
	if err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Errorf("data fashion-mnist with an empty source = %v, want the Debian package hint", err)
	}
}

func TestDataStats(t *testing.T) {
	stdout, _, err := execute(t, "data", "stats", "--captions", "../../testdata/emoji-mini/train.jsonl", "--image-size", "16")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Mean, Std [3]float32
		Images    int
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("data stats output %q is not JSON: %v", stdout, err)
	}
	if got.Images != 48 {
		t.Errorf("data stats measured %d images, want the 48 of emoji-mini/train.jsonl", got.Images)
	}
	for c := range 3 {
		// Emoji on white are bright: the mean is high but below 1.
		if !(got.Mean[c] > 0.5 && got.Mean[c] < 1 && got.Std[c] > 0.05 && got.Std[c] < 0.5) {
			t.Errorf("channel %d mean %v std %v, want a mean in (0.5, 1) and a std in (0.05, 0.5)", c, got.Mean[c], got.Std[c])
		}
	}

	_, _, err = execute(t, "data", "stats", "--captions", "a.jsonl", "--image-folder", "b")
	if err == nil || !strings.Contains(err.Error(), "exactly one of") {
		t.Errorf("data stats with two sources = %v, want an exactly-one error", err)
	}
}

func TestRunExitCode(t *testing.T) {
	tests := []struct {
		args        []string
		wantCode    int
		wantInError string
	}{
		{[]string{"data", "no-such-command"}, 1, `unknown command "no-such-command" for "m3ae-edge data"`},
		{[]string{"data", "stats"}, 1, "exactly one of"},
		{[]string{"data"}, 0, ""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantInError) {
			t.Errorf("run(%q) = %d with stderr %q, want %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantInError)
		}
	}
}
