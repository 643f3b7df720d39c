package data

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildFashionMNIST(t *testing.T) {
	out := t.TempDir()
	var lastDone, lastTotal int
	counts, err := BuildFashionMNIST(context.Background(), FashionMNISTOptions{
		// Written by: go run testdata/pipeline/gen.go
		SourceDir: filepath.Join(pipelineDir, "fashion"),
		OutDir:    out,
		MaxTrain:  2,
		Progress:  func(done, total int) { lastDone, lastTotal = done, total },
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts["train"] != 2 || counts["test"] != 2 || lastDone != 4 || lastTotal != 4 {
		t.Errorf("counts %v with last progress (%d, %d), want train 2, test 2 and (4, 4)", counts, lastDone, lastTotal)
	}

	for _, split := range []struct {
		name   string
		labels []int
	}{{"train", []int{9, 0}}, {"test", []int{1, 8}}} {
		src, err := OpenCaptions(filepath.Join(out, split.name+".jsonl"), CaptionsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if src.Len() != len(split.labels) {
			t.Fatalf("%s.jsonl has %d examples, want %d", split.name, src.Len(), len(split.labels))
		}
		for n, wantLabel := range split.labels {
			ex, err := src.Example(n)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Kind != ImageOnly || ex.Label != wantLabel {
				t.Errorf("%s example %d = (%v, label %d), want (image-only, %d)", split.name, n, ex.Kind, ex.Label, wantLabel)
			}
		}
	}

	text, err := os.ReadFile(filepath.Join(out, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	wantLine := `{"image":"images/train/00000.png","label":9,"class":"Ankle boot"}`
	if first, _, _ := strings.Cut(string(text), "\n"); first != wantLine {
		t.Errorf("train.jsonl line 1 = %s, want %s", first, wantLine)
	}

	// Image 1 of train: pixel (x, y) = (40 + 8y + x) % 256, stored as grey.
	f, err := os.Open(filepath.Join(out, "images", "train", "00001.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	gray, ok := img.(*image.Gray)
	if !ok || gray.Bounds().Dx() != 28 || gray.Bounds().Dy() != 28 {
		t.Fatalf("00001.png is %T of %v, want a 28x28 grey image", img, img.Bounds())
	}
	for _, p := range [][2]int{{0, 0}, {27, 3}, {5, 27}} {
		if got, want := gray.GrayAt(p[0], p[1]).Y, uint8((40+8*p[1]+p[0])%256); got != want {
			t.Errorf("00001.png pixel %v = %d, want %d", p, got, want)
		}
	}
	if licence, err := os.ReadFile(filepath.Join(out, "LICENSE")); err != nil || !strings.Contains(string(licence), "Zalando SE") {
		t.Errorf("LICENSE = %q, %v, want Zalando's MIT licence", licence, err)
	}
}

func TestBuildFashionMNISTMissing(t *testing.T) {
	_, err := BuildFashionMNIST(context.Background(), FashionMNISTOptions{SourceDir: t.TempDir(), OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") ||
		!strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
		t.Errorf("BuildFashionMNIST(empty folder) = %v, want an error naming the file and the Debian package", err)
	}
}
