package core

import (
	"fmt"
	"io"
	"os"
)

// ReadImageFile returns the bytes of the image file at path for
// DecodeImage. It reads at most MaxImageBytes+1 bytes, so a path that names
// an endless stream such as /dev/zero, or a huge or sparse file, fails with
// an error wrapping ErrInvalidImage instead of filling memory. A regular
// file over the limit fails before any byte is read. Pipes and other
// streams are read as they come, so "<(curl ...)" works.
func ReadImageFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() && info.Size() > MaxImageBytes {
		return nil, fmt.Errorf("%w: image file %s is %d bytes, over the limit of %d (MaxImageBytes): downscale or recompress the image",
			ErrInvalidImage, path, info.Size(), MaxImageBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxImageBytes {
		return nil, fmt.Errorf("%w: image file %s has more than %d bytes (MaxImageBytes): give a PNG or JPEG file under the limit",
			ErrInvalidImage, path, MaxImageBytes)
	}
	return data, nil
}
