package data

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
)

// FashionMNISTDir is the folder that Debian's dataset-fashion-mnist package
// installs the IDX files into.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTClasses names the ten Fashion-MNIST classes, indexed by
// label.
var FashionMNISTClasses = [10]string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// fashionMNISTLicense is Zalando's MIT licence for Fashion-MNIST.
//
//go:embed licenses/Fashion-MNIST-LICENSE.txt
var fashionMNISTLicense string

// fashionMNISTFiles maps each split to its image and label files.
var fashionMNISTFiles = []struct {
	split, images, labels string
}{
	{"train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
	{"test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
}

// FashionMNISTOptions configures BuildFashionMNIST.
type FashionMNISTOptions struct {
	// SourceDir holds the IDX files; empty means FashionMNISTDir.
	SourceDir string
	// OutDir receives the dataset.
	OutDir string
	// MaxTrain and MaxTest keep only the first images of each split; zero
	// keeps all (60000 and 10000).
	MaxTrain, MaxTest int
	// Workers writes images in parallel; zero means GOMAXPROCS.
	Workers int
	// Progress, when not nil, is called after each image with the number
	// written so far and the total.
	Progress func(done, total int)
	Logger   *slog.Logger
}

// fashionLine is one line of the Fashion-MNIST captions files.
type fashionLine struct {
	Image string `json:"image"`
	Label int    `json:"label"`
	Class string `json:"class"`
}

// BuildFashionMNIST converts Fashion-MNIST's IDX files into image-only
// examples that OpenCaptions reads, keeping the class labels for
// evaluation:
//
//	images/SPLIT/NNNNN.png  28x28 grey
//	train.jsonl, test.jsonl {"image", "label", "class"}
//	LICENSE                 Zalando's MIT licence
//
// It returns the number of images written per split.
func BuildFashionMNIST(ctx context.Context, opts FashionMNISTOptions) (map[string]int, error) {
	logger := loggerOrDiscard(opts.Logger)
	if opts.SourceDir == "" {
		opts.SourceDir = FashionMNISTDir
	}
	if opts.MaxTrain < 0 || opts.MaxTest < 0 {
		return nil, fmt.Errorf("fashion-mnist: max train %d and max test %d must not be negative", opts.MaxTrain, opts.MaxTest)
	}
	limits := map[string]int{"train": opts.MaxTrain, "test": opts.MaxTest}

	// Read every split first, so a missing file fails before any writing.
	type split struct {
		name   string
		source *IDXSource
		count  int
	}
	var splits []split
	total := 0
	for _, files := range fashionMNISTFiles {
		imagesPath := filepath.Join(opts.SourceDir, files.images)
		labelsPath := filepath.Join(opts.SourceDir, files.labels)
		source, err := OpenIDX(imagesPath, labelsPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fashion-mnist: %w: install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass the folder that contains %s",
				err, files.images)
		}
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist: %w", err)
		}
		for i, label := range source.Labels() {
			if int(label) >= len(FashionMNISTClasses) {
				return nil, fmt.Errorf("%w: fashion-mnist: %s: label %d of image %d is not a class 0 to 9", ErrInvalidData, labelsPath, label, i)
			}
		}
		count := source.Len()
		if limit := limits[files.split]; limit > 0 {
			count = min(count, limit)
		}
		logger.Info("read fashion-mnist split", "split", files.split, "images", source.Len(), "kept", count)
		splits = append(splits, split{files.split, source, count})
		total += count
	}

	// Write the images of all splits as one parallel job.
	done := 0
	counts := map[string]int{}
	for _, s := range splits {
		offset := done
		err := runParallel(ctx, s.count, opts.Workers, func(i int) error {
			return writePNG(filepath.Join(opts.OutDir, filepath.FromSlash(fashionImagePath(s.name, i))), s.source.Images().Image(i))
		}, func(n, _ int) {
			if opts.Progress != nil {
				opts.Progress(offset+n, total)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist: %w", err)
		}
		done += s.count

		lines := make([]fashionLine, s.count)
		for i := range lines {
			label := int(s.source.Labels()[i])
			lines[i] = fashionLine{Image: fashionImagePath(s.name, i), Label: label, Class: FashionMNISTClasses[label]}
		}
		if err := writeJSONLines(filepath.Join(opts.OutDir, s.name+".jsonl"), lines); err != nil {
			return nil, fmt.Errorf("fashion-mnist: %w", err)
		}
		counts[s.name] = s.count
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, "LICENSE"), []byte(fashionMNISTLicense), 0o644); err != nil {
		return nil, fmt.Errorf("fashion-mnist: %w", err)
	}
	return counts, nil
}

// fashionImagePath returns the slash-separated path of image i of split,
// relative to the output folder.
func fashionImagePath(split string, i int) string {
	return path.Join("images", split, fmt.Sprintf("%05d.png", i))
}
