package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// newDataEmojiCommand returns "m3ae-edge data emoji", which builds the
// emoji image-caption dataset from npm packages.
func newDataEmojiCommand() *cobra.Command {
	var (
		cacheDir string
		opts     data.EmojiOptions
	)
	var pinned []string
	for _, p := range data.EmojiPackages {
		pinned = append(pinned, p.Name+"@"+p.Version)
	}
	cmd := &cobra.Command{
		Use:   "emoji --out DIR",
		Short: "Build the emoji image-caption dataset from npm packages",
		Long: fmt.Sprintf(`emoji installs the npm packages
  %s
into the cache folder (with --ignore-scripts, and only when they are not
there yet), joins their 64x64 Noto (google) and Twemoji (twitter) images
with the English emojibase labels, composites the images over white and
writes them as PNGs with a train.jsonl and a test.jsonl captions file.
Skin-tone variants share their base emoji's split. The licence texts and a
NOTICE.md are copied into the output folder. It needs Node.js and npm and
network access to the npm registry the first time.`, strings.Join(pinned, "\n  ")),
		Example: `  m3ae-edge data emoji --out data/emoji
  m3ae-edge data emoji --out testdata/emoji-mini --max-train 48 --max-test 16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if cacheDir == "" {
				return fmt.Errorf("no user cache folder ($HOME and $XDG_CACHE_HOME are unset): pass --cache DIR")
			}
			nodeModules, err := data.InstallNPMPackages(cmd.Context(), cacheDir, data.EmojiPackages, logger)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
				return err
			}

			bar := newProgressBar(cmd.ErrOrStderr(), "converting emoji")
			opts.NodeModules, opts.Logger, opts.Progress = nodeModules, logger, bar.Update
			summary, err := data.BuildEmoji(cmd.Context(), opts)
			bar.Finish()
			if err != nil {
				return err
			}
			return printEmojiSummary(cmd, opts, summary)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.OutDir, "out", "", "output folder (required)")
	flags.StringVar(&cacheDir, "cache", defaultNPMCache(), "folder that npm installs the packages into")
	flags.StringSliceVar(&opts.Sources, "sources", []string{"google", "twitter"}, "image sets to include, comma-separated: google, twitter")
	flags.IntVar(&opts.TestPercent, "test-percent", 10, "share of base emoji put in the test split, in percent (0 to 100)")
	flags.IntVar(&opts.MaxTrain, "max-train", 0, "most image-caption pairs in the train split, sampled over all emoji; 0 keeps all")
	flags.IntVar(&opts.MaxTest, "max-test", 0, "most image-caption pairs in the test split, sampled over all emoji; 0 keeps all")
	flags.BoolVar(&opts.TagLines, "tag-lines", false, "also write SPLIT-tags.txt, one text-only line of emojibase tags per emoji")
	flags.IntVar(&opts.Workers, "workers", 0, "images converted in parallel; 0 means one per CPU")
	cmd.MarkFlagRequired("out")
	return cmd
}

// printEmojiSummary writes the pairs per split and image set to stdout.
func printEmojiSummary(cmd *cobra.Command, opts data.EmojiOptions, summary data.EmojiSummary) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "split\t%s\ttotal\t\n", strings.Join(opts.Sources, "\t"))
	for _, split := range []string{"train", "test"} {
		fmt.Fprintf(w, "%s\t", split)
		total := 0
		for _, source := range opts.Sources {
			n := summary.Pairs[split][source]
			total += n
			fmt.Fprintf(w, "%d\t", n)
		}
		fmt.Fprintf(w, "%d\t\n", total)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.TagLines {
		fmt.Fprintf(out, "tag lines: train %d, test %d\n", summary.TagLines["train"], summary.TagLines["test"])
	}
	fmt.Fprintf(out, "images without a caption: %d, listed but missing: %d\n", summary.Unjoined, summary.Missing)
	_, err := fmt.Fprintf(out, "wrote %s\n", opts.OutDir)
	return err
}

// defaultNPMCache returns m3ae-edge/npm in the user's cache folder, or ""
// when the environment names none.
func defaultNPMCache() string {
	userCache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(userCache, "m3ae-edge", "npm")
}
