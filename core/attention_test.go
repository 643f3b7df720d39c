package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

// rowSumTolerance bounds how far a row of float32 probabilities may sum
// from 1.
const rowSumTolerance = 1e-5

// TestAttentionWeightsHandChecked runs one head of width 1 over three
// tokens whose keys are 0, ln 2 and ln 4 and whose queries are all 1, so
// every query's scores are proportional to 1, 2 and 4 after the softmax.
func TestAttentionWeightsHandChecked(t *testing.T) {
	const n = 3
	// Each row is q, k, v for one token.
	qkv := []float32{
		1, 0, 7,
		1, float32(math.Ln2), 14,
		1, float32(2 * math.Ln2), 21,
	}
	tests := []struct {
		name    string
		keyPad  []bool
		probs   []float64
		outputs float64
	}{
		{"no pads", []bool{false, false, false}, []float64{1.0 / 7, 2.0 / 7, 4.0 / 7}, 7.0/7 + 28.0/7 + 84.0/7},
		{"key 1 padded", []bool{false, true, false}, []float64{1.0 / 5, 0, 4.0 / 5}, 7.0/5 + 84.0/5},
	}
	for _, tt := range tests {
		weights := make([]float32, n*n)
		dst := make([]float32, n)
		attention(dst, qkv, make([]float32, n), tt.keyPad, n, 1, 1, weights)
		for i := range n {
			for j := range n {
				got := weights[i*n+j]
				if math.Abs(float64(got)-tt.probs[j]) > 1e-6 {
					t.Errorf("%s: weight (%d, %d) = %v, want %v", tt.name, i, j, got, tt.probs[j])
				}
			}
			if math.Abs(float64(dst[i])-tt.outputs) > 1e-5 {
				t.Errorf("%s: output %d = %v, want %v", tt.name, i, dst[i], tt.outputs)
			}
		}
		if tt.keyPad[1] {
			for i := range n {
				if weights[i*n+1] != 0 {
					t.Errorf("%s: weight (%d, 1) on the padded key = %v, want exactly 0", tt.name, i, weights[i*n+1])
				}
			}
		}

		plain := make([]float32, n)
		attention(plain, qkv, make([]float32, n), tt.keyPad, n, 1, 1, nil)
		for i := range n {
			if math.Float32bits(plain[i]) != math.Float32bits(dst[i]) {
				t.Errorf("%s: output %d = %v without weights, %v with them", tt.name, i, plain[i], dst[i])
			}
		}
	}
}

// attentionProbsFloat64 returns the softmax probabilities [H, n, n] of
// attention in float64.
func attentionProbsFloat64(qkv []float32, keyPad []bool, n, numHeads, headDim int) []float64 {
	width := numHeads * headDim
	at := func(i, part, h, d int) float64 { return float64(qkv[i*3*width+part*width+h*headDim+d]) }
	out := make([]float64, numHeads*n*n)
	for h := range numHeads {
		for i := range n {
			row := out[(h*n+i)*n : (h*n+i+1)*n]
			maxScore := math.Inf(-1)
			for j := range n {
				s := maskedScore
				if !keyPad[j] {
					s = 0
					for d := range headDim {
						s += at(i, 0, h, d) * at(j, 1, h, d)
					}
					s /= math.Sqrt(float64(headDim))
				}
				row[j] = s
				maxScore = math.Max(maxScore, s)
			}
			sum := 0.0
			for j := range row {
				row[j] = math.Exp(row[j] - maxScore)
				sum += row[j]
			}
			for j := range row {
				row[j] /= sum
			}
		}
	}
	return out
}

func TestAttentionWeightsMatchFloat64(t *testing.T) {
	const n, numHeads, headDim = 7, 3, 5
	width := numHeads * headDim
	rng := rand.New(rand.NewPCG(11, 12))
	qkv := uniformFloats(rng, n*3*width, 2)
	keyPad := []bool{false, true, false, false, false, true, false}
	weights := make([]float32, numHeads*n*n)
	attention(make([]float32, n*width), qkv, make([]float32, n), keyPad, n, numHeads, headDim, weights)

	want := attentionProbsFloat64(qkv, keyPad, n, numHeads, headDim)
	for i, w := range want {
		if math.Abs(float64(weights[i])-w) > 1e-6 {
			h, query, key := i/(n*n), i/n%n, i%n
			t.Errorf("weight (head %d, query %d, key %d) = %v, want %v", h, query, key, weights[i], w)
		}
	}
}

// unmaskedCases returns the oracle cases run without masks, as Embed runs
// them.
func unmaskedCases(t testing.TB, cfg Config) []oracleCase {
	t.Helper()
	var out []oracleCase
	for _, c := range oracleCases(t, cfg, 3) {
		switch c.name {
		case "image_text", "image_only", "text_only", "text_pads":
			out = append(out, c)
		}
	}
	return out
}

func TestEmbedWithAttentionKeepsEmbedding(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 2)
	for _, c := range unmaskedCases(t, cfg) {
		for _, pool := range []Pooling{PoolCLS, PoolMean} {
			before, err := m.Embed(c.in, pool)
			if err != nil {
				t.Fatalf("Embed(%s, %v): %v", c.name, pool, err)
			}
			with, _, err := m.EmbedWithAttention(c.in, pool)
			if err != nil {
				t.Fatalf("EmbedWithAttention(%s, %v): %v", c.name, pool, err)
			}
			after, err := m.Embed(c.in, pool)
			if err != nil {
				t.Fatal(err)
			}
			for d := range before {
				if math.Float32bits(with[d]) != math.Float32bits(before[d]) {
					t.Fatalf("EmbedWithAttention(%s, %v)[%d] = %v, want Embed's %v", c.name, pool, d, with[d], before[d])
				}
				if math.Float32bits(after[d]) != math.Float32bits(before[d]) {
					t.Fatalf("Embed(%s, %v)[%d] after EmbedWithAttention = %v, want %v", c.name, pool, d, after[d], before[d])
				}
			}
		}
	}
}

func TestEmbedWithAttentionRows(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 2)
	for _, c := range unmaskedCases(t, cfg) {
		_, a, err := m.EmbedWithAttention(c.in, PoolCLS)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkTokens(t, c, cfg, a)
		k := a.NumTokens()
		if got, want := len(a.Weights), cfg.Depth*cfg.NumHeads*k*k; got != want {
			t.Fatalf("%s: %d weights, want Depth*H*K*K = %d", c.name, got, want)
		}
		for layer := range a.Depth {
			for head := range a.NumHeads {
				for query := range k {
					row := a.Row(layer, head, query)
					checkProbabilityRow(t, c.name, "layer", layer, head, query, row, a.Tokens)
				}
			}
		}
	}
}

// checkTokens checks that a.Tokens lists CLS, every patch and every text
// position in order, with the pads marked.
func checkTokens(t *testing.T, c oracleCase, cfg Config, a *Attention) {
	t.Helper()
	want := []EncoderToken{{Kind: TokenCLS}}
	if c.in.hasImage() {
		for n := range cfg.NumPatches() {
			want = append(want, EncoderToken{Kind: TokenPatch, Position: n})
		}
	}
	for pos, id := range c.in.Tokens {
		want = append(want, EncoderToken{Kind: TokenText, Position: pos, Pad: id == PadID})
	}
	if len(a.Tokens) != len(want) {
		t.Fatalf("%s: %d tokens, want %d", c.name, len(a.Tokens), len(want))
	}
	for i := range want {
		if a.Tokens[i] != want[i] {
			t.Errorf("%s: token %d = %+v, want %+v", c.name, i, a.Tokens[i], want[i])
		}
	}
}

// checkProbabilityRow checks that row sums to 1 and gives pads exactly 0.
func checkProbabilityRow(t *testing.T, name, kind string, layer, head, query int, row []float32, tokens []EncoderToken) {
	t.Helper()
	var sum float64
	for j, p := range row {
		if p < 0 || p > 1 {
			t.Errorf("%s: %s %d head %d query %d: weight %d = %v, want a probability", name, kind, layer, head, query, j, p)
		}
		if tokens[j].Pad && p != 0 {
			t.Errorf("%s: %s %d head %d query %d: weight on pad key %d = %v, want exactly 0", name, kind, layer, head, query, j, p)
		}
		sum += float64(p)
	}
	if math.Abs(sum-1) > rowSumTolerance {
		t.Errorf("%s: %s %d head %d query %d: weights sum to %v, want 1", name, kind, layer, head, query, sum)
	}
}

// TestRolloutHandChecked checks a two-block, one-head rollout over two
// tokens worked out by hand, in values that float32 holds exactly:
//
//	W0 = [[0.5, 0.5], [0, 1]]  -> Ã0 = [[0.75, 0.25], [0, 1]]
//	W1 = [[1, 0], [0.5, 0.5]]  -> Ã1 = [[1, 0], [0.25, 0.75]]
//	Ã1 Ã0 = [[0.75, 0.25], [0.1875, 0.8125]]
func TestRolloutHandChecked(t *testing.T) {
	a := &Attention{
		Depth: 2, NumHeads: 1, NumPatches: 1, TextLength: 0,
		Tokens:  []EncoderToken{{Kind: TokenCLS}, {Kind: TokenPatch}},
		Weights: []float32{0.5, 0.5, 0, 1, 1, 0, 0.5, 0.5},
	}
	want := []float32{0.75, 0.25, 0.1875, 0.8125}
	got := a.Rollout()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Rollout()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// rolloutFloat64 computes the rollout from a's weights in float64: per
// block the head mean plus the identity, rows normalized, multiplied from
// the first block up.
func rolloutFloat64(a *Attention) []float64 {
	k := a.NumTokens()
	var rollout []float64
	for layer := range a.Depth {
		step := make([]float64, k*k)
		for h := range a.NumHeads {
			for i := range k {
				for j, p := range a.Row(layer, h, i) {
					step[i*k+j] += float64(p) / float64(a.NumHeads)
				}
			}
		}
		for i := range k {
			step[i*k+i]++
			sum := 0.0
			for j := range k {
				sum += step[i*k+j]
			}
			for j := range k {
				step[i*k+j] /= sum
			}
		}
		if rollout == nil {
			rollout = step
			continue
		}
		next := make([]float64, k*k)
		for i := range k {
			for m := range k {
				for j := range k {
					next[i*k+j] += step[i*k+m] * rollout[m*k+j]
				}
			}
		}
		rollout = next
	}
	return rollout
}

func TestRolloutMatchesFloat64(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 2)
	for _, c := range unmaskedCases(t, cfg) {
		_, a, err := m.EmbedWithAttention(c.in, PoolCLS)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := a.Rollout()
		want := rolloutFloat64(a)
		k := a.NumTokens()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-5 {
				t.Errorf("%s: Rollout() (%d, %d) = %v, want %v", c.name, i/k, i%k, got[i], want[i])
			}
		}
		// A pad row keeps its identity term, so only the other rows must
		// give pads exactly 0.
		for query := range k {
			if !a.Tokens[query].Pad {
				checkProbabilityRow(t, c.name, "rollout", a.Depth, -1, query, got[query*k:(query+1)*k], a.Tokens)
			}
		}
	}
}

func TestHeadMean(t *testing.T) {
	a := &Attention{
		Depth: 1, NumHeads: 2, NumPatches: 1,
		Tokens:  []EncoderToken{{Kind: TokenCLS}, {Kind: TokenPatch}},
		Weights: []float32{0.5, 0.5, 0, 1, 1, 0, 0.25, 0.75},
	}
	want := []float32{0.75, 0.25, 0.125, 0.875}
	got := a.HeadMean(0)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("HeadMean(0)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestByPosition(t *testing.T) {
	a := &Attention{
		Depth: 1, NumHeads: 1, NumPatches: 4, TextLength: 3,
		Tokens: []EncoderToken{
			{Kind: TokenCLS},
			{Kind: TokenPatch, Position: 1},
			{Kind: TokenPatch, Position: 3},
			{Kind: TokenText, Position: 0},
			{Kind: TokenText, Position: 2, Pad: true},
		},
	}
	cls, patches, text := a.ByPosition([]float32{0.1, 0.2, 0.3, 0.4, 0})
	if cls != 0.1 {
		t.Errorf("cls = %v, want 0.1", cls)
	}
	wantPatches := []float32{0, 0.2, 0, 0.3}
	wantText := []float32{0.4, 0, 0}
	for i, want := range wantPatches {
		if patches[i] != want {
			t.Errorf("patches[%d] = %v, want %v", i, patches[i], want)
		}
	}
	for i, want := range wantText {
		if text[i] != want {
			t.Errorf("text[%d] = %v, want %v", i, text[i], want)
		}
	}

	textOnly := &Attention{Depth: 1, NumHeads: 1, NumPatches: 4, TextLength: 1,
		Tokens: []EncoderToken{{Kind: TokenCLS}, {Kind: TokenText}}}
	if _, patches, text := textOnly.ByPosition([]float32{0.5, 0.5}); patches != nil || len(text) != 1 {
		t.Errorf("text-only ByPosition: patches %v, text %v, want nil and 1 value", patches, text)
	}
}

// TestEmbedAllocatesOnlyItsResult guards the plain path: recording
// attention must add no allocation to Embed.
func TestEmbedAllocatesOnlyItsResult(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 2)
	in := unmaskedCases(t, cfg)[0].in
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := m.Embed(in, PoolCLS); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("Embed allocates %v times per call, want 1 (its result)", allocs)
	}
}

func TestEmbedWithAttentionRejectsInvalidInput(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 2)
	if _, _, err := m.EmbedWithAttention(Inputs{}, PoolCLS); err == nil {
		t.Error("EmbedWithAttention(no inputs) returned no error")
	}
	if _, _, err := m.EmbedWithAttention(Inputs{Tokens: []int32{1}}, PoolCLS); err == nil {
		t.Error("EmbedWithAttention(1 token) returned no error")
	}
}

// BenchmarkAttentionMaps measures EmbedWithAttention and the rollout, to
// compare with BenchmarkEmbed:
//
//	go test ./core -run '^$' -bench 'Embed$|AttentionMaps' -benchmem
func BenchmarkAttentionMaps(b *testing.B) {
	for _, preset := range []string{"micro", "tiny"} {
		b.Run(preset, func(b *testing.B) {
			m, in, _ := benchModel(b, preset)
			b.ReportAllocs()
			for b.Loop() {
				_, a, err := m.EmbedWithAttention(in, PoolCLS)
				if err != nil {
					b.Fatal(err)
				}
				a.Rollout()
			}
		})
	}
}
