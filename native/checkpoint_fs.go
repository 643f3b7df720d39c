package native

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// checkpointFS is every file operation of a checkpoint save, so that tests
// can make any one of them fail, as a full disk or a failing device would.
type checkpointFS interface {
	// MkdirTemp, Rename and RemoveAll are those of package os.
	MkdirTemp(dir, pattern string) (string, error)
	Rename(oldPath, newPath string) error
	RemoveAll(path string) error
	// WriteStore writes every variable and parameter of store into the
	// folder dir with GoMLX's checkpoint package.
	WriteStore(store *model.Store, dir string) error
	// Sync flushes the file or folder at path to stable storage.
	Sync(path string) error
}

// osCheckpointFS is checkpointFS on the operating system's file system.
type osCheckpointFS struct{}

func (osCheckpointFS) MkdirTemp(dir, pattern string) (string, error) {
	return os.MkdirTemp(dir, pattern)
}

func (osCheckpointFS) Rename(oldPath, newPath string) error {
	return os.Rename(oldPath, newPath)
}

func (osCheckpointFS) RemoveAll(path string) error {
	return os.RemoveAll(path)
}

func (osCheckpointFS) WriteStore(store *model.Store, dir string) error {
	handler, err := checkpoint.Build(store).Dir(dir).Keep(-1).Done()
	if err != nil {
		return err
	}
	return handler.Save()
}

func (osCheckpointFS) Sync(path string) error {
	return SyncPath(path)
}

// SyncPath flushes the file or folder at path to stable storage. Syncing a
// folder makes the creation, renaming and removal of its entries durable.
func SyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

// syncFolder flushes every regular file of dir, then dir itself, so that a
// power loss after the rename that follows cannot leave a checkpoint
// folder whose files are missing or short.
func syncFolder(fsys checkpointFS, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type().IsRegular() {
			errs = append(errs, fsys.Sync(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush checkpoint files: %w", err)
	}
	return fsys.Sync(dir)
}
