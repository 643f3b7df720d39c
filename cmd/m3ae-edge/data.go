package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// newDataCommand returns "m3ae-edge data", which groups the commands that
// build and inspect training data.
func newDataCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Build and inspect training datasets",
		Long: `The data commands build datasets from packages installed on this machine
and measure them. Each built dataset is a folder of PNG images with one
JSONL captions file per split, the layout that training reads.`,
		// A RunE makes cobra report an unknown subcommand as an error
		// instead of printing help and exiting 0.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q: run %s --help for the list", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDataEmojiCommand(), newDataFashionMNISTCommand(), newDataStatsCommand())
	return cmd
}

// newDataStatsCommand returns "m3ae-edge data stats", which prints the
// pixel mean and std of a dataset for its training config.
func newDataStatsCommand() *cobra.Command {
	var (
		captions, shards, folder string
		opts                     data.NormOptions
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the per-channel pixel mean and std of a dataset as JSON",
		Long: `stats measures the red, green and blue mean and standard deviation of a
sample of a dataset's images, each composited over white, resized and
centre-cropped to --image-size, with pixels scaled to [0, 1]. Training
normalizes pixels with these numbers. Give exactly one of --captions,
--shards and --image-folder.`,
		Example: `  m3ae-edge data stats --captions data/emoji/train.jsonl
  m3ae-edge data stats --shards 'shards/{00000..00009}.tar' --sample 5000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			opts.Logger = logger
			src, err := openStatsSource(captions, shards, folder, opts.SkipBad)
			if err != nil {
				return err
			}
			norm, measured, err := data.ComputeNorm(src, opts)
			if err != nil {
				return err
			}
			out := struct {
				Mean   [3]float32 `json:"mean"`
				Std    [3]float32 `json:"std"`
				Images int        `json:"images"`
			}{norm.Mean, norm.Std, measured}
			text, err := json.Marshal(out)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(text))
			return err
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&captions, "captions", "", "captions file (.jsonl or .csv) of an image folder; give one of --captions, --shards and --image-folder (default none)")
	flags.StringVar(&shards, "shards", "", "WebDataset tar shards: a path or a brace pattern such as 'shards/{00000..00009}.tar' (default none)")
	flags.StringVar(&folder, "image-folder", "", "folder of .png and .jpg images (default none)")
	flags.IntVar(&opts.Sample, "sample", 1000, "number of images to measure, picked at random")
	flags.IntVar(&opts.ImageSize, "image-size", 64, "side in pixels that images are resized and cropped to first, the model's image size")
	flags.Uint64Var(&opts.Seed, "seed", 0, "seed of the random sample (default 0)")
	flags.BoolVar(&opts.SkipBad, "skip-bad", false, "skip unreadable lines and images, logging a count, instead of failing")
	return cmd
}

// openStatsSource opens the one dataset that the stats flags name.
func openStatsSource(captions, shards, folder string, skipBad bool) (data.Source, error) {
	sourcesGiven := 0
	for _, v := range []string{captions, shards, folder} {
		if v != "" {
			sourcesGiven++
		}
	}
	if sourcesGiven != 1 {
		return nil, fmt.Errorf("give exactly one of --captions, --shards and --image-folder (got %d)", sourcesGiven)
	}
	switch {
	case captions != "":
		return data.OpenCaptions(captions, data.CaptionsOptions{SkipBad: skipBad})
	case shards != "":
		return data.OpenShards([]string{shards}, data.ShardOptions{SkipBad: skipBad})
	}
	return data.OpenImageFolder(folder)
}
