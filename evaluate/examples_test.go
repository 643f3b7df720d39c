package evaluate

import (
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTestPNG(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, solidImage(4, color.RGBA{1, 2, 3, 255})); err != nil {
		t.Fatal(err)
	}
}

func TestReadCaptionsLabels(t *testing.T) {
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "images", "a.png"))
	path := filepath.Join(dir, "test.jsonl")
	writeTestFile(t, path, "\ufeff"+`{"image": "images/a.png", "caption": "grinning face", "group": "smileys-emotion"}

{"caption": "red apple", "group": 3}
{"image": "images/a.png", "group": null}
{"image": "images/a.png", "caption": " waving hand ", "tags": ["hand"]}
`)
	examples, err := ReadCaptions(path, "group")
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{Name: path + ":1", ImagePath: filepath.Join(dir, "images", "a.png"), Caption: "grinning face", Label: "smileys-emotion"},
		{Name: path + ":3", Caption: "red apple", Label: "3"},
		{Name: path + ":4", ImagePath: filepath.Join(dir, "images", "a.png")},
		{Name: path + ":5", ImagePath: filepath.Join(dir, "images", "a.png"), Caption: "waving hand"},
	}
	if len(examples) != len(want) {
		t.Fatalf("read %d examples, want %d: %+v", len(examples), len(want), examples)
	}
	for i := range want {
		if examples[i] != want[i] {
			t.Errorf("example %d = %+v, want %+v", i, examples[i], want[i])
		}
	}
	img, err := examples[0].LoadImage()
	if err != nil || img == nil || img.Bounds().Dx() != 4 {
		t.Errorf("LoadImage = %v, %v, want the 4x4 image", img, err)
	}
	if img, err := examples[1].LoadImage(); img != nil || err != nil {
		t.Errorf("LoadImage of a caption-only example = %v, %v, want nil, nil", img, err)
	}
}

func TestReadCaptionsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"invalid JSON", `{"caption": `, "test.jsonl:1: invalid JSON line"},
		{"neither", `{"tags": ["a"]}`, `test.jsonl:1: no "image" and no "caption"`},
		{"missing image", `{"image": "gone.png"}`, `image "gone.png"`},
		{"caption type", `{"caption": 3}`, `field "caption" is 3: want a string`},
		{"label type", `{"caption": "a", "group": true}`, `field "group": value true is not a string or a number`},
		{"empty", "\n\n", "has no examples"},
	} {
		path := filepath.Join(t.TempDir(), "test.jsonl")
		writeTestFile(t, path, tt.text)
		_, err := ReadCaptions(path, "group")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := ReadCaptions(filepath.Join(t.TempDir(), "none.jsonl"), ""); err == nil {
		t.Error("ReadCaptions of a missing file returned no error")
	}
}

func TestReadImageFolder(t *testing.T) {
	root := t.TempDir()
	writeTestPNG(t, filepath.Join(root, "cat", "1.png"))
	writeTestPNG(t, filepath.Join(root, "cat", "more", "2.PNG"))
	writeTestPNG(t, filepath.Join(root, "dog", "3.png"))
	writeTestFile(t, filepath.Join(root, "dog", "notes.txt"), "not an image")
	examples, err := ReadImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range examples {
		rel, _ := filepath.Rel(root, e.ImagePath)
		got = append(got, e.Label+" "+filepath.ToSlash(rel))
	}
	if want := "cat cat/1.png,cat cat/more/2.PNG,dog dog/3.png"; strings.Join(got, ",") != want {
		t.Errorf("ReadImageFolder = %q, want %q", strings.Join(got, ","), want)
	}

	writeTestPNG(t, filepath.Join(root, "loose.png"))
	if _, err := ReadImageFolder(root); err == nil || !strings.Contains(err.Error(), "not in a class subfolder") {
		t.Errorf("ReadImageFolder with an image in the root = %v, want a class subfolder error", err)
	}
	if _, err := ReadImageFolder(t.TempDir()); err == nil || !strings.Contains(err.Error(), "contains no .png") {
		t.Errorf("ReadImageFolder of an empty folder = %v, want a no-images error", err)
	}
}

func TestSubsample(t *testing.T) {
	examples := make([]Example, 10)
	for i := range examples {
		examples[i].Caption = string(rune('a' + i))
	}
	var got strings.Builder
	for _, e := range Subsample(examples, 4) {
		got.WriteString(e.Caption)
	}
	if got.String() != "acfh" {
		t.Errorf("Subsample(10 examples, 4) = %q, want acfh (indices 0, 2, 5, 7)", got.String())
	}
	if len(Subsample(examples, 0)) != 10 || len(Subsample(examples, 20)) != 10 {
		t.Error("Subsample with n <= 0 or n >= len did not return every example")
	}
}
