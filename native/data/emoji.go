package data

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// EmojiSources maps each emoji image set this package builds from to its
// npm package. Both packages ship 64x64 RGBA PNGs under img/NAME/64/.
var EmojiSources = map[string]string{
	"google":  "emoji-datasource-google",
	"twitter": "emoji-datasource-twitter",
}

// NormalizeHexcode returns the join key of an emoji code point sequence
// written as hex code points joined by "-": lowercased, with every
// U+FE0F (variation selector 16) dropped. emoji-datasource 16.0.0 writes
// the copyright sign as "00A9-FE0F" where emojibase-data 17.0.0 writes
// "00A9", and both normalize to "00a9".
func NormalizeHexcode(hexcode string) string {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(hexcode)), "-")
	keptParts := parts[:0]
	for _, p := range parts {
		if p != "fe0f" && p != "" {
			keptParts = append(keptParts, p)
		}
	}
	return strings.Join(keptParts, "-")
}

// BaseHexcode returns the normalized hexcode of the emoji that a skin-tone
// variant belongs to: the normalized code with the skin-tone modifiers
// U+1F3FB to U+1F3FF dropped. A sequence that is only modifiers is its own
// base.
func BaseHexcode(hexcode string) string {
	normalized := NormalizeHexcode(hexcode)
	var keptParts []string
	for _, p := range strings.Split(normalized, "-") {
		switch p {
		case "1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff":
		default:
			keptParts = append(keptParts, p)
		}
	}
	if len(keptParts) == 0 {
		return normalized
	}
	return strings.Join(keptParts, "-")
}

// EmojiSplit returns "test" for about testPercent percent of base emoji
// and "train" for the rest. The choice hashes the base hexcode, so every
// skin-tone variant and every image set of an emoji lands in its split,
// and the split never changes between runs.
func EmojiSplit(hexcode string, testPercent int) string {
	if int(emojiHash("split", BaseHexcode(hexcode))%100) < testPercent {
		return "test"
	}
	return "train"
}

// emojiHash returns a well-mixed 64-bit hash of text under purpose: FNV-1a
// followed by the SplitMix64 finalizer, because FNV-1a alone leaves codes
// that differ in their last digit close together in hash order.
func emojiHash(purpose, text string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("m3ae-edge emoji " + purpose + "\x00" + text))
	return mix64(h.Sum64())
}

// EmojiImage is one emoji picture of an emoji-datasource package.
type EmojiImage struct {
	// Source is the image set, such as "google".
	Source string
	// Unified is the hexcode as emoji-datasource writes it, such as
	// "1F44B-1F3FB".
	Unified string
	// File is the image's file name under img/SOURCE/64/.
	File string
}

// EmojiCaption is the English text of one emoji in emojibase-data.
type EmojiCaption struct {
	Hexcode string
	Label   string
	// Tags are emojibase's keywords. A skin-tone variant, which has none
	// of its own, takes those of its base emoji.
	Tags []string
	// Group is the key of emojibase's group of the emoji, such as
	// "smileys-emotion" or "flags", or "" when emojibase assigns none (as
	// for the regional indicator letters).
	Group string
}

// EmojiRecord is an emoji image joined with its caption.
type EmojiRecord struct {
	EmojiImage
	Caption EmojiCaption
	// Split is "train" or "test".
	Split string
}

// datasourceEmoji is one entry of emoji-datasource's emoji.json; skin-tone
// variants nest under skin_variations with the same fields.
type datasourceEmoji struct {
	Unified        string                     `json:"unified"`
	Image          string                     `json:"image"`
	HasImgGoogle   bool                       `json:"has_img_google"`
	HasImgTwitter  bool                       `json:"has_img_twitter"`
	SkinVariations map[string]datasourceEmoji `json:"skin_variations"`
}

func (e datasourceEmoji) hasImage(source string) bool {
	switch source {
	case "google":
		return e.HasImgGoogle
	case "twitter":
		return e.HasImgTwitter
	}
	return false
}

// ReadEmojiImages lists the images of one image set in its package folder
// (node_modules/emoji-datasource-SOURCE): the emoji.json entries, skin-tone
// variants included, that have an image of that set. missing counts
// entries that claim an image whose file is absent; they are left out.
func ReadEmojiImages(packageDir, source string) (images []EmojiImage, missing int, err error) {
	data, err := os.ReadFile(filepath.Join(packageDir, "emoji.json"))
	if err != nil {
		return nil, 0, fmt.Errorf("emoji images: %w", err)
	}
	var entries []datasourceEmoji
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrInvalidData, filepath.Join(packageDir, "emoji.json"), err)
	}
	imageDir := filepath.Join(packageDir, "img", source, "64")
	add := func(e datasourceEmoji) error {
		if !e.hasImage(source) {
			return nil
		}
		if e.Unified == "" || filepath.Base(e.Image) != e.Image || !strings.HasSuffix(e.Image, ".png") {
			return fmt.Errorf("%w: emoji.json entry %q has image %q: want a .png file name", ErrInvalidData, e.Unified, e.Image)
		}
		if _, err := os.Stat(filepath.Join(imageDir, e.Image)); err != nil {
			missing++
			return nil
		}
		images = append(images, EmojiImage{Source: source, Unified: e.Unified, File: e.Image})
		return nil
	}
	for _, e := range entries {
		if err := add(e); err != nil {
			return nil, 0, err
		}
		for _, variant := range e.SkinVariations {
			if err := add(variant); err != nil {
				return nil, 0, err
			}
		}
	}
	return images, missing, nil
}

// emojibaseEntry is one entry of emojibase-data's en/data.json. Group is
// a number that meta/groups.json names, and nil when the entry has none.
type emojibaseEntry struct {
	Hexcode string           `json:"hexcode"`
	Label   string           `json:"label"`
	Tags    []string         `json:"tags"`
	Group   *int             `json:"group"`
	Skins   []emojibaseEntry `json:"skins"`
}

// ReadEmojiGroups reads emojibase-data's meta/groups.json, whose "groups"
// object maps each group number, written as a string, to its key:
// {"groups": {"0": "smileys-emotion", ...}}.
func ReadEmojiGroups(path string) (map[int]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emoji groups: %w", err)
	}
	var meta struct {
		Groups map[string]string `json:"groups"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidData, path, err)
	}
	if len(meta.Groups) == 0 {
		return nil, fmt.Errorf("%w: %s has no \"groups\" object: want {\"groups\": {\"0\": \"smileys-emotion\", ...}}", ErrInvalidData, path)
	}
	groups := make(map[int]string, len(meta.Groups))
	for number, key := range meta.Groups {
		n, err := strconv.Atoi(number)
		if err != nil || key == "" {
			return nil, fmt.Errorf("%w: %s: group %q: %q: want a group number and a non-empty key", ErrInvalidData, path, number, key)
		}
		groups[n] = key
	}
	return groups, nil
}

// ReadEmojiCaptions reads emojibase-data's en/data.json into captions keyed
// by NormalizeHexcode of their hexcode, skin-tone variants included.
// groups names the entries' group numbers, as ReadEmojiGroups returns
// them. A skin-tone variant without a group of its own takes its base
// emoji's.
func ReadEmojiCaptions(path string, groups map[int]string) (map[string]EmojiCaption, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emoji captions: %w", err)
	}
	var entries []emojibaseEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidData, path, err)
	}
	groupKey := func(e emojibaseEntry) (string, error) {
		if e.Group == nil {
			return "", nil
		}
		key, ok := groups[*e.Group]
		if !ok {
			return "", fmt.Errorf("%w: %s: emoji %s has group %d, which the groups table does not name", ErrInvalidData, path, e.Hexcode, *e.Group)
		}
		return key, nil
	}
	captions := make(map[string]EmojiCaption, len(entries))
	for _, e := range entries {
		group, err := groupKey(e)
		if err != nil {
			return nil, err
		}
		captions[NormalizeHexcode(e.Hexcode)] = EmojiCaption{Hexcode: e.Hexcode, Label: e.Label, Tags: e.Tags, Group: group}
		for _, skin := range e.Skins {
			tags := skin.Tags
			if len(tags) == 0 {
				tags = e.Tags
			}
			skinGroup := group
			if skin.Group != nil {
				if skinGroup, err = groupKey(skin); err != nil {
					return nil, err
				}
			}
			captions[NormalizeHexcode(skin.Hexcode)] = EmojiCaption{Hexcode: skin.Hexcode, Label: skin.Label, Tags: tags, Group: skinGroup}
		}
	}
	return captions, nil
}

// JoinEmoji pairs each image with the caption whose NormalizeHexcode
// matches the image's, and assigns its split. It returns the joined
// records sorted by normalized hexcode, then source, and the images
// without a caption (or with an empty label).
func JoinEmoji(images []EmojiImage, captions map[string]EmojiCaption, testPercent int) (records []EmojiRecord, unjoined []EmojiImage) {
	for _, img := range images {
		caption, ok := captions[NormalizeHexcode(img.Unified)]
		if !ok || strings.TrimSpace(caption.Label) == "" {
			unjoined = append(unjoined, img)
			continue
		}
		records = append(records, EmojiRecord{EmojiImage: img, Caption: caption, Split: EmojiSplit(img.Unified, testPercent)})
	}
	slices.SortFunc(records, func(a, b EmojiRecord) int {
		return cmp.Or(
			cmp.Compare(NormalizeHexcode(a.Unified), NormalizeHexcode(b.Unified)),
			cmp.Compare(a.Source, b.Source),
		)
	})
	return records, unjoined
}

// sampleEmoji keeps at most maxTrain train and maxTest test records (zero
// keeps all). It takes one record of each base emoji, in an order fixed by
// hashing, before it takes a second record of any, so a small sample spans
// many emoji instead of the 25 skin-tone pairs of one. Records keep their
// order.
func sampleEmoji(records []EmojiRecord, maxTrain, maxTest int) []EmojiRecord {
	hash := func(text string) uint64 { return emojiHash("sample", text) }
	keep := make([]bool, len(records))
	for split, limit := range map[string]int{"train": maxTrain, "test": maxTest} {
		// Group the split's records by base emoji, each group in hash order.
		groups := map[string][]int{}
		for i, r := range records {
			if r.Split == split {
				base := BaseHexcode(r.Unified)
				groups[base] = append(groups[base], i)
			}
		}
		bases := slices.Collect(maps.Keys(groups))
		slices.SortFunc(bases, func(a, b string) int { return cmp.Compare(hash(a), hash(b)) })
		for _, base := range bases {
			slices.SortFunc(groups[base], func(a, b int) int {
				return cmp.Compare(hash(records[a].Source+"/"+records[a].Unified), hash(records[b].Source+"/"+records[b].Unified))
			})
		}

		// Take the r-th record of every base in turn, r = 0, 1, ...
		numTaken := 0
		for round := 0; limit == 0 || numTaken < limit; round++ {
			progressed := false
			for _, base := range bases {
				if round < len(groups[base]) && (limit == 0 || numTaken < limit) {
					keep[groups[base][round]] = true
					numTaken++
					progressed = true
				}
			}
			if !progressed {
				break
			}
		}
	}
	var out []EmojiRecord
	for i, r := range records {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out
}
