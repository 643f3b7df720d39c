package data

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// apacheLicense is the text of the Apache License 2.0, which covers the
// Noto Emoji images; the npm package ships only its own MIT licence.
//
//go:embed licenses/Apache-2.0.txt
var apacheLicense string

// EmojiOptions configures BuildEmoji.
type EmojiOptions struct {
	// NodeModules is the folder that holds the EmojiPackages, as
	// InstallNPMPackages returns it.
	NodeModules string
	// OutDir receives the dataset.
	OutDir string
	// Sources are the image sets to use, keys of EmojiSources; empty means
	// all of them.
	Sources []string
	// TestPercent is the share of base emoji, in percent, put in the test
	// split.
	TestPercent int
	// MaxTrain and MaxTest cap the image-caption pairs of each split; zero
	// keeps all. A capped split keeps a sample spread over all emoji.
	MaxTrain, MaxTest int
	// TagLines also writes SPLIT-tags.txt, one text-only line of
	// comma-separated emojibase tags per emoji of the split.
	TagLines bool
	// Workers converts images in parallel; zero means GOMAXPROCS.
	Workers int
	// Progress, when not nil, is called after each image with the number
	// converted so far and the total.
	Progress func(done, total int)
	Logger   *slog.Logger
}

// EmojiSummary counts what BuildEmoji wrote.
type EmojiSummary struct {
	// Pairs maps split, then source, to the image-caption pairs written.
	Pairs map[string]map[string]int
	// TagLines maps split to the lines of SPLIT-tags.txt.
	TagLines map[string]int
	// Unjoined counts images without an emojibase caption, and Missing
	// images that emoji.json lists but the package lacks.
	Unjoined, Missing int
}

// emojiLine is one line of the emoji captions files.
type emojiLine struct {
	Image   string   `json:"image"`
	Caption string   `json:"caption"`
	Tags    []string `json:"tags"`
	Source  string   `json:"source"`
	Hexcode string   `json:"hexcode"`
	// Group is omitted for emoji that emojibase puts in no group.
	Group string `json:"group,omitempty"`
}

// BuildEmoji joins the emoji images of the installed EmojiPackages with
// their English captions and writes the dataset to OutDir:
//
//	images/SOURCE/FILE.png   opaque 64x64 RGB, composited over white
//	train.jsonl, test.jsonl  {"image", "caption", "tags", "source", "hexcode", "group"}
//	train-tags.txt, ...      with TagLines
//	LICENSES/, NOTICE.md     the licence texts and where each part is from
//
// Images and captions join on NormalizeHexcode. The caption is emojibase's
// label, such as "waving hand: light skin tone", and the group is
// emojibase's group key, such as "people-body", which a linear probe can
// use as a class label. The split is by base emoji (EmojiSplit), so skin-tone
// variants share their base emoji's split.
func BuildEmoji(ctx context.Context, opts EmojiOptions) (EmojiSummary, error) {
	logger := loggerOrDiscard(opts.Logger)
	sources := opts.Sources
	if len(sources) == 0 {
		sources = slices.Sorted(maps.Keys(EmojiSources))
	}
	if opts.TestPercent < 0 || opts.TestPercent > 100 {
		return EmojiSummary{}, fmt.Errorf("emoji: test percent %d: want 0 to 100", opts.TestPercent)
	}
	if opts.MaxTrain < 0 || opts.MaxTest < 0 {
		return EmojiSummary{}, fmt.Errorf("emoji: max train %d and max test %d must not be negative", opts.MaxTrain, opts.MaxTest)
	}
	for _, source := range sources {
		if _, ok := EmojiSources[source]; !ok {
			return EmojiSummary{}, fmt.Errorf("emoji: unknown image set %q: use google or twitter", source)
		}
	}

	// Join images and captions.
	groups, err := ReadEmojiGroups(filepath.Join(opts.NodeModules, "emojibase-data", "meta", "groups.json"))
	if err != nil {
		return EmojiSummary{}, err
	}
	captions, err := ReadEmojiCaptions(filepath.Join(opts.NodeModules, "emojibase-data", "en", "data.json"), groups)
	if err != nil {
		return EmojiSummary{}, err
	}
	summary := EmojiSummary{Pairs: map[string]map[string]int{}, TagLines: map[string]int{}}
	var images []EmojiImage
	for _, source := range sources {
		found, missing, err := ReadEmojiImages(filepath.Join(opts.NodeModules, EmojiSources[source]), source)
		if err != nil {
			return EmojiSummary{}, err
		}
		logger.Info("read emoji images", "source", source, "images", len(found), "missing", missing)
		images = append(images, found...)
		summary.Missing += missing
	}
	records, unjoined := JoinEmoji(images, captions, opts.TestPercent)
	summary.Unjoined = len(unjoined)
	for _, img := range unjoined {
		logger.Debug("emoji image has no caption", "source", img.Source, "unified", img.Unified)
	}
	records = sampleEmoji(records, opts.MaxTrain, opts.MaxTest)

	// Convert the images.
	err = runParallel(ctx, len(records), opts.Workers, func(i int) error {
		r := records[i]
		src := filepath.Join(opts.NodeModules, EmojiSources[r.Source], "img", r.Source, "64", r.File)
		return convertToOpaquePNG(src, filepath.Join(opts.OutDir, "images", r.Source, r.File))
	}, opts.Progress)
	if err != nil {
		return EmojiSummary{}, fmt.Errorf("emoji: %w", err)
	}

	// Write the captions files.
	for _, split := range []string{"train", "test"} {
		var lines []emojiLine
		var tagLines []string
		seenTags := map[string]bool{}
		for _, r := range records {
			if r.Split != split {
				continue
			}
			lines = append(lines, emojiLine{
				Image:   path.Join("images", r.Source, r.File),
				Caption: r.Caption.Label,
				Tags:    r.Caption.Tags,
				Source:  r.Source,
				Hexcode: r.Unified,
				Group:   r.Caption.Group,
			})
			if text := strings.Join(r.Caption.Tags, ", "); text != "" && !seenTags[text] {
				seenTags[text] = true
				tagLines = append(tagLines, text)
			}
			if summary.Pairs[split] == nil {
				summary.Pairs[split] = map[string]int{}
			}
			summary.Pairs[split][r.Source]++
		}
		if err := writeJSONLines(filepath.Join(opts.OutDir, split+".jsonl"), lines); err != nil {
			return EmojiSummary{}, fmt.Errorf("emoji: %w", err)
		}
		if opts.TagLines {
			text := strings.Join(tagLines, "\n") + "\n"
			if err := os.WriteFile(filepath.Join(opts.OutDir, split+"-tags.txt"), []byte(text), 0o644); err != nil {
				return EmojiSummary{}, fmt.Errorf("emoji: %w", err)
			}
			summary.TagLines[split] = len(tagLines)
		}
	}

	if err := writeEmojiLicenses(opts.NodeModules, opts.OutDir, sources); err != nil {
		return EmojiSummary{}, fmt.Errorf("emoji: %w", err)
	}
	return summary, nil
}

// convertToOpaquePNG decodes the image at src, composites it over white
// and writes it to dst as an opaque 8-bit PNG.
func convertToOpaquePNG(src, dst string) error {
	data, err := readImageFile(src)
	if err != nil {
		return err
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidData, src, err)
	}
	return writePNG(dst, core.CompositeOnWhite(img))
}

// writeEmojiLicenses copies each used package's LICENSE into
// OutDir/LICENSES and writes NOTICE.md.
func writeEmojiLicenses(nodeModules, outDir string, sources []string) error {
	licenseDir := filepath.Join(outDir, "LICENSES")
	if err := os.MkdirAll(licenseDir, 0o755); err != nil {
		return err
	}
	packages := []string{"emojibase-data"}
	for _, source := range sources {
		packages = append(packages, EmojiSources[source])
	}
	for _, pkg := range packages {
		text, err := os.ReadFile(filepath.Join(nodeModules, pkg, "LICENSE"))
		if err != nil {
			return fmt.Errorf("licence of npm package %s: %w", pkg, err)
		}
		if err := os.WriteFile(filepath.Join(licenseDir, pkg+".LICENSE"), text, 0o644); err != nil {
			return err
		}
	}
	if slices.Contains(sources, "google") {
		if err := os.WriteFile(filepath.Join(licenseDir, "Apache-2.0.txt"), []byte(apacheLicense), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(outDir, "NOTICE.md"), []byte(emojiNotice(sources)), 0o644)
}

// emojiNotice returns NOTICE.md: the origin and licence of each part of the
// dataset and the changes made to the images.
func emojiNotice(sources []string) string {
	versions := map[string]string{}
	for _, p := range EmojiPackages {
		versions[p.Name] = p.Version
	}
	var b strings.Builder
	b.WriteString("# Emoji dataset: sources and licences\n\n")
	b.WriteString("Built by `m3ae-edge data emoji` from these npm packages:\n\n")
	if slices.Contains(sources, "google") {
		fmt.Fprintf(&b, "- Images in `images/google/`: Noto Emoji by Google, from emoji-datasource-google %s,\n"+
			"  licensed under the Apache License 2.0 (`LICENSES/Apache-2.0.txt`,\n"+
			"  https://github.com/googlei18n/noto-emoji/blob/master/LICENSE).\n", versions["emoji-datasource-google"])
	}
	if slices.Contains(sources, "twitter") {
		fmt.Fprintf(&b, "- Images in `images/twitter/`: Twemoji graphics by Twitter, Inc and other contributors,\n"+
			"  from emoji-datasource-twitter %s, licensed under CC-BY 4.0\n"+
			"  (https://creativecommons.org/licenses/by/4.0/,\n"+
			"  https://github.com/jdecked/twemoji/blob/v15.0.2/LICENSE-GRAPHICS).\n", versions["emoji-datasource-twitter"])
	}
	fmt.Fprintf(&b, "- Captions, tags and groups (`caption`, `tags`, `group`): emojibase-data %s\n"+
		"  by Miles Johnson, MIT licence (`LICENSES/emojibase-data.LICENSE`).\n", versions["emojibase-data"])
	b.WriteString("- The emoji-datasource packages' own code and metadata are MIT-licensed\n" +
		"  (`LICENSES/emoji-datasource-*.LICENSE`).\n\n")
	b.WriteString("Changes: every image was composited over opaque white, which replaces the\n" +
		"transparent pixels, and saved as an opaque 8-bit RGB PNG. Captions are\n" +
		"emojibase labels; skin-tone variants carry their base emoji's tags.\n")
	return b.String()
}
