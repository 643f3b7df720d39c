package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// fakeSource returns n examples whose captions name the source and index.
type fakeSource struct {
	name string
	n    int
	kind Kind
}

func (s fakeSource) Len() int { return s.n }

func (s fakeSource) Example(i int) (Example, error) {
	if err := checkIndex(s.name, i, s.n); err != nil {
		return Example{}, err
	}
	return Example{Kind: s.kind, Caption: fmt.Sprintf("%s-%d", s.name, i), Label: NoLabel, Origin: s.name}, nil
}

func threeSources(weights ...float64) []WeightedSource {
	return []WeightedSource{
		{Name: "paired", Source: fakeSource{"paired", 10, Paired}, Weight: weights[0]},
		{Name: "images", Source: fakeSource{"images", 7, ImageOnly}, Weight: weights[1]},
		{Name: "texts", Source: fakeSource{"texts", 5, TextOnly}, Weight: weights[2]},
	}
}

func TestCycleQuotas(t *testing.T) {
	tests := []struct {
		weights []float64
		cycle   int
		want    []int
	}{
		{[]float64{2, 1, 1}, 8, []int{4, 2, 2}},
		{[]float64{1, 1, 1}, 8, []int{3, 3, 2}},
		{[]float64{0.5, 0.25, 0.25}, 32, []int{16, 8, 8}},
		{[]float64{1, 1, 3}, 6, []int{1, 1, 4}},
	}
	for _, tt := range tests {
		got, err := cycleQuotas(threeSources(tt.weights...), tt.cycle)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("cycleQuotas(%v, %d) = %v, %v, want %v", tt.weights, tt.cycle, got, err, tt.want)
		}
	}
	if _, err := cycleQuotas(threeSources(10, 1, 1), 4); err == nil || !strings.Contains(err.Error(), `"images" gets no draw`) {
		t.Errorf("cycleQuotas(10:1:1, 4) = %v, want an error naming the starved source", err)
	}
}

func TestMixerCyclesHoldExactQuotas(t *testing.T) {
	for _, shuffle := range []bool{true, false} {
		m, err := NewMixer(MixerConfig{Sources: threeSources(2, 1, 1), Seed: 5, CycleLength: 8, Shuffle: shuffle})
		if err != nil {
			t.Fatal(err)
		}
		for cycle := range int64(20) {
			counts := make([]int, 3)
			for slot := range int64(8) {
				pick, err := m.Pick(cycle*8 + slot)
				if err != nil {
					t.Fatal(err)
				}
				counts[pick.Source]++
			}
			if !slices.Equal(counts, []int{4, 2, 2}) {
				t.Errorf("shuffle=%v cycle %d source counts = %v, want [4 2 2]", shuffle, cycle, counts)
			}
		}
	}
}

// TestMixerPassesArePermutations checks that each pass over a source reads
// every example once and that shuffled passes differ from each other.
func TestMixerPassesArePermutations(t *testing.T) {
	m, err := NewMixer(MixerConfig{Sources: threeSources(2, 1, 1), Seed: 11, CycleLength: 8, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	perSource := make([][]int, 3)
	for k := range int64(8 * 30) {
		pick, err := m.Pick(k)
		if err != nil {
			t.Fatal(err)
		}
		perSource[pick.Source] = append(perSource[pick.Source], pick.Example)
	}
	for source, examples := range perSource {
		n := m.Sources()[source].Source.Len()
		var passes [][]int
		for start := 0; start+n <= len(examples); start += n {
			pass := slices.Clone(examples[start : start+n])
			passes = append(passes, slices.Clone(pass))
			slices.Sort(pass)
			for i, v := range pass {
				if v != i {
					t.Fatalf("source %d pass %d = %v, want a permutation of 0..%d", source, len(passes)-1, passes[len(passes)-1], n-1)
				}
			}
		}
		if len(passes) < 2 || slices.Equal(passes[0], passes[1]) {
			t.Errorf("source %d passes 0 and 1 are %v and %v, want two different orders", source, passes[0], passes[1])
		}
	}
}

func TestMixerDeterminism(t *testing.T) {
	picks := func(seed uint64) []Pick {
		m, err := NewMixer(MixerConfig{Sources: threeSources(2, 1, 1), Seed: seed, CycleLength: 8, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []Pick
		for k := range int64(100) {
			p, err := m.Pick(k)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	if a, b := picks(1), picks(1); !slices.Equal(a, b) {
		t.Errorf("two mixers with seed 1 differ: %v vs %v", a[:8], b[:8])
	}
	if a, b := picks(1), picks(2); slices.Equal(a, b) {
		t.Errorf("mixers with seeds 1 and 2 give the same draws %v", a[:8])
	}
}

func TestMixerResume(t *testing.T) {
	cfg := MixerConfig{Sources: threeSources(2, 1, 1), Seed: 3, CycleLength: 8, Shuffle: true}
	first, err := NewMixer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 37 {
		if _, _, err := first.Next(); err != nil {
			t.Fatal(err)
		}
	}
	saved, err := json.Marshal(first.Position())
	if err != nil {
		t.Fatal(err)
	}

	var position Position
	if err := json.Unmarshal(saved, &position); err != nil {
		t.Fatal(err)
	}
	resumed, err := NewMixer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.Seek(position); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		wantPick, wantEx, err1 := first.Next()
		gotPick, gotEx, err2 := resumed.Next()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if gotPick != wantPick || gotEx.Caption != wantEx.Caption {
			t.Fatalf("resumed draw %d = %+v %q, want %+v %q", i, gotPick, gotEx.Caption, wantPick, wantEx.Caption)
		}
	}

	other, err := NewMixer(MixerConfig{Sources: threeSources(1, 1, 1), Seed: 3, CycleLength: 8, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Seek(position); err == nil || !strings.Contains(err.Error(), "saved for mix") {
		t.Errorf("Seek(position of another mix) = %v, want a fingerprint error", err)
	}
}

func TestMixerEpochs(t *testing.T) {
	// The first source has 10 examples and 4 draws per cycle of 8, so one
	// epoch is ceil(10/4) = 3 cycles, 24 draws.
	m, err := NewMixer(MixerConfig{Sources: threeSources(2, 1, 1), Seed: 1, CycleLength: 8, Epochs: 2, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.EpochLength() != 24 || m.End() != 48 {
		t.Fatalf("EpochLength(), End() = %d, %d, want 24, 48", m.EpochLength(), m.End())
	}
	pick, err := m.Pick(30)
	if err != nil || pick.Epoch != 1 || pick.Index != 6 {
		t.Errorf("Pick(30) = %+v, %v, want epoch 1 index 6", pick, err)
	}
	if _, err := m.Pick(48); !errors.Is(err, io.EOF) {
		t.Errorf("Pick(48) past 2 epochs = %v, want io.EOF", err)
	}
	if err := m.Seek(m.PositionAt(47)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Next(); err != nil {
		t.Errorf("Next() at draw 47 = %v, want a draw", err)
	}
	if _, _, err := m.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next() at draw 48 = %v, want io.EOF", err)
	}
}

func TestMixerUnshuffledSingleSource(t *testing.T) {
	m, err := NewMixer(MixerConfig{Sources: []WeightedSource{{Name: "a", Source: fakeSource{"a", 4, Paired}, Weight: 1}}, Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		_, ex, err := m.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ex.Caption)
	}
	want := []string{"a-0", "a-1", "a-2", "a-3", "a-0", "a-1", "a-2", "a-3"}
	if !slices.Equal(got, want) {
		t.Errorf("unshuffled mixer over 2 epochs = %q, want %q", got, want)
	}
}

func TestNewMixerErrors(t *testing.T) {
	tests := []struct {
		name        string
		cfg         MixerConfig
		wantInError string
	}{
		{"no sources", MixerConfig{CycleLength: 4}, "no sources"},
		{"zero weight", MixerConfig{Sources: threeSources(1, 0, 1), CycleLength: 4}, `"images" has weight 0`},
		{"short cycle", MixerConfig{Sources: threeSources(1, 1, 1), CycleLength: 2}, "cycle length 2 is less than the 3 sources"},
		{"default cycle with three sources", MixerConfig{Sources: threeSources(1, 1, 1)}, "cycle length 0"},
		{"empty source", MixerConfig{Sources: []WeightedSource{{Name: "e", Source: fakeSource{"e", 0, Paired}, Weight: 1}}}, `"e") is nil or empty`},
		{"negative epochs", MixerConfig{Sources: threeSources(1, 1, 1), CycleLength: 3, Epochs: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		_, err := NewMixer(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("NewMixer(%s) = %v, want an error containing %q", tt.name, err, tt.wantInError)
		}
	}
}
