package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/evaluate"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// armData names the training sources of one arm. An empty path means the
// arm has no such source.
type armData struct {
	// paired is a JSONL captions file of image-caption pairs.
	paired string
	// images is a folder of image-only examples.
	images string
	// texts is a text file with one text-only example per line.
	texts string
}

// Files of a derived data folder.
const (
	derivedPairedName = "paired.jsonl"
	derivedImagesName = "images"
	derivedTextsName  = "captions.txt"
)

// prepareArmData returns the training sources of arm, writing them under
// dataDir/ARM when the arm splits or drops the captions. The folder is
// built beside its final name and renamed into place when complete, so a
// folder under the arm's name is whole and a rerun reuses it.
//
// Which pairs stay paired depends only on the example index, through a
// fixed hash, so every seed of an arm trains on the same split.
func prepareArmData(captions, dataDir string, arm Arm) (armData, error) {
	absCaptions, err := filepath.Abs(captions)
	if err != nil {
		return armData{}, fmt.Errorf("--captions %s: %w", captions, err)
	}
	if arm.PairedFraction == 1 && arm.WithText {
		return armData{paired: absCaptions}, nil
	}

	dir, err := filepath.Abs(filepath.Join(dataDir, arm.Name))
	if err != nil {
		return armData{}, err
	}
	examples, err := readPairs(absCaptions)
	if err != nil {
		return armData{}, err
	}
	numPaired := int(math.Round(arm.PairedFraction * float64(len(examples))))
	if arm.PairedFraction > 0 && arm.PairedFraction < 1 && (numPaired == 0 || numPaired == len(examples)) {
		return armData{}, fmt.Errorf("--paired-fractions %g keeps %d of the %d pairs of %s paired: give a share that leaves pairs on both sides, or 0 or 1",
			arm.PairedFraction, numPaired, len(examples), captions)
	}
	paired := make([]bool, len(examples))
	for _, i := range trainrun.HashOrder(len(examples))[:numPaired] {
		paired[i] = true
	}

	out := armData{images: filepath.Join(dir, derivedImagesName)}
	if numPaired > 0 {
		out.paired = filepath.Join(dir, derivedPairedName)
	}
	if arm.WithText && numPaired < len(examples) {
		out.texts = filepath.Join(dir, derivedTextsName)
	}
	if _, err := os.Stat(dir); err == nil {
		return out, nil
	}

	staging := dir + ".partial"
	if err := os.RemoveAll(staging); err != nil {
		return armData{}, fmt.Errorf("derived data: %w", err)
	}
	if err := writeDerivedData(staging, examples, paired, arm.WithText); err != nil {
		_ = os.RemoveAll(staging)
		return armData{}, fmt.Errorf("derived data of arm %s: %w", arm.Name, err)
	}
	if err := os.Rename(staging, dir); err != nil {
		return armData{}, fmt.Errorf("derived data of arm %s: %w", arm.Name, err)
	}
	return out, nil
}

// readPairs reads a JSONL captions file whose every line has an image and a
// caption, with each image path made absolute.
func readPairs(path string) ([]evaluate.Example, error) {
	examples, err := evaluate.ReadCaptions(path, "")
	if err != nil {
		return nil, fmt.Errorf("--captions: %w", err)
	}
	for i, example := range examples {
		if !example.HasImage() || example.Caption == "" {
			return nil, fmt.Errorf("--captions: %s lacks an image or a caption: the studies need a pair on every line", example.Name)
		}
		switch strings.ToLower(filepath.Ext(example.ImagePath)) {
		case ".png", ".jpg", ".jpeg":
		default:
			return nil, fmt.Errorf("--captions: %s: image %s is not .png, .jpg or .jpeg, which an image folder needs", example.Name, example.ImagePath)
		}
		if examples[i].ImagePath, err = filepath.Abs(example.ImagePath); err != nil {
			return nil, err
		}
	}
	return examples, nil
}

// writeDerivedData writes into dir the pairs marked in paired as a
// captions file, every other image into an image folder and, withText,
// every other caption into a text file. Without text every image goes into
// the folder.
func writeDerivedData(dir string, examples []evaluate.Example, paired []bool, withText bool) error {
	images := filepath.Join(dir, derivedImagesName)
	if err := os.MkdirAll(images, 0o755); err != nil {
		return err
	}
	var pairedLines, textLines []byte
	for i, example := range examples {
		if paired[i] {
			line, err := json.Marshal(map[string]string{"image": example.ImagePath, "caption": example.Caption})
			if err != nil {
				return err
			}
			pairedLines = append(append(pairedLines, line...), '\n')
			continue
		}
		// Names keep the captions file's order, which the image folder
		// reads back in lexical order.
		name := fmt.Sprintf("%06d%s", i, strings.ToLower(filepath.Ext(example.ImagePath)))
		if err := linkOrCopy(example.ImagePath, filepath.Join(images, name)); err != nil {
			return err
		}
		if withText {
			// A text file holds one example per line, so line breaks
			// inside a caption become spaces.
			textLines = append(append(textLines, strings.Join(strings.Fields(example.Caption), " ")...), '\n')
		}
	}
	if len(pairedLines) > 0 {
		if err := os.WriteFile(filepath.Join(dir, derivedPairedName), pairedLines, 0o644); err != nil {
			return err
		}
	}
	if len(textLines) > 0 {
		if err := os.WriteFile(filepath.Join(dir, derivedTextsName), textLines, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// linkOrCopy makes dst a hard link to src, or a copy of it where the file
// system refuses the link, for example across devices.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	return err
}
