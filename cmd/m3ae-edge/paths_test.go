package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func TestOutputPathConflicts(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	captions := filepath.Join(dir, "captions.jsonl")
	if err := os.WriteFile(captions, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkpoint := filepath.Join(dir, "checkpoint.pkl")
	if err := os.WriteFile(checkpoint, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"quantize", "--in", model, "--out", out, "--report", model}, "--report " + model + " is also --in, an input"},
		{[]string{"quantize", "--in", model, "--out", out, "--report", out}, "--report " + out + " is also --out"},
		{[]string{"quantize", "--in", model, "--out", out, "--report", captions, "--captions", captions}, "is also --captions"},
		{[]string{"reconstruct", "--model", model, "--text", "a", "--out", model}, "--out " + model + " is also --model"},
		{[]string{"evaluate", "--model", model, "--captions", captions, "--json", model}, "--json " + model + " is also --model"},
		{[]string{"evaluate", "--model", model, "--captions", captions, "--json", captions}, "--json " + captions + " is also --captions"},
		{[]string{"evaluate", "--model", model, "--captions", captions, "--json", out, "--grid", out}, "--grid " + out + " is also --json"},
		{[]string{"import", "--from", "m3ae-jax", checkpoint, "--out", checkpoint}, "--out " + checkpoint + " is also CHECKPOINT"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("m3ae-edge %s: error = %v, want one containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data[8:], []byte("{")) {
		t.Errorf("%s no longer starts with a safetensors header", model)
	}
}

func TestEmptyFlagValueRejected(t *testing.T) {
	tests := [][]string{
		{"embed", "--model", "", "--text", "a"},
		{"embed", "--image", "", "--text", "a"},
		{"reconstruct", "--model", "", "--text", "a"},
	}
	for _, args := range tests {
		_, _, err := execute(t, args...)
		want := args[1] + " is empty"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("m3ae-edge %q: error = %v, want one containing %q", args, err, want)
		}
	}
}

func TestOutputFolderCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	tests := []struct {
		out, want string
	}{
		{filepath.Join(dir, "absent", "q.safetensors"), "folder " + filepath.Join(dir, "absent") + " not found"},
		{dir, "--out " + dir + " is a folder"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, "quantize", "--in", model, "--out", tt.out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("quantize --out %s: error = %v, want one containing %q", tt.out, err, tt.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("%s has %d entries after the rejected runs, want only the model", dir, len(entries))
	}
}

func TestQuantizeBadFlagsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	out := filepath.Join(dir, "q.safetensors")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--image-mask-ratio", "NaN"}, "--image-mask-ratio NaN is out of range"},
		{[]string{"--text-mask-ratio", "2"}, "--text-mask-ratio 2 is out of range"},
		{[]string{"--captions", filepath.Join(dir, "absent.jsonl")}, "absent.jsonl"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append([]string{"quantize", "--in", model, "--out", out}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("quantize %q: error = %v, want one containing %q", tt.args, err, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("quantize %q left %s: %v", tt.args, out, err)
		}
	}
}

func TestWriteFileAtomicKeepsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.json")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFileAtomic(link, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("%s is a %v after the write, want the symbolic link kept", link, info.Mode().Type())
	}
	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "new" {
		t.Errorf("link target contains %q, want %q", data, "new")
	}
}

func TestWriteFileAtomicWritesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "out.png")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	read := make(chan string, 1)
	go func() {
		data, _ := os.ReadFile(fifo)
		read <- string(data)
	}()
	n, err := writeFileAtomic(fifo, func(w io.Writer) error { _, err := io.WriteString(w, "grid"); return err })
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("size %d, want 4", n)
	}
	if got := <-read; got != "grid" {
		t.Errorf("FIFO reader got %q, want %q", got, "grid")
	}
	info, err := os.Lstat(fifo)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("%s is a %v after the write, want the FIFO kept", fifo, info.Mode().Type())
	}
}

func TestOutputModeRejectsBlockDevice(t *testing.T) {
	tests := []struct {
		mode       fs.FileMode
		direct     bool
		wantErrSub string
	}{
		{0o644, false, ""},
		{fs.ModeNamedPipe | 0o600, true, ""},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, true, ""},
		{fs.ModeDevice | 0o660, false, "block device"},
		{fs.ModeSocket | 0o600, false, "not a regular file"},
		{fs.ModeDir | 0o755, false, "is a folder"},
	}
	for _, tt := range tests {
		direct, err := outputMode(tt.mode)
		if direct != tt.direct {
			t.Errorf("outputMode(%v) direct = %v, want %v", tt.mode, direct, tt.direct)
		}
		if tt.wantErrSub == "" && err != nil {
			t.Errorf("outputMode(%v) error = %v, want none", tt.mode, err)
		}
		if tt.wantErrSub != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrSub)) {
			t.Errorf("outputMode(%v) error = %v, want one containing %q", tt.mode, err, tt.wantErrSub)
		}
	}
}

func TestWriteFileAtomicNamesUserPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "q.safetensors")
	_, err := writeFileAtomic(path, func(io.Writer) error { return nil })
	if err == nil {
		t.Fatal("no error for a path in a missing folder")
	}
	if !strings.HasPrefix(err.Error(), path+":") {
		t.Errorf("error = %q, want it to start with %q", err, path)
	}
	if strings.Contains(err.Error(), ".m3ae-edge-") {
		t.Errorf("error = %q names the temporary file", err)
	}
}

func TestReadVocabFileRejectsMissingUnk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vocab.txt")
	if err := os.WriteFile(path, []byte("[PAD]\nhello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readVocabFile(path)
	if err == nil || !strings.Contains(err.Error(), "--vocab "+path) || !strings.Contains(err.Error(), `"[UNK]" is missing`) {
		t.Errorf("readVocabFile error = %v, want one naming --vocab and the missing [UNK]", err)
	}
}

func TestImportRejectsZeroSizes(t *testing.T) {
	dir := t.TempDir()
	checkpoint := filepath.Join(dir, "checkpoint.pkl")
	if err := os.WriteFile(checkpoint, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "model.safetensors")
	for _, flag := range []string{"--image-size", "--text-length"} {
		_, _, err := execute(t, "import", "--from", "m3ae-jax", checkpoint, "--out", out, flag, "0")
		if err == nil || !strings.Contains(err.Error(), flag+" 0") {
			t.Errorf("import %s 0: error = %v, want one naming %s", flag, err, flag)
		}
	}
}

func TestQuotedCaptionKeepsTokensApart(t *testing.T) {
	text := &core.TextReconstruction{Tokens: []string{":", "[x]", "cat"}, Hidden: []bool{true, false, false}}
	if got, want := quotedCaption(text), `[":"] "[x]" "cat"`; got != want {
		t.Errorf("quotedCaption = %s, want %s", got, want)
	}
}

func TestInputErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	notModel := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notModel, []byte("these are not model bytes at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"embed", "--model", notModel, "--text", "a"}, "is not a safetensors model file"},
		{[]string{"embed", "--image", dir}, "--image " + dir + " is a folder"},
		{[]string{"embed", "--model", dir, "--text", "a"}, "--model " + dir + " is a folder"},
		{[]string{"inspect", ""}, "MODEL is empty"},
		{[]string{"serve", "--addr", ""}, "--addr is empty"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("m3ae-edge %q: error = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
