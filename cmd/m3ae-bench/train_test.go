package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// quickBenchEnv returns the environment of `m3ae-bench -quick`, with every
// flag at its default and the log in the test output.
func quickBenchEnv(t *testing.T) *benchEnv {
	t.Helper()
	env := &benchEnv{log: slog.New(slog.NewTextHandler(t.Output(), nil)), quick: true, flags: map[string]*string{}}
	for name, def := range flagDefs {
		value := def.value
		env.flags[name] = &value
	}
	return env
}

func TestTrainQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gomlxbench and runs training steps")
	}
	env := quickBenchEnv(t)
	res, err := measureTraining(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.rows) != 1 {
		t.Fatalf("quick run measured %d cases, want 1 (micro)", len(res.rows))
	}
	row := res.rows[0]
	if row.c.preset != "micro" {
		t.Errorf("quick run measured preset %q, want micro", row.c.preset)
	}
	if row.ours.Peer != "gomlx" || row.ours.GoMLX == "" || row.ours.Backend == "" {
		t.Errorf("GoMLX side = peer %q, GoMLX %q, backend %q; want gomlx and both versions named", row.ours.Peer, row.ours.GoMLX, row.ours.Backend)
	}
	if row.ours.WarmupSteps != row.c.batches {
		t.Errorf("GoMLX side ran %d untimed steps, want one per batch, %d", row.ours.WarmupSteps, row.c.batches)
	}
	for i, cpu := range row.ours.StepCPU {
		if !(cpu > 0) || !(row.ours.StepWall[i] > 0) {
			t.Errorf("GoMLX step %d took %g s wall and %g s CPU, want positive times", i, row.ours.StepWall[i], cpu)
		}
	}

	// The PyTorch leg ran or reports why it was skipped.
	if _, err := checkTorch(t.Context(), env.flag(torchPythonFlag)); err != nil {
		t.Fatal(err)
	}
	switch {
	case row.torch == nil && res.torchSkipped == "":
		t.Error("PyTorch side neither measured nor skipped with a reason")
	case row.torch == nil:
		t.Logf("PyTorch leg skipped: %s", res.torchSkipped)
	case row.torch.Peer != "pytorch" || row.torch.Torch == "":
		t.Errorf("PyTorch side = peer %q, torch %q; want pytorch and its version", row.torch.Peer, row.torch.Torch)
	}

	body := renderTraining(res)
	for _, want := range []string{"| preset | batch | ours wall s |", "| micro (D32x2, decoder D32x1) | 8 |", "gomlxbench step"} {
		if !strings.Contains(body, want) {
			t.Errorf("section lacks %q:\n%s", want, body)
		}
	}
	if row.torch == nil && !strings.Contains(body, "PyTorch: not measured, because") {
		t.Errorf("section does not say why PyTorch is missing:\n%s", body)
	}
}

func TestCheckTorchMissing(t *testing.T) {
	python := filepath.Join(t.TempDir(), "python3")

	t.Setenv(requireTorchEnv, "")
	reason, err := checkTorch(t.Context(), python)
	if err != nil {
		t.Fatalf("checkTorch(%s) without %s: error %v, want a skip reason", python, requireTorchEnv, err)
	}
	if !strings.Contains(reason, python) || !strings.Contains(reason, "cannot import torch") {
		t.Errorf("skip reason %q, want it to name %s and the failed import", reason, python)
	}

	t.Setenv(requireTorchEnv, "1")
	if _, err := checkTorch(t.Context(), python); err == nil || !strings.Contains(err.Error(), "python3-torch") {
		t.Errorf("checkTorch(%s) with %s=1: error %v, want one that names python3-torch", python, requireTorchEnv, err)
	}
}

func TestStepTimesCheck(t *testing.T) {
	c := trainCase{preset: "mini", batch: 64, steps: 2, batches: 2}
	good := stepTimes{
		Peer: "gomlx", Preset: "mini", Batch: 64, Threads: trainThreads,
		StepWall: []float64{1, 2}, StepCPU: []float64{1, 2},
		MedianWall: 1.5, MedianCPU: 1.5, ExamplesPerSec: 42,
	}
	if err := good.check(c); err != nil {
		t.Errorf("check of a complete result: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*stepTimes)
	}{
		{"other preset", func(s *stepTimes) { s.Preset = "tiny" }},
		{"one thread", func(s *stepTimes) { s.Threads = 1 }},
		{"missing step", func(s *stepTimes) { s.StepWall = s.StepWall[:1] }},
		{"zero median", func(s *stepTimes) { s.MedianCPU = 0 }},
	}
	for _, tt := range tests {
		s := good
		s.StepWall = append([]float64(nil), good.StepWall...)
		tt.mutate(&s)
		if err := s.check(c); err == nil {
			t.Errorf("check with %s: no error", tt.name)
		}
	}
}
