package evaluate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Example is one item of an evaluation or probe set: an image, a caption
// or both, and optionally a class label.
type Example struct {
	// Name identifies the example in messages, such as "test.jsonl:12".
	Name string
	// Image, when not nil, is the example's image. Otherwise ImagePath,
	// when not empty, names the file that LoadImage decodes.
	Image     image.Image
	ImagePath string
	// Caption is "" for none.
	Caption string
	// Label is the class label, or "" for none.
	Label string
}

// HasImage reports whether the example has an image.
func (e Example) HasImage() bool { return e.Image != nil || e.ImagePath != "" }

// LoadImage returns the example's image, decoding ImagePath with
// core.DecodeImage when Image is nil, or nil when it has none. Files are
// read only here, so a large set is never held decoded in memory.
func (e Example) LoadImage() (image.Image, error) {
	if e.Image != nil || e.ImagePath == "" {
		return e.Image, nil
	}
	data, err := core.ReadImageFile(e.ImagePath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name, err)
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", e.Name, e.ImagePath, err)
	}
	return img, nil
}

// maxCaptionsLine bounds one line of a captions file, so a file without
// newlines cannot make ReadCaptions buffer all of it.
const maxCaptionsLine = 1 << 20

// ReadCaptions reads a JSONL captions file, one object per line:
//
//	{"image": "images/a.png", "caption": "grinning face", "group": "smileys-emotion"}
//
// Image paths are relative to the file's folder unless absolute. Each
// image must exist, but only LoadImage decodes it. A line needs an
// image, a caption or both. labelField, when not empty, names the field
// read into Label: a string, or a number written in decimal (such as
// Fashion-MNIST's "label"). A line without that field, or with null, gets
// the label "". Other fields are ignored and blank lines skipped.
func ReadCaptions(path, labelField string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read captions: %w", err)
	}
	defer f.Close()
	examples, err := readCaptions(f, path, labelField)
	if err != nil {
		return nil, fmt.Errorf("read captions: %w", err)
	}
	return examples, nil
}

func readCaptions(r io.Reader, path, labelField string) ([]Example, error) {
	dir := filepath.Dir(path)
	scanner := bufio.NewScanner(r)
	scanner.Buffer(nil, maxCaptionsLine)
	var examples []Example
	for line := 1; scanner.Scan(); line++ {
		text := bytes.TrimSpace(scanner.Bytes())
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\ufeff"))
		}
		if len(text) == 0 {
			continue
		}
		name := fmt.Sprintf("%s:%d", path, line)
		example, err := parseCaptionLine(text, name, dir, labelField)
		if err != nil {
			return nil, err
		}
		examples = append(examples, example)
	}
	if err := scanner.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: a line is longer than %d bytes: put one example per line", path, maxCaptionsLine)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("%s has no examples: add lines such as {\"image\": \"a.png\", \"caption\": \"a cat\"}", path)
	}
	return examples, nil
}

// parseCaptionLine decodes one non-blank line of a captions file.
func parseCaptionLine(text []byte, name, dir, labelField string) (Example, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(text, &fields); err != nil {
		return Example{}, fmt.Errorf("%s: invalid JSON line (%v): want an object such as {\"image\": \"a.png\", \"caption\": \"a cat\"}", name, err)
	}
	example := Example{Name: name}
	var imagePath string
	if err := decodeStringField(fields, "image", &imagePath); err != nil {
		return Example{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := decodeStringField(fields, "caption", &example.Caption); err != nil {
		return Example{}, fmt.Errorf("%s: %w", name, err)
	}
	imagePath, example.Caption = strings.TrimSpace(imagePath), strings.TrimSpace(example.Caption)
	if imagePath == "" && example.Caption == "" {
		return Example{}, fmt.Errorf("%s: no \"image\" and no \"caption\": give at least one", name)
	}
	if labelField != "" {
		label, err := decodeLabel(fields[labelField])
		if err != nil {
			return Example{}, fmt.Errorf("%s: field %q: %w", name, labelField, err)
		}
		example.Label = label
	}
	if imagePath != "" {
		example.ImagePath = filepath.FromSlash(imagePath)
		if !filepath.IsAbs(example.ImagePath) {
			example.ImagePath = filepath.Join(dir, example.ImagePath)
		}
		info, err := os.Stat(example.ImagePath)
		if err != nil {
			return Example{}, fmt.Errorf("%s: image %q: %w: check the path, which is relative to the captions file", name, imagePath, err)
		}
		if !info.Mode().IsRegular() {
			return Example{}, fmt.Errorf("%s: image %q is not a regular file", name, imagePath)
		}
	}
	return example, nil
}

// decodeStringField sets dst to fields[key] when it is a JSON string and
// leaves it unchanged when the key is missing or null.
func decodeStringField(fields map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := fields[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("field %q is %s: want a string", key, raw)
	}
	return nil
}

// decodeLabel returns a label field's value: a string as it is, a number
// as its decimal text, and "" for a missing field or null.
func decodeLabel(raw json.RawMessage) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var value any
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(&value); err != nil {
		return "", err
	}
	switch v := value.(type) {
	case string:
		return strings.TrimSpace(v), nil
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("value %s is not a string or a number", raw)
}

// ReadImageFolder lists the images of a folder laid out by class, as
// torchvision's ImageFolder reads it: every .png, .jpg and .jpeg file
// below root/CLASS/ is an image-only example labelled CLASS, in lexical
// path order. An image directly in root has no class and is an error.
func ReadImageFolder(root string) ([]Example, error) {
	var examples []Example
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".png", ".jpg", ".jpeg":
		default:
			return nil
		}
		if !entry.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) < 2 {
			return fmt.Errorf("image %s is not in a class subfolder: move it into %s/CLASS/", path, root)
		}
		examples = append(examples, Example{Name: path, ImagePath: path, Label: parts[0]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read image folder: %w", err)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("read image folder: %s contains no .png, .jpg or .jpeg files in class subfolders", root)
	}
	return examples, nil
}

// Subsample returns n examples spread evenly over examples (those at
// index floor(i*len/n) for i = 0..n-1), or all of them when n <= 0 or n >=
// len(examples). Spreading, instead of taking the first n, keeps a file
// that is sorted by class or by emoji code point representative.
func Subsample(examples []Example, n int) []Example {
	if n <= 0 || n >= len(examples) {
		return examples
	}
	out := make([]Example, n)
	for i := range out {
		out[i] = examples[i*len(examples)/n]
	}
	return out
}
