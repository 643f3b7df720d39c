package data

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeHexcode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1F600", "1f600"},
		{"0023-FE0F-20E3", "0023-20e3"},
		{"0023-20E3", "0023-20e3"},
		{"00A9-FE0F", "00a9"},
		{"00a9", "00a9"},
		{"1F3F3-FE0F-200D-1F308", "1f3f3-200d-1f308"},
		{"1F44B-1F3FB", "1f44b-1f3fb"},
		{"FE0F", ""},
		{" 263A-fe0f ", "263a"},
	}
	for _, tt := range tests {
		if got := NormalizeHexcode(tt.in); got != tt.want {
			t.Errorf("NormalizeHexcode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBaseHexcode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1F44B", "1f44b"},
		{"1F44B-1F3FB", "1f44b"},
		{"1F44B-1F3FF", "1f44b"},
		{"1F9D1-1F3FB-200D-1F91D-200D-1F9D1-1F3FC", "1f9d1-200d-1f91d-200d-1f9d1"},
		{"26F9-1F3FD-200D-2640-FE0F", "26f9-200d-2640"},
		{"1F3FB", "1f3fb"},
	}
	for _, tt := range tests {
		if got := BaseHexcode(tt.in); got != tt.want {
			t.Errorf("BaseHexcode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEmojiSplit(t *testing.T) {
	test := 0
	const n = 3000
	for i := range n {
		base := fmt.Sprintf("%X", 0x10000+i)
		split := EmojiSplit(base, 10)
		if split == "test" {
			test++
		}
		for _, tone := range []string{"1F3FB", "1F3FF"} {
			if got := EmojiSplit(base+"-"+tone, 10); got != split {
				t.Fatalf("EmojiSplit(%s-%s) = %s, want its base's split %s", base, tone, got, split)
			}
		}
		if got := EmojiSplit(strings.ToLower(base)+"-FE0F", 10); got != split {
			t.Fatalf("EmojiSplit(%s-FE0F) = %s, want %s", base, got, split)
		}
	}
	// Binomial(3000, 0.1): 5 standard deviations is about 82.
	if test < 300-82 || test > 300+82 {
		t.Errorf("EmojiSplit put %d of %d base emoji in test, want about 300", test, n)
	}
	if EmojiSplit("1F600", 0) != "train" || EmojiSplit("1F600", 100) != "test" {
		t.Errorf("EmojiSplit with 0 and 100 percent = %s, %s, want train, test", EmojiSplit("1F600", 0), EmojiSplit("1F600", 100))
	}
}

func TestJoinEmoji(t *testing.T) {
	captions := map[string]EmojiCaption{
		"0023-20e3":   {Hexcode: "0023-FE0F-20E3", Label: "keycap: #"},
		"00a9":        {Hexcode: "00A9", Label: "copyright"},
		"1f44b":       {Hexcode: "1F44B", Label: "waving hand", Tags: []string{"hand", "wave"}},
		"1f44b-1f3fb": {Hexcode: "1F44B-1F3FB", Label: "waving hand: light skin tone", Tags: []string{"hand", "wave"}},
		"1f1e6":       {Hexcode: "1F1E6", Label: ""},
	}
	images := []EmojiImage{
		{"twitter", "1F44B", "1f44b.png"},
		{"google", "1F44B-1F3FB", "1f44b-1f3fb.png"},
		{"google", "00A9-FE0F", "00a9-fe0f.png"},
		{"google", "0023-FE0F-20E3", "0023-fe0f-20e3.png"},
		{"google", "1F600", "1f600.png"}, // no caption
		{"google", "1F1E6", "1f1e6.png"}, // empty label
		{"google", "1F44B", "1f44b.png"},
	}
	records, unjoined := JoinEmoji(images, captions, 50)
	var got []string
	for _, r := range records {
		got = append(got, r.Source+" "+r.Unified+" "+r.Caption.Label)
		if want := EmojiSplit(r.Unified, 50); r.Split != want {
			t.Errorf("JoinEmoji record %s split = %s, want %s", r.Unified, r.Split, want)
		}
	}
	want := []string{
		"google 0023-FE0F-20E3 keycap: #",
		"google 00A9-FE0F copyright",
		"google 1F44B waving hand",
		"twitter 1F44B waving hand",
		"google 1F44B-1F3FB waving hand: light skin tone",
	}
	if !slices.Equal(got, want) {
		t.Errorf("JoinEmoji records =\n%q\nwant\n%q", got, want)
	}
	var gotUnjoined []string
	for _, img := range unjoined {
		gotUnjoined = append(gotUnjoined, img.Unified)
	}
	if !slices.Equal(gotUnjoined, []string{"1F600", "1F1E6"}) {
		t.Errorf("JoinEmoji unjoined = %q, want [1F600 1F1E6]", gotUnjoined)
	}
}

// fakeEmojiPackages writes a node_modules folder that looks like the
// EmojiPackages: four emoji (one with two skin tones) in both image sets,
// plus one image without a caption, and returns its path. At 50 % test,
// the waving hand and its skin tones land in train and the keycap, the
// copyright sign and the dog face in test.
func fakeEmojiPackages(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "node_modules")
	for _, p := range EmojiPackages {
		manifest := fmt.Sprintf(`{"name": %q, "version": %q}`, p.Name, p.Version)
		writeFile(t, filepath.Join(root, p.Name, "package.json"), []byte(manifest))
		writeFile(t, filepath.Join(root, p.Name, "LICENSE"), []byte("licence of "+p.Name+"\n"))
	}
	for source, pkg := range EmojiSources {
		hasImg := fmt.Sprintf("has_img_%s", source)
		entries := []map[string]any{
			{"unified": "0023-FE0F-20E3", "image": "0023-fe0f-20e3.png", hasImg: true},
			{"unified": "1F44B", "image": "1f44b.png", hasImg: true, "skin_variations": map[string]any{
				"1F3FB": map[string]any{"unified": "1F44B-1F3FB", "image": "1f44b-1f3fb.png", hasImg: true},
				"1F3FF": map[string]any{"unified": "1F44B-1F3FF", "image": "1f44b-1f3ff.png", hasImg: true},
			}},
			{"unified": "00A9-FE0F", "image": "00a9-fe0f.png", hasImg: true},
			{"unified": "1F436", "image": "1f436.png", hasImg: true},
			{"unified": "1F9FF", "image": "1f9ff.png", hasImg: true},
			{"unified": "1F600", "image": "1f600.png", hasImg: false},
			{"unified": "1F601", "image": "1f601.png", hasImg: true}, // listed, file absent
		}
		data, err := json.Marshal(entries)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, pkg, "emoji.json"), data)
		for _, e := range entries {
			name := e["image"].(string)
			if name == "1f600.png" || name == "1f601.png" {
				continue
			}
			writeFile(t, filepath.Join(root, pkg, "img", source, "64", name), emojiPNG(t))
			if variations, ok := e["skin_variations"].(map[string]any); ok {
				for _, v := range variations {
					writeFile(t, filepath.Join(root, pkg, "img", source, "64", v.(map[string]any)["image"].(string)), emojiPNG(t))
				}
			}
		}
	}
	// The keycap has no group, as emojibase's regional indicators have
	// none, and the light skin tone repeats its base's group while the
	// dark one inherits it.
	emojibase := `[
		{"label": "keycap: #", "hexcode": "0023-FE0F-20E3", "tags": ["keycap"]},
		{"label": "waving hand", "hexcode": "1F44B", "tags": ["hand", "wave"], "group": 1, "skins": [
			{"label": "waving hand: light skin tone", "hexcode": "1F44B-1F3FB", "group": 1},
			{"label": "waving hand: dark skin tone", "hexcode": "1F44B-1F3FF"}
		]},
		{"label": "copyright", "hexcode": "00A9", "tags": ["c", "copyright"], "group": 8},
		{"label": "dog face", "hexcode": "1F436", "tags": ["dog", "face", "pet"], "group": 3}
	]`
	writeFile(t, filepath.Join(root, "emojibase-data", "en", "data.json"), []byte(emojibase))
	writeFile(t, filepath.Join(root, "emojibase-data", "meta", "groups.json"), []byte(fakeEmojiGroups))
	return root
}

// fakeEmojiGroups has the groups object of emojibase-data 17.0.0's
// meta/groups.json and a shortened hierarchy object.
const fakeEmojiGroups = `{
	"groups": {"0": "smileys-emotion", "1": "people-body", "2": "component", "3": "animals-nature",
		"4": "food-drink", "5": "travel-places", "6": "activities", "7": "objects", "8": "symbols", "9": "flags"},
	"hierarchy": {"0": [0, 1]}
}`

// emojiPNG returns a 4x4 RGBA PNG: opaque red on the top row, fully
// transparent green elsewhere.
func emojiPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for y := range 4 {
		for x := range 4 {
			c := color.NRGBA{0, 255, 0, 0}
			if y == 0 {
				c = color.NRGBA{255, 0, 0, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var b strings.Builder
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// readFakeEmojiCaptions reads the captions of fakeEmojiPackages with its
// groups table.
func readFakeEmojiCaptions(t *testing.T, root string) map[string]EmojiCaption {
	t.Helper()
	groups, err := ReadEmojiGroups(filepath.Join(root, "emojibase-data", "meta", "groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	captions, err := ReadEmojiCaptions(filepath.Join(root, "emojibase-data", "en", "data.json"), groups)
	if err != nil {
		t.Fatal(err)
	}
	return captions
}

func TestReadEmojiCaptionsSkinTags(t *testing.T) {
	captions := readFakeEmojiCaptions(t, fakeEmojiPackages(t))
	dark := captions["1f44b-1f3ff"]
	if dark.Label != "waving hand: dark skin tone" || !slices.Equal(dark.Tags, []string{"hand", "wave"}) {
		t.Errorf("caption of 1f44b-1f3ff = %+v, want the dark skin tone label with its base's tags", dark)
	}
	if _, ok := captions["00a9"]; !ok {
		t.Errorf("captions lack key 00a9")
	}
}

func TestReadEmojiCaptionsGroups(t *testing.T) {
	captions := readFakeEmojiCaptions(t, fakeEmojiPackages(t))
	for key, want := range map[string]string{
		"1f44b":       "people-body",
		"1f44b-1f3fb": "people-body",
		"1f44b-1f3ff": "people-body", // inherited from the base emoji
		"00a9":        "symbols",
		"1f436":       "animals-nature",
		"0023-20e3":   "", // no group in emojibase
	} {
		if got := captions[key].Group; got != want {
			t.Errorf("group of %s = %q, want %q", key, got, want)
		}
	}
}

func TestReadEmojiCaptionsUnknownGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.json")
	writeFile(t, path, []byte(`[{"label": "grinning face", "hexcode": "1F600", "group": 12}]`))
	_, err := ReadEmojiCaptions(path, map[int]string{0: "smileys-emotion"})
	if !errors.Is(err, ErrInvalidData) {
		t.Errorf("ReadEmojiCaptions(group 12) error = %v, want ErrInvalidData", err)
	}
	if err == nil || !strings.Contains(err.Error(), "1F600 has group 12") {
		t.Errorf("ReadEmojiCaptions(group 12) error = %v, want it to name the emoji and the group", err)
	}
}

func TestReadEmojiGroups(t *testing.T) {
	root := fakeEmojiPackages(t)
	groups, err := ReadEmojiGroups(filepath.Join(root, "emojibase-data", "meta", "groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 10 {
		t.Errorf("ReadEmojiGroups returned %d groups, want 10", len(groups))
	}
	if groups[0] != "smileys-emotion" || groups[9] != "flags" {
		t.Errorf("groups 0 and 9 = %q, %q, want smileys-emotion and flags", groups[0], groups[9])
	}

	for name, text := range map[string]string{
		"no groups":     `{"hierarchy": {}}`,
		"not a number":  `{"groups": {"zero": "smileys-emotion"}}`,
		"empty key":     `{"groups": {"0": ""}}`,
		"invalid JSON":  `{"groups": `,
		"groups a list": `{"groups": ["smileys-emotion"]}`,
	} {
		path := filepath.Join(t.TempDir(), "groups.json")
		writeFile(t, path, []byte(text))
		if _, err := ReadEmojiGroups(path); !errors.Is(err, ErrInvalidData) {
			t.Errorf("ReadEmojiGroups(%s) error = %v, want ErrInvalidData", name, err)
		}
	}
}

func TestBuildEmoji(t *testing.T) {
	root := fakeEmojiPackages(t)
	out := t.TempDir()
	var progress []int
	summary, err := BuildEmoji(context.Background(), EmojiOptions{
		NodeModules: root, OutDir: out, TestPercent: 50, TagLines: true, Workers: 2,
		Progress: func(done, total int) { progress = append(progress, done, total) },
	})
	if err != nil {
		t.Fatal(err)
	}

	// Six captioned images per set: keycap, waving hand and its two skin
	// tones, copyright, dog face. 1F9FF has no caption, and 1F601's file is
	// absent.
	if summary.Unjoined != 2 || summary.Missing != 2 {
		t.Errorf("summary unjoined %d, missing %d, want 2 and 2", summary.Unjoined, summary.Missing)
	}
	total := 0
	for split, bySource := range summary.Pairs {
		if bySource["google"] != bySource["twitter"] {
			t.Errorf("split %s pairs = %v, want as many google as twitter images", split, bySource)
		}
		total += bySource["google"] + bySource["twitter"]
	}
	if total != 12 || len(progress) != 24 || progress[22] != 12 || progress[23] != 12 {
		t.Errorf("wrote %d pairs with progress %v, want 12 and twelve calls ending at (12, 12)", total, progress)
	}
	if summary.Pairs["train"]["google"] != 3 || summary.Pairs["test"]["google"] != 3 {
		t.Errorf("pairs = %v, want 3 google pairs in each split", summary.Pairs)
	}

	lines := map[string][]emojiLine{}
	for _, split := range []string{"train", "test"} {
		lines[split] = readEmojiLines(t, filepath.Join(out, split+".jsonl"))
		for _, line := range lines[split] {
			if want := EmojiSplit(line.Hexcode, 50); want != split {
				t.Errorf("%s.jsonl holds %s, whose split is %s", split, line.Hexcode, want)
			}
			checkOpaqueEmoji(t, filepath.Join(out, filepath.FromSlash(line.Image)))
		}
	}
	if len(lines["train"]) == 0 || len(lines["test"]) == 0 {
		t.Fatalf("train has %d and test %d lines, want both non-empty at 50 %%", len(lines["train"]), len(lines["test"]))
	}
	all := append(lines["train"], lines["test"]...)
	i := slices.IndexFunc(all, func(l emojiLine) bool { return l.Hexcode == "1F44B-1F3FF" && l.Source == "twitter" })
	if i < 0 {
		t.Fatal("no line for twitter 1F44B-1F3FF")
	}
	want := emojiLine{Image: "images/twitter/1f44b-1f3ff.png", Caption: "waving hand: dark skin tone", Tags: []string{"hand", "wave"},
		Source: "twitter", Hexcode: "1F44B-1F3FF", Group: "people-body"}
	if got := all[i]; got.Image != want.Image || got.Caption != want.Caption || !slices.Equal(got.Tags, want.Tags) || got.Group != want.Group {
		t.Errorf("line = %+v, want %+v", got, want)
	}
	keycap := slices.IndexFunc(all, func(l emojiLine) bool { return l.Hexcode == "0023-FE0F-20E3" })
	if keycap < 0 || all[keycap].Group != "" {
		t.Errorf("keycap line index %d, want one without a group", keycap)
	}

	// The output is a captions file that OpenCaptions reads.
	src, err := OpenCaptions(filepath.Join(out, "train.jsonl"), CaptionsOptions{})
	if err != nil || src.Len() != len(lines["train"]) {
		t.Errorf("OpenCaptions(train.jsonl) = %v, %v, want %d examples", src, err, len(lines["train"]))
	}

	// Tag lines: one per distinct tag list in the split.
	tagsText, err := os.ReadFile(filepath.Join(out, "train-tags.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(tagsText), "\n"); n != summary.TagLines["train"] || n == 0 {
		t.Errorf("train-tags.txt has %d lines, summary says %d", n, summary.TagLines["train"])
	}

	for _, name := range []string{"LICENSES/emojibase-data.LICENSE", "LICENSES/emoji-datasource-google.LICENSE",
		"LICENSES/emoji-datasource-twitter.LICENSE", "LICENSES/Apache-2.0.txt", "NOTICE.md"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("output lacks %s: %v", name, err)
		}
	}
	notice, _ := os.ReadFile(filepath.Join(out, "NOTICE.md"))
	for _, want := range []string{"Apache License 2.0", "CC-BY 4.0", "emojibase-data 17.0.0", "composited over opaque white"} {
		if !strings.Contains(string(notice), want) {
			t.Errorf("NOTICE.md does not mention %q", want)
		}
	}
}

func TestBuildEmojiSample(t *testing.T) {
	root := fakeEmojiPackages(t)
	out := t.TempDir()
	summary, err := BuildEmoji(context.Background(), EmojiOptions{
		NodeModules: root, OutDir: out, Sources: []string{"google"}, TestPercent: 50, MaxTrain: 1, MaxTest: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if summary.Pairs["train"]["google"] != 1 || summary.Pairs["test"]["google"] != 1 || summary.Pairs["train"]["twitter"] != 0 {
		t.Errorf("sampled pairs = %v, want one google pair per split", summary.Pairs)
	}
	if _, err := os.Stat(filepath.Join(out, "LICENSES", "emoji-datasource-twitter.LICENSE")); err == nil {
		t.Errorf("google-only output carries the twitter package's licence")
	}
	if _, err := BuildEmoji(context.Background(), EmojiOptions{NodeModules: root, OutDir: out, Sources: []string{"apple"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown image set "apple"`) {
		t.Errorf("BuildEmoji(apple) = %v, want an unknown image set error", err)
	}
}

func readEmojiLines(t *testing.T, path string) []emojiLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []emojiLine
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var line emojiLine
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		lines = append(lines, line)
	}
	return lines
}

// checkOpaqueEmoji checks a converted emojiPNG: red top row, white where
// the source was transparent.
func checkOpaqueEmoji(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, p := range []struct {
		x, y int
		want color.RGBA
	}{{0, 0, color.RGBA{255, 0, 0, 255}}, {2, 2, color.RGBA{255, 255, 255, 255}}} {
		r, g, b, a := img.At(p.x, p.y).RGBA()
		got := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
		if got != p.want {
			t.Errorf("%s pixel (%d, %d) = %v, want %v", path, p.x, p.y, got, p.want)
		}
	}
}

func TestInstallNPMPackagesAlreadyInstalled(t *testing.T) {
	root := fakeEmojiPackages(t)
	// With an empty PATH, any attempt to run npm would fail.
	t.Setenv("PATH", "")
	got, err := InstallNPMPackages(context.Background(), filepath.Dir(root), EmojiPackages, nil)
	if err != nil || got != root {
		t.Fatalf("InstallNPMPackages(installed) = %q, %v, want %q", got, err, root)
	}
	writeFile(t, filepath.Join(root, "emojibase-data", "package.json"), []byte(`{"version": "16.0.0"}`))
	_, err = InstallNPMPackages(context.Background(), filepath.Dir(root), EmojiPackages, nil)
	if err == nil || !strings.Contains(err.Error(), "npm not found") || !strings.Contains(err.Error(), "emojibase-data@17.0.0") {
		t.Errorf("InstallNPMPackages(old version, no npm) = %v, want an npm-not-found error naming emojibase-data@17.0.0", err)
	}
}
