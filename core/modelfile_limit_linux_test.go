//go:build linux && (amd64 || arm64)

package core

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadModelFileRejectsOverMaxSize maps a sparse file one byte over
// MaxModelFileSize, 4 GiB of zeros that take no disk space or memory, and
// reads it as a model file: the reader must reject it by its length alone.
func TestReadModelFileRejectsOverMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int(MaxModelFileSize + 1)
	if err := f.Truncate(int64(size)); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("cannot map %d bytes here: %v", size, err)
	}
	defer syscall.Munmap(data)

	_, err = ReadModelFile(data)
	if !errors.Is(err, ErrInvalidModelFile) {
		t.Fatalf("ReadModelFile(%d bytes) error = %v, want ErrInvalidModelFile", size, err)
	}
	if want := "file is 4294967297 bytes, over the limit of 4294967296"; !strings.Contains(err.Error(), want) {
		t.Errorf("ReadModelFile(%d bytes) error = %q, want it to contain %q", size, err, want)
	}
}
