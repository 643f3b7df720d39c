package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// waitTimeout bounds every wait for a training subprocess.
const waitTimeout = 3 * time.Minute

// buildCLI builds the m3ae-edge binary into a temporary folder.
func buildCLI(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI and trains in subprocesses; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "m3ae-edge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// trainProcess is a training subprocess with its stderr collected.
type trainProcess struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

func startTrain(t *testing.T, bin string, args ...string) *trainProcess {
	t.Helper()
	p := &trainProcess{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor polls until ready returns true, failing when the process exits
// first or the wait times out.
func (p *trainProcess) waitFor(t *testing.T, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ready() {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("train exited (%v) before %s; stderr:\n%s", err, what, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, p.stderr.String())
		}
	}
}

// signalAndWait sends sig and returns the exit error.
func (p *trainProcess) signalAndWait(t *testing.T, sig os.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("train did not exit after %v; stderr:\n%s", sig, p.stderr.String())
		return nil
	}
}

// lastStep returns the step of the last complete record of dir's
// metrics.jsonl, or 0.
func lastStep(t *testing.T, dir string) int64 {
	records := readMetrics(t, dir)
	if len(records) == 0 {
		return 0
	}
	return records[len(records)-1].Step
}

// newestCheckpointStep returns the step of the newest checkpoint of the
// run in dir, or -1 when there is none.
func newestCheckpointStep(dir string) int64 {
	paths, err := native.Checkpoints(trainrun.CheckpointsDir(dir))
	if err != nil || len(paths) == 0 {
		return -1
	}
	step, _ := native.CheckpointStep(paths[len(paths)-1])
	return step
}

// stepLosses maps each step of the records to its image and text loss.
func stepLosses(records []metricsRecord) map[int64][2]float64 {
	losses := map[int64][2]float64{}
	for _, r := range records {
		if r.Kind == trainrun.KindTrain && r.ImageLoss != nil && r.TextLoss != nil {
			losses[r.Step] = [2]float64{*r.ImageLoss, *r.TextLoss}
		}
	}
	return losses
}

// A run killed with SIGKILL leaves only whole checkpoints. Resumed with
// --resume alone, it continues from the newest one with the losses of an
// uninterrupted run of the same seed, step for step. SIGINT then makes it
// finish its step, save a checkpoint at that step and exit with status 0.
func TestTrainCrashResumeInterrupt(t *testing.T) {
	bin := buildCLI(t)
	// 400 steps is far more than the test waits for: every run here ends
	// by a signal. Logging every step lets the losses be compared per step.
	flags := []string{"--steps", "400", "--log-every", "1", "--checkpoint-every", "4", "--keep", "2", "--eval-every", "0"}
	crashed := filepath.Join(t.TempDir(), "crashed")

	// Kill the run a few steps after its first checkpoint.
	first := startTrain(t, bin, microTrainArgs(crashed, flags...)...)
	first.waitFor(t, "a checkpoint and 3 more steps", func() bool {
		saved := newestCheckpointStep(crashed)
		return saved > 0 && lastStep(t, crashed) >= saved+3
	})
	_ = first.signalAndWait(t, syscall.SIGKILL)

	paths, err := native.Checkpoints(trainrun.CheckpointsDir(crashed))
	if err != nil || len(paths) == 0 {
		t.Fatalf("checkpoints after SIGKILL = %v, %v; want at least one", paths, err)
	}
	for _, path := range paths {
		if _, err := native.ReadCheckpoint(path); err != nil {
			t.Errorf("checkpoint %s after SIGKILL is unreadable: %v", path, err)
		}
		if _, err := os.Stat(filepath.Join(path, "run-state.json")); err != nil {
			t.Errorf("checkpoint %s lacks run-state.json: %v", path, err)
		}
	}
	resumeStep := newestCheckpointStep(crashed)
	killedAt := lastStep(t, crashed)
	t.Logf("killed at step %d; newest checkpoint step %d", killedAt, resumeStep)

	// Resume with no other flag, then interrupt it a few steps later.
	resumed := startTrain(t, bin, "train", "--out", crashed, "--resume", "--log-level", "warn")
	resumed.waitFor(t, "4 steps after the checkpoint", func() bool { return lastStep(t, crashed) >= resumeStep+4 })
	if err := resumed.signalAndWait(t, os.Interrupt); err != nil {
		t.Fatalf("resumed train after SIGINT exited with %v, want status 0; stderr:\n%s", err, resumed.stderr.String())
	}
	interruptedAt := lastStep(t, crashed)
	if !strings.Contains(resumed.stderr.String(), "interrupted at step") {
		t.Errorf("stderr after SIGINT lacks the interruption message:\n%s", resumed.stderr.String())
	}
	if got := newestCheckpointStep(crashed); got != interruptedAt {
		t.Errorf("newest checkpoint after SIGINT is step %d, want the last step trained, %d", got, interruptedAt)
	}
	records := readMetrics(t, crashed)
	var steps []int64
	for _, r := range records {
		steps = append(steps, r.Step)
	}
	for i, step := range steps {
		if step != int64(i+1) {
			t.Fatalf("metrics steps after the resume = %v, want 1, 2, 3, ... with the killed run's steps after %d dropped", steps, resumeStep)
		}
	}

	// An uninterrupted run of the same seed, stopped past the same step.
	reference := filepath.Join(t.TempDir(), "reference")
	ref := startTrain(t, bin, microTrainArgs(reference, flags...)...)
	ref.waitFor(t, "the reference run to pass the resumed steps", func() bool { return lastStep(t, reference) >= interruptedAt })
	if err := ref.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Fatalf("reference train after SIGTERM exited with %v, want status 0; stderr:\n%s", err, ref.stderr.String())
	}
	got, want := stepLosses(records), stepLosses(readMetrics(t, reference))
	for step := int64(1); step <= interruptedAt; step++ {
		if got[step] != want[step] {
			t.Errorf("step %d losses (image, text) = %v, want %v as in the uninterrupted run", step, got[step], want[step])
		}
	}
}
