package native

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestCheckpointResumeIsExact(t *testing.T) {
	cfg := microConfig(t)
	tc := DefaultTrainConfig(6)
	tc.PeakLearningRate = 3e-3
	tc.WarmupSteps = 2
	tc.TotalSteps = 10
	tc.Seed = 11
	backend := testBackend(t)
	trainer, err := NewTrainer(backend, initModel(t, cfg, 5), tc)
	if err != nil {
		t.Fatal(err)
	}
	data := syntheticExamples(cfg, 12, 3, true)
	batch := func(step int) []Example { return data[(step%2)*6 : (step%2)*6+6] }
	for step := range 2 {
		if _, _, err := trainer.Step(batch(step)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	saved, err := trainer.SaveCheckpoint(dir, 2)
	if err != nil {
		t.Fatalf("SaveCheckpoint: %v", err)
	}
	if want := filepath.Join(dir, "step-000000002"); saved != want {
		t.Errorf("SaveCheckpoint() = %q, want %q", saved, want)
	}

	// The original continues; a resumed copy must repeat its losses exactly,
	// which needs the weights, both moments, the step and the mask
	// generator restored.
	var want [][2]float32
	for step := 2; step < 4; step++ {
		image, text, err := trainer.Step(batch(step))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, [2]float32{image, text})
	}
	resumed, err := ResumeTrainer(backend, dir, tc)
	if err != nil {
		t.Fatalf("ResumeTrainer: %v", err)
	}
	if resumed.GlobalStep() != 2 {
		t.Errorf("resumed GlobalStep() = %d, want 2", resumed.GlobalStep())
	}
	for i, step := 0, 2; step < 4; i, step = i+1, step+1 {
		image, text, err := resumed.Step(batch(step))
		if err != nil {
			t.Fatal(err)
		}
		if got := [2]float32{image, text}; got != want[i] {
			t.Errorf("resumed Step(step %d) losses = %v, want %v", step+1, got, want[i])
		}
	}
}

func TestCheckpointKeepsNewest(t *testing.T) {
	cfg := microConfig(t)
	trainer, err := NewTrainer(testBackend(t), initModel(t, cfg, 5), DefaultTrainConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := syntheticExamples(cfg, 4, 2, false)
	for range 3 {
		if _, _, err := trainer.Step(data); err != nil {
			t.Fatal(err)
		}
		if _, err := trainer.SaveCheckpoint(dir, 2); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := Checkpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "step-000000002"), filepath.Join(dir, "step-000000003")}
	if len(paths) != len(want) || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("Checkpoints(dir) = %v, want %v", paths, want)
	}
}

func TestResumeWithoutCheckpoint(t *testing.T) {
	_, err := ResumeTrainer(testBackend(t), t.TempDir(), DefaultTrainConfig(4))
	if !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("ResumeTrainer(empty dir) error = %v, want ErrNoCheckpoint", err)
	}
}
