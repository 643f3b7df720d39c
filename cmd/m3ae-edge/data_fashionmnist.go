package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// newDataFashionMNISTCommand returns "m3ae-edge data fashion-mnist", which
// converts Debian's Fashion-MNIST package into image-only examples.
func newDataFashionMNISTCommand() *cobra.Command {
	var opts data.FashionMNISTOptions
	cmd := &cobra.Command{
		Use:   "fashion-mnist --out DIR",
		Short: "Convert Fashion-MNIST into image-only examples with class labels",
		Long: `fashion-mnist converts the Fashion-MNIST IDX files that Debian's
dataset-fashion-mnist package installs (apt-get install
dataset-fashion-mnist) into 28x28 grey PNGs and a train.jsonl and a
test.jsonl file whose lines hold "image", "label" (0 to 9) and "class".
Training reads them as image-only examples; the labels serve linear-probe
evaluation.`,
		Example: `  m3ae-edge data fashion-mnist --out data/fashion-mnist`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
				return err
			}
			bar := newProgressBar(cmd.ErrOrStderr(), "writing images")
			opts.Logger, opts.Progress = logger, bar.Update
			counts, err := data.BuildFashionMNIST(cmd.Context(), opts)
			bar.Finish()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "train %s, test %s\nwrote %s\n", countNoun(counts["train"], "image"), countNoun(counts["test"], "image"), opts.OutDir)
			return err
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.OutDir, "out", "", "output folder (required)")
	flags.StringVar(&opts.SourceDir, "source", data.FashionMNISTDir, "folder holding the four *-idx?-ubyte.gz files")
	flags.IntVar(&opts.MaxTrain, "max-train", 0, "keep only the first N training images; 0 keeps all 60000")
	flags.IntVar(&opts.MaxTest, "max-test", 0, "keep only the first N test images; 0 keeps all 10000")
	flags.IntVar(&opts.Workers, "workers", 0, "images written in parallel; 0 means one per CPU")
	cmd.MarkFlagRequired("out")
	return cmd
}
