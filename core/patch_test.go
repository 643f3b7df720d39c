package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPatchifyIndexing checks a 4x4 image cut into 2x2 patches against
// indexes worked out by hand. img[i] = i, so each patch lists the flat
// image indexes it copies: two pixels (6 values) of row 0 of the patch,
// then two pixels of row 1.
func TestPatchifyIndexing(t *testing.T) {
	cfg := Config{ImageSize: 4, PatchSize: 2}
	img := make([]float32, 4*4*Channels)
	for i := range img {
		img[i] = float32(i)
	}
	want := [][]float32{
		{0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17},       // gy 0, gx 0
		{6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23},     // gy 0, gx 1
		{24, 25, 26, 27, 28, 29, 36, 37, 38, 39, 40, 41}, // gy 1, gx 0
		{30, 31, 32, 33, 34, 35, 42, 43, 44, 45, 46, 47}, // gy 1, gx 1
	}
	got := make([]float32, cfg.NumPatches()*cfg.PatchDim())
	Patchify(got, img, cfg)
	for n, patch := range want {
		if gotPatch := got[n*12 : (n+1)*12]; !slices.Equal(gotPatch, patch) {
			t.Errorf("Patchify(4x4, p=2) patch %d = %v, want %v", n, gotPatch, patch)
		}
	}
}

// TestPatchifyFormula checks every element against the documented index
// formula and the round trip through Unpatchify, for each preset.
func TestPatchifyFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range PresetNames() {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		p, grid, side := cfg.PatchSize, cfg.GridSize(), cfg.ImageSize
		img := make([]float32, side*side*Channels)
		for i := range img {
			img[i] = rng.Float32()
		}
		patches := make([]float32, cfg.NumPatches()*cfg.PatchDim())
		Patchify(patches, img, cfg)

		for gy := range grid {
			for gx := range grid {
				n := gy*grid + gx
				for py := range p {
					for px := range p {
						for c := range Channels {
							got := patches[n*p*p*Channels+(py*p+px)*Channels+c]
							want := img[((gy*p+py)*side+gx*p+px)*Channels+c]
							if got != want {
								t.Fatalf("Patchify(%s) patch %d (py %d, px %d, c %d) = %v, want %v", name, n, py, px, c, got, want)
							}
						}
					}
				}
			}
		}

		back := make([]float32, len(img))
		Unpatchify(back, patches, cfg)
		if !slices.Equal(back, img) {
			t.Errorf("Unpatchify(Patchify(%s image)) differs from the image", name)
		}
	}
}

func TestPatchifyPanicsOnMisuse(t *testing.T) {
	micro, err := Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	imageLen := micro.ImageSize * micro.ImageSize * Channels
	patchesLen := micro.NumPatches() * micro.PatchDim()
	tests := []struct {
		name       string
		cfg        Config
		patchesLen int
		imageLen   int
	}{
		{"short image", micro, patchesLen, imageLen - 1},
		{"long patches", micro, patchesLen + 1, imageLen},
		{"patch size not dividing", Config{ImageSize: 10, PatchSize: 4}, 75, 300},
		{"zero patch size", Config{ImageSize: 4}, 0, 48},
	}
	for _, tt := range tests {
		for _, fn := range []string{"Patchify", "Unpatchify"} {
			t.Run(fmt.Sprintf("%s %s", fn, tt.name), func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%s) did not panic", fn, tt.name)
					}
				}()
				patches := make([]float32, tt.patchesLen)
				img := make([]float32, tt.imageLen)
				if fn == "Patchify" {
					Patchify(patches, img, tt.cfg)
				} else {
					Unpatchify(img, patches, tt.cfg)
				}
			})
		}
	}
}

func BenchmarkPatchify(b *testing.B) {
	cfg, err := Preset("small")
	if err != nil {
		b.Fatal(err)
	}
	img := make([]float32, cfg.ImageSize*cfg.ImageSize*Channels)
	patches := make([]float32, cfg.NumPatches()*cfg.PatchDim())
	for b.Loop() {
		Patchify(patches, img, cfg)
	}
}
