package main

import (
	"encoding/csv"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readCSV returns the rows of a CSV file, the header first.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

func TestTSNECommandEmojiGroups(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	plotPath, csvPath := filepath.Join(dir, "map.png"), filepath.Join(dir, "points.csv")
	args := []string{"tsne", "--model", model, "--data", fixtureTrainCaptions, "--out", plotPath, "--csv", csvPath,
		"--perplexity", "10", "--iterations", "300", "--width", "640", "--height", "480"}
	stdout, stderr, err := execute(t, args...)
	if err != nil {
		t.Fatalf("m3ae-edge %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	if !strings.Contains(stdout, "t-SNE of 48 examples in 9 classes") {
		t.Errorf("stdout does not count 48 examples in 9 classes:\n%s", stdout)
	}

	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", plotPath, err)
	}
	if size := img.Bounds().Size(); size.X != 640 || size.Y != 480 {
		t.Errorf("plot is %v, want 640x480", size)
	}

	rows := readCSV(t, csvPath)
	if len(rows) != 49 {
		t.Fatalf("CSV has %d rows, want a header and 48 points", len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "x,y,label,name" {
		t.Errorf("CSV header = %q, want x,y,label,name", got)
	}
	for i, row := range rows[1:] {
		for _, v := range row[:2] {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				t.Errorf("row %d: coordinate %q: %v", i+1, v, err)
			}
		}
		if row[2] == "" {
			t.Errorf("row %d has no label", i+1)
		}
		// Rows follow the file: example i is on line i+1.
		if want := fixtureTrainCaptions + ":" + strconv.Itoa(i+1); row[3] != want {
			t.Errorf("row %d name = %q, want %q", i+1, row[3], want)
		}
	}
}

func TestTSNECommandDefaultCSVPath(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	plotPath := filepath.Join(dir, "both.png")
	_, stderr, err := execute(t, "tsne", "--model", model, "--data", fixtureTestCaptions, "--out", plotPath,
		"--input", "both", "--pooling", "mean", "--perplexity", "4", "--iterations", "100", "--limit", "12")
	if err != nil {
		t.Fatalf("m3ae-edge tsne: %v\nstderr:\n%s", err, stderr)
	}
	if rows := readCSV(t, filepath.Join(dir, "both.csv")); len(rows) != 13 {
		t.Errorf("both.csv has %d rows, want a header and the 12 examples of --limit", len(rows))
	}
}

func TestTSNECommandRejects(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	writeClassFolder(t, filepath.Join(dir, "images"), "red", color.RGBA{R: 240}, 4)
	out := filepath.Join(dir, "map.png")
	base := []string{"tsne", "--model", model, "--data", fixtureTestCaptions, "--out", out, "--iterations", "10"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"perplexity", nil, "perplexity 30 is invalid for 16 points"},
		{"input", []string{"--input", "audio"}, `--input "audio": use image, text or both`},
		{"pooling", []string{"--pooling", "max"}, `--pooling "max"`},
		{"limit", []string{"--limit", "-1"}, "--limit -1"},
		{"size", []string{"--width", "0"}, "--width 0"},
		{"same file", []string{"--csv", out}, "is also --out"},
		{"no labels", []string{"--label-field", "colour"}, `has no labelled examples: give a file whose "colour" field`},
		{"no captions", []string{"--data", filepath.Join(dir, "images"), "--input", "text", "--perplexity", "1"}, "has no caption"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append(append([]string{}, base...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
