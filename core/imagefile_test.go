package core

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReadImageFileBoundsTheRead reads /dev/zero, an endless stream, and a
// sparse file far over the limit: both must fail with ErrInvalidImage
// after reading at most MaxImageBytes+1 bytes.
func TestReadImageFileBoundsTheRead(t *testing.T) {
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skipf("GOOS=%s has no /dev/zero or sparse files", runtime.GOOS)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := ReadImageFile("/dev/zero")
		if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "more than 67108864 bytes") {
			t.Errorf("ReadImageFile(/dev/zero) error = %v, want ErrInvalidImage naming the limit", err)
		}
	}

	sparse := filepath.Join(t.TempDir(), "huge.png")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	_, err = ReadImageFile(sparse)
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "is 1099511627776 bytes, over the limit") {
		t.Errorf("ReadImageFile(1 TiB sparse file) error = %v, want ErrInvalidImage naming the size", err)
	}

	emoji, err := ReadImageFile(filepath.Join(imageFixtureDir, "emoji64.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeImage(emoji); err != nil {
		t.Errorf("DecodeImage(ReadImageFile(emoji64.png)) error = %v", err)
	}
	if _, err := ReadImageFile(filepath.Join(t.TempDir(), "absent.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadImageFile(absent) error = %v, want os.ErrNotExist", err)
	}
}
