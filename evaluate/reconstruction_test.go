package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

func TestPSNRDB(t *testing.T) {
	tests := []struct {
		mse, want float64
	}{
		{0, MaxPSNR},
		{255 * 255, 0},
		{1, 20 * math.Log10(255)},
		{1e-12, MaxPSNR}, // 158 dB, capped
	}
	for _, tt := range tests {
		if got := psnrDB(tt.mse); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("psnrDB(%v) = %v, want %v", tt.mse, got, tt.want)
		}
	}
}

func TestPSNRTotalsPerfectReconstruction(t *testing.T) {
	var totals psnrTotals
	totals.add(0, 192)
	got := totals.psnr()
	want := PSNR{MeanDB: MaxPSNR, MSE: 0, PooledDB: MaxPSNR, PerfectExamples: 1}
	if got != want {
		t.Errorf("PSNR of a perfect reconstruction = %+v, want %+v", got, want)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("PSNR of a perfect reconstruction does not marshal: %v", err)
	}

	// A second example with MSE 1 averages with the capped value and
	// pools its error over both examples' values.
	totals.add(192, 192)
	got = totals.psnr()
	if want := (MaxPSNR + 20*math.Log10(255)) / 2; math.Abs(got.MeanDB-want) > 1e-9 {
		t.Errorf("mean PSNR = %v, want %v", got.MeanDB, want)
	}
	if got.MSE != 0.5 || got.PerfectExamples != 1 {
		t.Errorf("MSE %v and perfect examples %d, want 0.5 and 1", got.MSE, got.PerfectExamples)
	}
	if want := 10 * math.Log10(255*255/0.5); math.Abs(got.PooledDB-want) > 1e-9 {
		t.Errorf("pooled PSNR = %v, want %v", got.PooledDB, want)
	}
}

// solidImage returns a size x size opaque image of one colour.
func solidImage(size int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:i+4], []uint8{c.R, c.G, c.B, c.A})
	}
	return img
}

func TestFillMeanColourConstantImage(t *testing.T) {
	img := solidImage(8, color.RGBA{200, 100, 7, 255})
	hidden := []bool{true, false, true, true} // 2x2 grid of 4x4 patches
	filled := fillMeanColour(img, hidden, 4)
	sum, count := squaredError(filled, img, hidden, 4)
	if sum != 0 || count != 3*16*3 {
		t.Errorf("squared error of the baseline on a constant image = %v over %d values, want 0 over %d", sum, count, 3*16*3)
	}
}

func TestFillMeanColourHandComputed(t *testing.T) {
	// A 2x2 image in 1x1 patches: the top-right pixel is hidden, and the
	// mean of the other three is (10, 20, 30.33), which rounds to
	// (10, 20, 30).
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.SetRGBA(0, 0, color.RGBA{10, 20, 30, 255})
	img.SetRGBA(1, 0, color.RGBA{255, 255, 255, 255})
	img.SetRGBA(0, 1, color.RGBA{20, 40, 60, 255})
	img.SetRGBA(1, 1, color.RGBA{0, 0, 1, 255})
	hidden := []bool{false, true, false, false}
	filled := fillMeanColour(img, hidden, 1)
	if got, want := filled.RGBAAt(1, 0), (color.RGBA{10, 20, 30, 255}); got != want {
		t.Errorf("filled hidden pixel = %v, want %v", got, want)
	}
	if got := filled.RGBAAt(0, 1); got != img.RGBAAt(0, 1) {
		t.Errorf("visible pixel changed to %v", got)
	}
	if got := img.RGBAAt(1, 0); got != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("fillMeanColour changed its input to %v", got)
	}

	// Errors: 245^2 + 235^2 + 225^2 on the hidden pixel's three values.
	sum, count := squaredError(filled, img, hidden, 1)
	if want := 245.0*245 + 235*235 + 225*225; sum != want || count != 3 {
		t.Errorf("hidden squared error = %v over %d values, want %v over 3", sum, count, want)
	}
	sum, count = squaredError(filled, img, nil, 1)
	if want := 245.0*245 + 235*235 + 225*225; sum != want || count != 12 {
		t.Errorf("whole-image squared error = %v over %d values, want %v over 12", sum, count, want)
	}
}

func TestTopKCounts(t *testing.T) {
	ranked := []int32{5, 3, 9, 1, 2}
	var counts topKCounts
	for _, want := range []int32{5, 2, 7, 3} {
		counts.add(ranked, want)
	}
	counts.add(nil, 5) // no predictions: never right
	if counts.top1 != 1 || counts.topK != 3 {
		t.Errorf("counts = %+v, want 1 at rank 1 (5) and 3 in the top 5 (5, 2, 3)", counts)
	}
	got := counts.accuracy(5)
	want := Accuracy{Top1: 0.2, Top5: 0.6, Top1Correct: 1, Top5Correct: 3}
	if got != want {
		t.Errorf("accuracy = %+v, want %+v", got, want)
	}
}

// microPipeline returns a pipeline of the micro preset with random
// weights: 16x16 images in 16 patches of 4x4, 16 text positions.
func microPipeline(t *testing.T) *core.Pipeline {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := core.NewPipeline(mf)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluateMicroModel(t *testing.T) {
	p := microPipeline(t)
	examples := []Example{
		{Name: "red", Image: solidImage(16, color.RGBA{255, 0, 0, 255}), Caption: "red apple"},
		{Name: "green", Image: solidImage(16, color.RGBA{0, 128, 0, 255}), Caption: "green apple pie"},
		{Name: "blue", Image: solidImage(16, color.RGBA{0, 0, 255, 255})},
		{Name: "text", Caption: "apple"},
	}
	freq := CountTokens(p.Tokenizer(), p.Config().TextLength, []string{"apple apple", "apple pie", "red"})
	opts := DefaultOptions()
	opts.Seed = 10
	opts.Frequencies = freq
	var progress []int
	opts.Progress = func(done, total int) { progress = append(progress, done, total) }
	report, err := Evaluate(context.Background(), p, examples, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 8 || progress[6] != 4 || progress[7] != 4 {
		t.Errorf("progress calls = %v, want four ending at (4, 4)", progress)
	}

	// Image: three images, 12 of 16 patches hidden, each image one colour,
	// so the mean-colour baseline is exact.
	img := report.Image
	if img == nil || img.Examples != 3 || img.HiddenPatches != 12 || img.Patches != 16 {
		t.Fatalf("image report = %+v, want 3 examples with 12 of 16 patches hidden", img)
	}
	if img.MeanColour.HiddenPatches.PerfectExamples != 3 || img.MeanColour.HiddenPatches.MeanDB != MaxPSNR {
		t.Errorf("mean-colour baseline on solid images = %+v, want exact", img.MeanColour.HiddenPatches)
	}
	// The visible patches are exact, so the whole image's MSE is the
	// hidden patches' MSE times 12/16.
	if got, want := img.Model.WholeImage.MSE, img.Model.HiddenPatches.MSE*12/16; math.Abs(got-want) > 1e-9*want {
		t.Errorf("whole-image MSE = %v, want hidden MSE x 12/16 = %v", got, want)
	}
	if img.Model.HiddenPatches.MSE == 0 {
		t.Error("a random model reconstructed every hidden patch exactly")
	}

	// Masked tokens: the hidden non-pad positions of the masks drawn from
	// seed 10+i.
	wantHidden := 0
	for i, example := range examples {
		masks, err := core.RandomMasks(p.Config(), 0.75, 0.75, 10+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		n := len(p.Tokenizer().EncodeNoPad(example.Caption))
		for pos := range n {
			if masks.Text[pos] {
				wantHidden++
			}
		}
	}
	if wantHidden == 0 {
		t.Fatal("the masks hide no caption token: pick another seed")
	}
	if report.MaskedTokens == nil || report.MaskedTokens.Tokens != wantHidden {
		t.Errorf("masked tokens report = %+v, want %d scored tokens", report.MaskedTokens, wantHidden)
	}

	// Caption from image: all 5 tokens of the two captioned images. The
	// baseline's first guess is "apple" (3 of the 5 counted tokens), which
	// is 2 of them. Its top 5 is "apple", then "red" and "pie", which tie
	// and go by id, so it covers all but "green".
	fromImage := report.CaptionFromImage
	if fromImage == nil || fromImage.Tokens != 5 || fromImage.Examples != 2 {
		t.Fatalf("caption-from-image report = %+v, want 5 tokens of 2 examples", fromImage)
	}
	if fromImage.TextMaskRatio != 1 || fromImage.ImageMaskRatio != 0 {
		t.Errorf("caption-from-image ratios = %v, %v, want text 1 and image 0", fromImage.TextMaskRatio, fromImage.ImageMaskRatio)
	}
	want := Accuracy{Top1: 0.4, Top5: 0.8, Top1Correct: 2, Top5Correct: 4}
	if fromImage.Baseline == nil || *fromImage.Baseline != want {
		t.Errorf("caption-from-image baseline = %+v, want %+v", fromImage.Baseline, want)
	}
	if b := report.Baseline; b == nil || b.Captions != 3 || b.Tokens != 5 || strings.Join(b.Top, " ") != "apple red pie" {
		t.Errorf("baseline report = %+v, want 3 captions, 5 tokens, top apple red pie", report.Baseline)
	}

	// The same options give the same report.
	again, err := Evaluate(context.Background(), p, examples, opts)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := json.Marshal(report)
	second, _ := json.Marshal(again)
	if string(first) != string(second) {
		t.Errorf("two evaluations differ:\n%s\n%s", first, second)
	}
}

func TestEvaluateWithoutBaseline(t *testing.T) {
	p := microPipeline(t)
	examples := []Example{{Name: "red", Image: solidImage(16, color.RGBA{255, 0, 0, 255}), Caption: "red apple"}}
	report, err := Evaluate(context.Background(), p, examples, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if report.Baseline != nil || report.CaptionFromImage.Baseline != nil {
		t.Errorf("report without frequencies has a token baseline: %+v", report)
	}
	text, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), `"frequency_baseline":null`) {
		t.Errorf("JSON %s does not mark the missing baseline as null", text)
	}
}

func TestEvaluateRejectsBadOptions(t *testing.T) {
	p := microPipeline(t)
	examples := []Example{{Name: "a", Caption: "apple"}}
	for _, tt := range []struct {
		name              string
		imageRatio, ratio float64
		want              string
	}{
		{"no hidden patch", 0, 0.75, "hides 0 of 16 patches"},
		{"no visible patch", 1, 0.75, "hides 16 of 16 patches"},
		{"text ratio", 0.75, 1.5, "text mask ratio 1.5"},
	} {
		opts := Options{ImageMaskRatio: tt.imageRatio, TextMaskRatio: tt.ratio}
		if _, err := Evaluate(context.Background(), p, examples, opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := Evaluate(context.Background(), p, nil, DefaultOptions()); err == nil {
		t.Error("Evaluate of no examples returned no error")
	}
}

func TestEvaluateCancelled(t *testing.T) {
	p := microPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Evaluate(ctx, p, []Example{{Name: "a", Caption: "apple"}}, DefaultOptions())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate with a cancelled context = %v, want context.Canceled", err)
	}
}
