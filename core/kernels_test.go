package core

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Tolerances of the float32 kernels against float64 references.
const (
	// matMulTolerance bounds |got - want| relative to the sum of the
	// absolute products, the scale of float32 accumulation error.
	matMulTolerance = 1e-6
	// layerNormTolerance bounds the error of LayerNorm outputs relative to
	// max(1, |want|) for rows with a mean of order 1.
	layerNormTolerance = 2e-6
	// layerNormOffsetTolerance is layerNormTolerance for rows with a mean
	// of 100, where the float32 sum that gives the mean carries an error
	// of about 1e-5.
	layerNormOffsetTolerance = 3e-5
	// exp32Tolerance bounds the relative error of exp32, about 4 ulps.
	exp32Tolerance = 5e-7
	// tanh32Tolerance bounds the absolute error of tanh32.
	tanh32Tolerance = 2e-7
	// gelu32Tolerance bounds the absolute error of gelu32 relative to
	// max(1, |x|).
	gelu32Tolerance = 2e-7
	// softmaxTolerance bounds the absolute error of each probability.
	softmaxTolerance = 1e-6
	// attentionTolerance bounds the absolute error of attention outputs of
	// order 1.
	attentionTolerance = 2e-6
)

// matMulFlax packs a float32 kernel w [in, out] in flax's layout (element
// (k, j) at k*out + j) and runs matMul, as a Model runs a float32 layer.
func matMulFlax(dst, x, w, bias []float32, rows, in, out int) {
	d := packDense(w, bias, in, out)
	matMul(dst, x, &d, rows, &matMulScratch{})
}

// matMulInt8Flax packs an int8 kernel q [in, out] with its column scales
// and runs matMul, as a Model runs an int8 layer.
func matMulInt8Flax(dst, x []float32, q []int8, scale, bias []float32, rows, in, out int) {
	d := packDenseInt8(q, scale, bias, in, out)
	matMul(dst, x, &d, rows, &matMulScratch{})
}

func uniformFloats(rng *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32((rng.Float64()*2 - 1) * scale)
	}
	return s
}

func TestMatMulMatchesFloat64(t *testing.T) {
	shapes := []struct{ rows, in, out int }{
		{1, 1, 1}, {1, 5, 4}, {2, 3, 4}, {3, 5, 7}, {4, 8, 8}, {5, 17, 9}, {7, 33, 30},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		for _, withBias := range []bool{true, false} {
			x := uniformFloats(rng, s.rows*s.in, 2)
			w := uniformFloats(rng, s.in*s.out, 1)
			var bias []float32
			if withBias {
				bias = uniformFloats(rng, s.out, 1)
			}
			dst := make([]float32, s.rows*s.out)
			matMulFlax(dst, x, w, bias, s.rows, s.in, s.out)

			for i := range s.rows {
				for j := range s.out {
					want, scale := 0.0, 0.0
					if bias != nil {
						want, scale = float64(bias[j]), math.Abs(float64(bias[j]))
					}
					for k := range s.in {
						p := float64(x[i*s.in+k]) * float64(w[k*s.out+j])
						want += p
						scale += math.Abs(p)
					}
					got := float64(dst[i*s.out+j])
					if math.Abs(got-want) > matMulTolerance*scale {
						t.Errorf("matMul(%dx%dx%d, bias %v)[%d,%d] = %v, want %v",
							s.rows, s.in, s.out, withBias, i, j, got, want)
					}
				}
			}
		}
	}
}

// A row's result must not depend on how many rows are multiplied with it,
// because the encoder gathers a different number of rows for each mask.
func TestMatMulRowsIndependent(t *testing.T) {
	const rows, in, out = 5, 19, 11
	rng := rand.New(rand.NewPCG(3, 4))
	x := uniformFloats(rng, rows*in, 3)
	w := uniformFloats(rng, in*out, 1)
	bias := uniformFloats(rng, out, 1)
	all := make([]float32, rows*out)
	matMulFlax(all, x, w, bias, rows, in, out)

	one := make([]float32, out)
	for i := range rows {
		matMulFlax(one, x[i*in:(i+1)*in], w, bias, 1, in, out)
		for j := range out {
			if math.Float32bits(one[j]) != math.Float32bits(all[i*out+j]) {
				t.Errorf("matMul(row %d alone)[%d] = %v, want %v (bits of the %d-row product)", i, j, one[j], all[i*out+j], rows)
			}
		}
	}
}

func TestMatMulZeroRows(t *testing.T) {
	matMulFlax(nil, nil, make([]float32, 6), nil, 0, 2, 3) // must not panic
}

func TestLayerNormMatchesFloat64(t *testing.T) {
	const rows, width = 3, 37
	tests := []struct {
		name      string
		offset    float32
		tolerance float64
	}{
		{"centered", 0.5, layerNormTolerance},
		{"mean 100", 100, layerNormOffsetTolerance},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range tests {
		x := uniformFloats(rng, rows*width, 4)
		for i := range x {
			x[i] += tc.offset
		}
		scale := uniformFloats(rng, width, 2)
		bias := uniformFloats(rng, width, 1)
		dst := make([]float32, rows*width)
		layerNorm(dst, x, scale, bias, rows, width)

		for i := range rows {
			row := x[i*width : (i+1)*width]
			mean, variance := 0.0, 0.0
			for _, v := range row {
				mean += float64(v)
			}
			mean /= width
			for _, v := range row {
				variance += (float64(v) - mean) * (float64(v) - mean)
			}
			variance /= width
			for k, v := range row {
				want := (float64(v)-mean)/math.Sqrt(variance+layerNormEps)*float64(scale[k]) + float64(bias[k])
				if got := float64(dst[i*width+k]); math.Abs(got-want) > tc.tolerance*math.Max(1, math.Abs(want)) {
					t.Errorf("layerNorm(%s, row %d)[%d] = %v, want %v", tc.name, i, k, got, want)
				}
			}
		}

		// In place gives the same bits.
		inPlace := append([]float32(nil), x...)
		layerNorm(inPlace, inPlace, scale, bias, rows, width)
		for i := range dst {
			if math.Float32bits(inPlace[i]) != math.Float32bits(dst[i]) {
				t.Fatalf("layerNorm(%s, in place)[%d] = %v, want %v", tc.name, i, inPlace[i], dst[i])
			}
		}
	}
}

func TestExp32MatchesFloat64(t *testing.T) {
	for x := -87.0; x <= 88.5; x += 0.0137 {
		got := float64(exp32(float32(x)))
		want := math.Exp(float64(float32(x)))
		if math.Abs(got-want) > exp32Tolerance*want {
			t.Errorf("exp32(%v) = %v, want %v", float32(x), got, want)
		}
	}
}

func TestExp32Special(t *testing.T) {
	tests := []struct {
		name string
		x    float32
		want float32
	}{
		{"zero", 0, 1},
		{"masked score", maskedScore, 0},
		{"below underflow", -88, 0},
		{"overflow", 89, float32(math.Inf(1))},
		{"largest", 88.7, float32(math.Exp(float64(float32(88.7))))},
	}
	for _, tc := range tests {
		got := exp32(tc.x)
		if tc.name == "largest" {
			if math.Abs(float64(got-tc.want)) > exp32Tolerance*float64(tc.want) {
				t.Errorf("exp32(%v) = %v, want %v", tc.x, got, tc.want)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("exp32(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
	if got := exp32(float32(math.NaN())); got == got {
		t.Errorf("exp32(NaN) = %v, want NaN", got)
	}
}

func TestTanh32MatchesFloat64(t *testing.T) {
	for x := -12.0; x <= 12; x += 0.00731 {
		got := float64(tanh32(float32(x)))
		want := math.Tanh(float64(float32(x)))
		if math.Abs(got-want) > tanh32Tolerance {
			t.Errorf("tanh32(%v) = %v, want %v", float32(x), got, want)
		}
	}
	for _, x := range []float32{0, 1e-5, -1e-5, 2e-4, 9.2, -9.2, 1e30} {
		got := float64(tanh32(x))
		want := math.Tanh(float64(x))
		if float64(float32(want)) != got {
			t.Errorf("tanh32(%v) = %v, want %v", x, got, float32(want))
		}
	}
}

func TestGelu32MatchesFloat64(t *testing.T) {
	for x := -10.0; x <= 10; x += 0.00917 {
		v := float64(float32(x))
		want := 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		got := float64(gelu32(float32(x)))
		if math.Abs(got-want) > gelu32Tolerance*math.Max(1, math.Abs(v)) {
			t.Errorf("gelu32(%v) = %v, want %v", float32(x), got, want)
		}
	}
}

func TestSoftmaxMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := uniformFloats(rng, 50, 8)
	x[3] = maskedScore
	probs := append([]float32(nil), x...)
	softmaxInPlace(probs)

	maxValue := math.Inf(-1)
	for _, v := range x {
		maxValue = math.Max(maxValue, float64(v))
	}
	sum := 0.0
	for _, v := range x {
		sum += math.Exp(float64(v) - maxValue)
	}
	for i, v := range x {
		want := math.Exp(float64(v)-maxValue) / sum
		if got := float64(probs[i]); math.Abs(got-want) > softmaxTolerance {
			t.Errorf("softmax(x)[%d] = %v, want %v", i, got, want)
		}
	}
	if probs[3] != 0 {
		t.Errorf("softmax(x)[3] = %v for a masked score, want 0", probs[3])
	}
}

// attentionFloat64 is a plain reference of attention in float64.
func attentionFloat64(qkv []float32, keyPad []bool, n, numHeads, headDim int) []float64 {
	width := numHeads * headDim
	at := func(i, part, h, d int) float64 { return float64(qkv[i*3*width+part*width+h*headDim+d]) }
	out := make([]float64, n*width)
	for h := range numHeads {
		for i := range n {
			scores := make([]float64, n)
			maxScore := math.Inf(-1)
			for j := range n {
				s := 0.0
				for d := range headDim {
					s += at(i, 0, h, d) * at(j, 1, h, d)
				}
				s /= math.Sqrt(float64(headDim))
				if keyPad[j] {
					s = maskedScore
				}
				scores[j] = s
				maxScore = math.Max(maxScore, s)
			}
			sum := 0.0
			for j := range scores {
				scores[j] = math.Exp(scores[j] - maxScore)
				sum += scores[j]
			}
			for d := range headDim {
				v := 0.0
				for j := range n {
					v += scores[j] / sum * at(j, 2, h, d)
				}
				out[i*width+h*headDim+d] = v
			}
		}
	}
	return out
}

func TestAttentionMatchesFloat64(t *testing.T) {
	const n, numHeads, headDim = 7, 3, 5
	width := numHeads * headDim
	rng := rand.New(rand.NewPCG(9, 10))
	qkv := uniformFloats(rng, n*3*width, 2)
	keyPad := []bool{false, false, true, false, true, false, false}
	dst := make([]float32, n*width)
	attention(dst, qkv, make([]float32, n), keyPad, n, numHeads, headDim, nil)

	want := attentionFloat64(qkv, keyPad, n, numHeads, headDim)
	for i := range dst {
		if math.Abs(float64(dst[i])-want[i]) > attentionTolerance {
			t.Errorf("attention(qkv)[%d] (token %d, head %d) = %v, want %v", i, i/width, (i%width)/headDim, dst[i], want[i])
		}
	}

	// A padded key's value must not reach any output.
	for d := range width {
		qkv[2*3*width+2*width+d] = 1e6
	}
	again := make([]float32, n*width)
	attention(again, qkv, make([]float32, n), keyPad, n, numHeads, headDim, nil)
	for i := range dst {
		if math.Float32bits(again[i]) != math.Float32bits(dst[i]) {
			t.Fatalf("attention(qkv with a changed pad value)[%d] = %v, want %v", i, again[i], dst[i])
		}
	}
}

// TestNoFusedMultiplyAdd compiles the package for targets whose compiler
// fuses x*y + z and checks the compiler's assembly listing for fused
// instructions, because a fused multiply-add rounds once where the wasm
// build rounds twice and so breaks bit identity across targets. The
// listing comes from -gcflags=-S; go tool objdump cannot decode the VEX
// encoding of amd64's FMA instructions.
func TestNoFusedMultiplyAdd(t *testing.T) {
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs to run the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	targets := []struct {
		name  string
		env   []string
		fused *regexp.Regexp
	}{
		{"arm64", []string{"GOARCH=arm64"}, regexp.MustCompile(`\tF(N)?M(ADD|SUB)[SD]\b`)},
		{"amd64 v3", []string{"GOARCH=amd64", "GOAMD64=v3"}, regexp.MustCompile(`\tVF(N)?M(ADD|SUB)`)},
	}
	location := regexp.MustCompile(`\(([^()]+\.go:\d+)\)`)
	for _, target := range targets {
		// A -trimpath prefix that matches no file changes nothing but the
		// build's cache key, so the compiler runs and prints its listing.
		dir := t.TempDir()
		build := exec.Command(goTool, "build", "-gcflags=-S -trimpath="+filepath.Join(dir, "none"),
			"-o", filepath.Join(dir, "core.a"), ".")
		build.Env = append(append(os.Environ(), "GOOS=linux"), target.env...)
		var listing bytes.Buffer // the compiler prints -S listings on stderr
		build.Stdout = &listing
		build.Stderr = &listing
		if err := build.Run(); err != nil {
			t.Fatalf("go build for %s: %v\n%s", target.name, err, listing.Bytes())
		}
		if !strings.Contains(listing.String(), " STEXT ") {
			t.Fatalf("go build -gcflags=-S for %s printed no assembly listing", target.name)
		}

		function := ""
		scanner := bufio.NewScanner(&listing)
		scanner.Buffer(nil, 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			if name, _, ok := strings.Cut(line, " STEXT "); ok {
				function = name
				continue
			}
			if target.fused.MatchString(line) {
				where := ""
				if m := location.FindStringSubmatch(line); m != nil {
					where = filepath.Base(m[1])
				}
				t.Errorf("%s build: %s at %s has a fused multiply-add; round the product with an explicit conversion",
					target.name, function, where)
			}
		}
	}
}
