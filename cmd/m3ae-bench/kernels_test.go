package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestKernelShapesMini(t *testing.T) {
	shapes, err := kernelShapes("mini")
	if err != nil {
		t.Fatal(err)
	}
	// mini: D128, MLP 512, 64 patches and 16 text positions, of which a 75 %
	// mask keeps 16 and 4; decoder D96; 30522 words.
	want := []string{
		"21x128x384", "21x128x128", "21x128x512", "21x512x128",
		"81x128x384", "81x128x128", "81x128x512", "81x512x128",
		"16x96x30522",
	}
	if len(shapes) != len(want) {
		t.Fatalf("kernelShapes(mini) has %d shapes, want %d", len(shapes), len(want))
	}
	for i, s := range shapes {
		if s.key() != want[i] {
			t.Errorf("kernelShapes(mini)[%d] (%s, %s) = %s, want %s", i, s.layer, s.tokens, s.key(), want[i])
		}
	}
}

func TestEstimatePeak(t *testing.T) {
	tests := []struct {
		flags []string
		want  int
	}{
		{[]string{"avx512f", "avx2", "fma"}, 64},
		{[]string{"avx2", "fma"}, 32},
		{[]string{"avx2"}, 0},
		{nil, 0},
	}
	for _, tt := range tests {
		info := cpuInfo{cores: 2, mhz: 2000, flags: map[string]bool{}}
		for _, f := range tt.flags {
			info.flags[f] = true
		}
		p := estimatePeak(info)
		if p.flopsPerCycle != tt.want {
			t.Errorf("estimatePeak(flags %v).flopsPerCycle = %d, want %d", tt.flags, p.flopsPerCycle, tt.want)
		}
		if tt.want > 0 && p.coreGFLOPS() != p.mhz*float64(tt.want)/1000 {
			t.Errorf("estimatePeak(flags %v).coreGFLOPS() = %g, want %g MHz x %d / 1000", tt.flags, p.coreGFLOPS(), p.mhz, tt.want)
		}
	}
}

func TestKernelsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kernelbench and gomlxbench and runs them")
	}
	res, err := measureKernels(t.Context(), quickBenchEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.shapes) != 9 {
		t.Errorf("quick run has %d shapes, want the 9 of micro", len(res.shapes))
	}
	var names []string
	for _, target := range res.targets {
		names = append(names, target.name)
		// check has already required a positive figure for every shape.
		if err := target.check(res.shapes); err != nil {
			t.Error(err)
		}
		if target.clock != "thread-cpu" && target.clock != "monotonic" {
			t.Errorf("target %s timed by clock %q, want thread-cpu or monotonic", target.name, target.clock)
		}
		if target.kernel == "" {
			t.Errorf("target %s names no kernel", target.name)
		}
		if target.wasm && target.threads != 1 {
			t.Errorf("target %s ran %d threads, want 1", target.name, target.threads)
		}
		wantKernel := map[string]string{
			"native scalar 1 thread":  "scalar",
			"wazero scalar":           "scalar",
			"wazero scalar interrupt": "scalar",
			"wazero simd":             "simd128",
		}[target.name]
		if wantKernel != "" && target.kernel != wantKernel {
			t.Errorf("target %s ran the %s kernel, want %s", target.name, target.kernel, wantKernel)
		}
	}
	if len(names) < 5 || !slices.Equal(names[:2], []string{"native scalar 1 thread", "native 1 thread"}) ||
		!slices.Equal(names[len(names)-3:], []string{"wazero scalar", "wazero scalar interrupt", "wazero simd"}) {
		t.Errorf("targets = %q, want native scalar 1 thread, native 1 thread, the other thread counts, "+
			"wazero scalar, wazero scalar interrupt and wazero simd", names)
	}
	for _, target := range res.targets[:2] {
		if target.threads != 1 {
			t.Errorf("target %s ran on %d threads, want 1", target.name, target.threads)
		}
	}
	if len(res.gomlx) != 1 || !(res.gomlx[0].GFLOPS > 0) || res.gomlx[0].Threads != 1 {
		t.Fatalf("GoMLX matmul = %+v, want one single-threaded run with positive GFLOP/s", res.gomlx)
	}
	if !(res.gomlx[0].GFLOPSPerCPUSecond > 0) {
		t.Errorf("GoMLX matmul GFLOP per CPU second = %g, want positive", res.gomlx[0].GFLOPSPerCPUSecond)
	}
}

// The driver path end to end for one group: flags, the group's run and the
// printed section.
func TestKernelsThroughDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kernelbench and gomlxbench and runs them")
	}
	var stdout bytes.Buffer
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	if err := run(t.Context(), []string{"-quick", "-groups", "kernels"}, &stdout, logger); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{
		"<!-- kernels -->",
		"| preset | layer | rows | rows x in x out | native scalar 1 thread float32 | native scalar 1 thread int8 | native 1 thread float32 |",
		"| preset | layer | rows | rows x in x out | wazero scalar float32 | wazero scalar int8 | wazero scalar interrupt float32 |",
		"| wazero simd float32 | wazero simd int8 |",
		"| micro | text head | Nt=16 | 16x32x30522 |",
		"| layer | rows x in x out | threads | GFLOP/s (wall) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
