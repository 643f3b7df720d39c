package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// killSeed seeds the kill points of TestTrainRandomKillsResume, so that a
// failure can be repeated.
const killSeed = 20261204

// TestTrainRandomKillsResume kills a run with SIGKILL several times,
// resuming after each kill, then lets it finish. Each kill comes a seeded
// random time after a checkpoint, so it falls between or inside steps,
// except the second, which comes while a checkpoint is being written.
// After every kill, each checkpoint must be readable, and the newest must
// be at most one checkpoint interval behind the last step logged. The
// finished run must log every step once, with the losses of an
// uninterrupted run of the same seed.
func TestTrainRandomKillsResume(t *testing.T) {
	bin := buildCLI(t)
	const (
		steps           = 18
		checkpointEvery = 3
		kills           = 3
		duringSave      = 1 // the kill that waits for a checkpoint being written
	)
	flags := []string{"--steps", fmt.Sprint(steps), "--log-every", "1", "--checkpoint-every", fmt.Sprint(checkpointEvery),
		"--keep", "2", "--eval-every", "0"}
	dir := filepath.Join(t.TempDir(), "run")
	rng := rand.New(rand.NewPCG(killSeed, 1))

	for kill := range kills {
		args := microTrainArgs(dir, flags...)
		resumeFrom := int64(0)
		if kill > 0 {
			args = []string{"train", "--out", dir, "--resume", "--log-level", "warn"}
			resumeFrom = newestCheckpointStep(dir)
		}
		p := startTrain(t, bin, args...)
		// Wait for a checkpoint of this run, so that every kill costs work
		// that a checkpoint protects.
		p.waitFor(t, "a checkpoint after the resumed step", func() bool { return newestCheckpointStep(dir) > resumeFrom })
		moment := ""
		if kill == duringSave {
			moment = "while a checkpoint was written"
			p.waitForSave(t, dir)
		} else {
			delay := time.Duration(rng.IntN(1500)) * time.Millisecond
			moment = fmt.Sprintf("%v after a checkpoint", delay)
			time.Sleep(delay)
		}
		if err := p.signalAndWait(t, syscall.SIGKILL); err == nil {
			t.Fatalf("kill %d: train finished before SIGKILL; raise steps", kill+1)
		}
		killedAt, newest := lastStep(t, dir), newestCheckpointStep(dir)
		t.Logf("kill %d %s: last step logged %d, newest checkpoint %d", kill+1, moment, killedAt, newest)
		checkCheckpoints(t, dir)
		if lost := killedAt - newest; lost > checkpointEvery {
			t.Errorf("kill %d: last step logged %d, newest checkpoint %d: lost %d steps, want at most %d (--checkpoint-every)",
				kill+1, killedAt, newest, lost, checkpointEvery)
		}
	}

	// Resume once more and finish.
	final := startTrain(t, bin, "train", "--out", dir, "--resume", "--log-level", "warn")
	select {
	case err := <-final.done:
		final.done <- err
		if err != nil {
			t.Fatalf("final resumed run: %v; stderr:\n%s", err, final.stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("final resumed run did not finish in %v", waitTimeout)
	}
	checkCheckpoints(t, dir)
	if got := newestCheckpointStep(dir); got != steps {
		t.Errorf("newest checkpoint after the run finished is step %d, want %d", got, steps)
	}
	entries, err := os.ReadDir(trainrun.CheckpointsDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "step-") {
			t.Errorf("checkpoints folder keeps %s after the run finished, want only step-N folders", e.Name())
		}
	}
	records := readMetrics(t, dir)
	for i, r := range records {
		if r.Step != int64(i+1) {
			t.Fatalf("metrics record %d is step %d, want %d: every step logged once, in order", i, r.Step, i+1)
		}
	}

	reference := filepath.Join(t.TempDir(), "reference")
	if _, stderr, err := execute(t, microTrainArgs(reference, flags...)...); err != nil {
		t.Fatalf("reference run: %v\nstderr:\n%s", err, stderr)
	}
	got, want := stepLosses(records), stepLosses(readMetrics(t, reference))
	for step := int64(1); step <= steps; step++ {
		if got[step] != want[step] {
			t.Errorf("step %d losses (image, text) = %v, want %v as in the uninterrupted run", step, got[step], want[step])
		}
	}
}

// waitForSave polls the checkpoints folder of the run in dir until a
// checkpoint is being written, which its staging folder shows.
func (p *trainProcess) waitForSave(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(trainrun.CheckpointsDir(dir))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".staging-") {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("train exited (%v) before a checkpoint save; stderr:\n%s", err, p.stderr.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
	t.Fatalf("no checkpoint save seen in %v; stderr:\n%s", waitTimeout, p.stderr.String())
}

// checkCheckpoints fails t unless every checkpoint of the run in dir reads
// back with its run state.
func checkCheckpoints(t *testing.T, dir string) {
	t.Helper()
	paths, err := native.Checkpoints(trainrun.CheckpointsDir(dir))
	if err != nil || len(paths) == 0 {
		t.Fatalf("checkpoints of %s = %v, %v; want at least one", dir, paths, err)
	}
	for _, path := range paths {
		if _, err := native.ReadCheckpoint(path); err != nil {
			t.Errorf("checkpoint %s is unreadable: %v", path, err)
		}
		if _, err := trainrun.FindCheckpoint(path, -1); err != nil {
			t.Errorf("checkpoint %s: %v", path, err)
		}
		state, err := os.ReadFile(filepath.Join(path, "run-state.json"))
		if err != nil || !json.Valid(state) {
			t.Errorf("checkpoint %s has no valid run-state.json: %v", path, err)
		}
	}
}

// fileSizeBlocks is the file size limit of TestTrainCheckpointWriteFails in
// the shell's ulimit -f blocks: 512 bytes in POSIX sh, 1024 in bash, so
// 1 or 2 MiB. Either is above every file a micro run writes except a
// checkpoint's data file, about 20 MB.
const fileSizeBlocks = 2048

// TestTrainCheckpointWriteFails resumes a run with a file size limit that
// the next checkpoint's data file exceeds, as on a full disk: the write
// fails with EFBIG inside GoMLX's checkpoint writer. The run must stop
// with an error that names the cause, keep the earlier checkpoint as the
// newest and readable, leave no partial checkpoint, and resume from it
// once the limit is gone.
func TestTrainCheckpointWriteFails(t *testing.T) {
	bin := buildCLI(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to set the file size limit with:", err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	flags := []string{"--steps", "4", "--log-every", "1", "--checkpoint-every", "4", "--eval-every", "0"}
	if _, stderr, err := execute(t, microTrainArgs(dir, flags...)...); err != nil {
		t.Fatalf("first run: %v\nstderr:\n%s", err, stderr)
	}
	before := newestCheckpointStep(dir)

	limited := exec.Command(sh, "-c", `ulimit -f "$0" && exec "$@"`, fmt.Sprint(fileSizeBlocks),
		bin, "train", "--out", dir, "--resume", "--steps", "8", "--log-level", "warn")
	output, err := limited.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("train with a %d-block file size limit: %v, want exit status 1; output:\n%s", fileSizeBlocks, err, output)
	}
	if want := "save checkpoint:"; !strings.Contains(string(output), want) || !strings.Contains(string(output), "file too large") {
		t.Errorf("train with a file size limit: output lacks %q and \"file too large\":\n%s", want, output)
	}
	if got := newestCheckpointStep(dir); got != before {
		t.Errorf("newest checkpoint after the failed save is step %d, want the earlier %d", got, before)
	}
	checkCheckpoints(t, dir)
	entries, err := os.ReadDir(trainrun.CheckpointsDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "step-") {
			t.Errorf("the failed save left %s in the checkpoints folder", e.Name())
		}
	}

	if _, stderr, err := execute(t, "train", "--out", dir, "--resume", "--steps", "8", "--log-level", "warn"); err != nil {
		t.Fatalf("resume without the limit: %v\nstderr:\n%s", err, stderr)
	}
	if got := newestCheckpointStep(dir); got != 8 {
		t.Errorf("newest checkpoint after the resumed run is step %d, want 8", got)
	}
}
