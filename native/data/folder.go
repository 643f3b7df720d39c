package data

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// TextSource holds text-only examples, one per non-blank line of a text
// file, such as dictionary glosses. Lines are trimmed of surrounding
// whitespace.
type TextSource struct {
	path  string
	lines []string
	// lineNumbers[i] is the 1-based line of lines[i] in the file.
	lineNumbers []int
}

// maxTextLineBytes bounds one line of a text file or a captions file. The
// tokenizer reads at most the first core.MaxInputBytes (64 KiB) of a
// caption anyway.
const maxTextLineBytes = 1 << 20

// OpenTextLines reads the text file at path.
func OpenTextLines(path string) (*TextSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("text file: %w", err)
	}
	defer f.Close()
	s := &TextSource{path: path}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64<<10), maxTextLineBytes)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" {
			continue
		}
		s.lines = append(s.lines, text)
		s.lineNumbers = append(s.lineNumbers, line)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("%w: text file %s after line %d: %w: split lines longer than %d bytes",
			ErrInvalidData, path, len(s.lines), err, maxTextLineBytes)
	}
	if len(s.lines) == 0 {
		return nil, fmt.Errorf("%w: text file %s has no non-blank lines", ErrInvalidData, path)
	}
	return s, nil
}

// Len returns the number of non-blank lines.
func (s *TextSource) Len() int { return len(s.lines) }

// Example returns line i as a text-only example.
func (s *TextSource) Example(i int) (Example, error) {
	if err := checkIndex(s.path, i, len(s.lines)); err != nil {
		return Example{}, err
	}
	return Example{
		Kind:    TextOnly,
		Caption: s.lines[i],
		Label:   NoLabel,
		Origin:  fmt.Sprintf("%s:%d", s.path, s.lineNumbers[i]),
	}, nil
}

// FolderSource holds the image-only examples of an image folder: every
// .png, .jpg and .jpeg file below the folder, in lexical path order. When
// every image sits in a first-level subfolder, as in torchvision's
// ImageFolder layout (root/class/image.png), the subfolders are the
// classes: Label is the index of the image's subfolder among the sorted
// subfolder names.
type FolderSource struct {
	root    string
	paths   []string
	labels  []int
	classes []string
}

// OpenImageFolder lists the images below root.
func OpenImageFolder(root string) (*FolderSource, error) {
	s := &FolderSource{root: root}
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".png", ".jpg", ".jpeg":
			if entry.Type().IsRegular() {
				s.paths = append(s.paths, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	if len(s.paths) == 0 {
		return nil, fmt.Errorf("%w: image folder %s contains no .png, .jpg or .jpeg files", ErrInvalidData, root)
	}
	s.assignClasses()
	return s, nil
}

// assignClasses sets classes and labels when every image is in a
// first-level subfolder, and leaves every label NoLabel otherwise.
func (s *FolderSource) assignClasses() {
	s.labels = make([]int, len(s.paths))
	for i := range s.labels {
		s.labels[i] = NoLabel
	}
	folders := make([]string, len(s.paths))
	for i, path := range s.paths {
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 2 {
			return
		}
		folders[i] = parts[0]
	}
	s.classes = slices.Compact(slices.Sorted(slices.Values(folders)))
	for i, folder := range folders {
		s.labels[i], _ = slices.BinarySearch(s.classes, folder)
	}
}

// Len returns the number of images.
func (s *FolderSource) Len() int { return len(s.paths) }

// Classes returns the class names, indexed by label, or nil when the
// folder is not laid out by class.
func (s *FolderSource) Classes() []string { return slices.Clone(s.classes) }

// Example reads image i without decoding it.
func (s *FolderSource) Example(i int) (Example, error) {
	if err := checkIndex(s.root, i, len(s.paths)); err != nil {
		return Example{}, err
	}
	data, err := readImageFile(s.paths[i])
	if err != nil {
		return Example{}, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return Example{Kind: ImageOnly, ImageData: data, Label: s.labels[i], Origin: s.paths[i]}, nil
}
