package trainrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

const (
	// checkpointsDir is the folder of a run's checkpoints.
	checkpointsDir = "checkpoints"
	// runStateFile is the file beside the GoMLX files in every checkpoint
	// that contains what the trainer does not: the data position and the
	// run's options.
	runStateFile = "run-state.json"
	// stagingPrefix and trashPrefix start the names of checkpoints being
	// written and being deleted. Neither matches native.Checkpoints, so a
	// crash mid-write or mid-delete never leaves a partial checkpoint under
	// a step-NNNNNNNNN name.
	stagingPrefix = ".staging-"
	trashPrefix   = ".trash-"
)

// runState is the content of run-state.json.
type runState struct {
	// Step is the trainer's step when the checkpoint was saved.
	Step int64 `json:"step"`
	// Position is the mixer position of the next training batch.
	Position data.Position `json:"data_position"`
	Options  Options       `json:"options"`
	Saved    time.Time     `json:"saved"`
}

// CheckpointsDir returns the checkpoint folder of the run in dir.
func CheckpointsDir(dir string) string { return filepath.Join(dir, checkpointsDir) }

// saveCheckpoint saves the trainer's state and the run state, deletes all
// but the newest keep checkpoints (keep 0 keeps all) and returns the new
// checkpoint's folder.
//
// The trainer writes its checkpoint into a staging folder, run-state.json
// is added there, and only the complete folder is renamed to its final
// name, which is atomic within one file system. Each folder is flushed to
// stable storage before the rename that publishes it, so a power loss
// cannot publish a folder whose entries are missing. Old checkpoints are
// renamed away before they are deleted, for the same reason.
func saveCheckpoint(trainer *native.Trainer, dir string, state runState, keep int) (string, error) {
	final := native.CheckpointPath(dir, trainer.GlobalStep())
	if _, err := os.Stat(final); err == nil {
		return final, nil // saved at this step already, by this run or the one it resumes
	}
	staging, err := os.MkdirTemp(dir, stagingPrefix)
	if err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	defer func() { _ = os.RemoveAll(staging) }()

	saved, err := trainer.SaveCheckpoint(staging, 0)
	if err != nil {
		return "", err
	}
	encoded, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(saved, runStateFile), encoded); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	// The temporary folders are private (0700); a checkpoint is as
	// readable as the rest of the run folder.
	if err := os.Chmod(saved, 0o755); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := native.SyncPath(saved); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := os.Rename(saved, final); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if err := native.SyncPath(dir); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	if keep > 0 {
		if err := pruneCheckpoints(dir, keep); err != nil {
			return final, err
		}
	}
	return final, nil
}

// pruneCheckpoints deletes all but the newest keep checkpoints of dir.
func pruneCheckpoints(dir string, keep int) error {
	paths, err := native.Checkpoints(dir)
	if err != nil {
		return err
	}
	for _, path := range paths[:max(0, len(paths)-keep)] {
		trash := filepath.Join(dir, trashPrefix+filepath.Base(path))
		if err := os.Rename(path, trash); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}

// removeLeftovers deletes the staging and trash folders that an
// interrupted save or prune left in dir.
func removeLeftovers(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) || strings.HasPrefix(e.Name(), trashPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove unfinished checkpoint: %w", err)
			}
		}
	}
	return nil
}

// latestState returns the newest checkpoint of the run in dir and its run
// state. It fails with native.ErrNoCheckpoint when there is none.
func latestState(dir string) (string, runState, error) {
	paths, err := native.Checkpoints(CheckpointsDir(dir))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(paths) == 0) {
		return "", runState{}, fmt.Errorf("resume %s: %w in %s; start the run without --resume",
			dir, native.ErrNoCheckpoint, CheckpointsDir(dir))
	}
	if err != nil {
		return "", runState{}, fmt.Errorf("resume %s: %w", dir, err)
	}
	path := paths[len(paths)-1]
	state, err := readState(path)
	return path, state, err
}

// readState reads the run-state.json of a checkpoint folder.
func readState(path string) (runState, error) {
	var state runState
	encoded, err := os.ReadFile(filepath.Join(path, runStateFile))
	if err != nil {
		return state, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := json.Unmarshal(encoded, &state); err != nil {
		return state, fmt.Errorf("checkpoint %s: %s: %w", path, runStateFile, err)
	}
	return state, nil
}

// LoadOptions returns the options saved with the newest checkpoint of the
// run in dir, the options a resumed run starts from.
func LoadOptions(dir string) (Options, error) {
	_, state, err := latestState(dir)
	return state.Options, err
}

// FindCheckpoint returns the checkpoint folder of step (the newest when
// step is negative) in dir, which is a run folder, its checkpoints folder
// or one checkpoint's folder.
func FindCheckpoint(dir string, step int64) (string, error) {
	if saved, ok := native.CheckpointStep(dir); ok {
		if step >= 0 && step != saved {
			return "", fmt.Errorf("checkpoint %s is step %d, not %d: pass its run folder to choose a step", dir, saved, step)
		}
		return dir, nil
	}
	search := dir
	if info, err := os.Stat(CheckpointsDir(dir)); err == nil && info.IsDir() {
		search = CheckpointsDir(dir)
	}
	paths, err := native.Checkpoints(search)
	if err != nil {
		return "", err
	}
	if len(paths) == 0 {
		return "", fmt.Errorf("%w in %s: pass a run folder that train wrote, or one of its checkpoints/step-N folders",
			native.ErrNoCheckpoint, dir)
	}
	if step < 0 {
		return paths[len(paths)-1], nil
	}
	var steps []string
	for _, path := range paths {
		saved, _ := native.CheckpointStep(path)
		if saved == step {
			return path, nil
		}
		steps = append(steps, fmt.Sprint(saved))
	}
	return "", fmt.Errorf("no checkpoint of step %d in %s: it contains steps %s", step, search, strings.Join(steps, ", "))
}
