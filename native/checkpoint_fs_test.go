package native

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/ml/model"
)

// faultFS is the real file system, except that its failAt-th operation
// fails with ENOSPC, as it would on a full disk. RemoveAll never fails,
// since deleting frees space. WriteStore fails after writing the files and
// cutting the largest one in half, as a write that runs out of space
// leaves it.
type faultFS struct {
	osCheckpointFS
	failAt int // 1-based; 0 never fails
	ops    []string
}

// fail records op and returns the injected error when op is the failAt-th.
func (f *faultFS) fail(op, path string) error {
	f.ops = append(f.ops, op)
	if len(f.ops) == f.failAt {
		return &fs.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
	}
	return nil
}

func (f *faultFS) MkdirTemp(dir, pattern string) (string, error) {
	if err := f.fail("mkdirtemp", dir); err != nil {
		return "", err
	}
	return f.osCheckpointFS.MkdirTemp(dir, pattern)
}

func (f *faultFS) Rename(oldPath, newPath string) error {
	if err := f.fail("rename", newPath); err != nil {
		return err
	}
	return f.osCheckpointFS.Rename(oldPath, newPath)
}

func (f *faultFS) Sync(path string) error {
	if err := f.fail("sync "+filepath.Base(path), path); err != nil {
		return err
	}
	return f.osCheckpointFS.Sync(path)
}

func (f *faultFS) WriteStore(store *model.Store, dir string) error {
	injected := f.fail("write", dir)
	if err := f.osCheckpointFS.WriteStore(store, dir); err != nil || injected == nil {
		return err
	}
	largest, size := "", int64(-1)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Size() > size {
			largest, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	if err := os.Truncate(largest, size/2); err != nil {
		return err
	}
	return injected
}

// TestSaveCheckpointDiskFull saves a checkpoint, then fails each file
// operation of the next save in turn. Every failed save must report
// ENOSPC, leave the earlier checkpoint byte for byte as it was, leave no
// temporary folder and no unreadable checkpoint, and a save after the
// failures must succeed and resume.
func TestSaveCheckpointDiskFull(t *testing.T) {
	cfg := microConfig(t)
	tc := DefaultTrainConfig(4)
	backend := testBackend(t)
	trainer, err := NewTrainer(backend, initModel(t, cfg, 5), tc)
	if err != nil {
		t.Fatal(err)
	}
	examples := syntheticExamples(cfg, 4, 2, false)
	if _, _, err := trainer.Step(examples); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	previous, err := trainer.SaveCheckpoint(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := hashFolder(t, previous)
	if _, _, err := trainer.Step(examples); err != nil {
		t.Fatal(err)
	}

	// Count the operations of a save that does not fail.
	counter := &faultFS{}
	if _, err := trainer.saveCheckpoint(counter, t.TempDir(), 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("a save performs %d operations: %v", len(counter.ops), counter.ops)

	for failAt := 1; failAt <= len(counter.ops); failAt++ {
		fault := &faultFS{failAt: failAt}
		_, err := trainer.saveCheckpoint(fault, dir, 1)
		op := fault.ops[len(fault.ops)-1]
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("save with %q failing = %v, want an error wrapping ENOSPC", op, err)
		}
		if !strings.HasPrefix(err.Error(), "save checkpoint: ") {
			t.Errorf("save with %q failing: error %q, want it to start with \"save checkpoint: \"", op, err)
		}
		if got := hashFolder(t, previous); !maps.Equal(got, before) {
			t.Errorf("save with %q failing changed the earlier checkpoint %s", op, previous)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), checkpointTempPrefix) {
				t.Errorf("save with %q failing left %s", op, e.Name())
			}
		}
		paths, err := Checkpoints(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			if _, err := ReadCheckpoint(path); err != nil {
				t.Errorf("save with %q failing left an unreadable checkpoint %s: %v", op, path, err)
			}
		}
		if !slices.Contains(paths, previous) {
			t.Errorf("save with %q failing: checkpoints %v, want the earlier %s among them", op, paths, previous)
		}
	}

	saved, err := trainer.SaveCheckpoint(dir, 1)
	if err != nil {
		t.Fatalf("save after the failures: %v", err)
	}
	resumed, err := ResumeTrainer(backend, dir, tc)
	if err != nil {
		t.Fatalf("resume after the failures: %v", err)
	}
	if resumed.GlobalStep() != trainer.GlobalStep() {
		t.Errorf("resumed from %s at step %d, want %d", saved, resumed.GlobalStep(), trainer.GlobalStep())
	}
}

// hashFolder returns the SHA-256 of every file in dir, by name.
func hashFolder(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	hashes := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		hashes[e.Name()] = sha256.Sum256(data)
	}
	return hashes
}
