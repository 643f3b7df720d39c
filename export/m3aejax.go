package export

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// ErrInvalidCheckpoint marks a pickle that reads cleanly but is not an
// M3AE checkpoint the importer can convert: the parameter tree is missing,
// has other names or shapes, or holds something other than float32 numpy
// arrays.
var ErrInvalidCheckpoint = errors.New("invalid M3AE checkpoint")

// M3AEJaxFormat names the official M3AE checkpoint format: the pickle that
// the official JAX/flax training script (young-geng/m3ae_public) saves.
const M3AEJaxFormat = "m3ae-jax"

// The official M3AE sizes that a checkpoint's shapes do not record.
const (
	// DefaultM3AEImageSize is the image side in pixels that the official
	// models were trained at. Position embeddings are fixed sin-cos
	// tables, not stored parameters, so the checkpoint cannot tell it.
	DefaultM3AEImageSize = 256
	// DefaultM3AETextLength is the official text length (the tokenizer's
	// max length), for the same reason.
	DefaultM3AETextLength = 64
	// officialHeadWidth is the encoder's attention head width in the
	// official small, base and large models: 384/6, 768/12 and 1024/16.
	officialHeadWidth = 64
	// officialDecoderHeads is the decoder's head count in every official
	// model.
	officialDecoderHeads = 16
)

// M3AEJaxOptions sets what an official checkpoint does not record. Zero
// values select the official settings.
type M3AEJaxOptions struct {
	// ImageSize is the image side in pixels; 0 means DefaultM3AEImageSize.
	ImageSize int
	// TextLength is the number of text positions; 0 means
	// DefaultM3AETextLength.
	TextLength int
	// NumHeads is the encoder's head count; 0 means width/64, the official
	// rule.
	NumHeads int
	// DecoderNumHeads is the decoder's head count; 0 means 16.
	DecoderNumHeads int
	// Vocab is the tokenizer vocabulary, one token per id. Nil means the
	// bert-base-uncased vocabulary of the official models, which needs a
	// vocabulary size of 30522.
	Vocab []string
	// Norm is the image normalization; nil means core.CC12MNorm, that of
	// the official models.
	Norm *core.ImageNorm
}

// M3AEJaxCheckpoint is an imported official checkpoint.
type M3AEJaxCheckpoint struct {
	// Model is the float32 model file.
	Model *core.ModelFile
	// Step and Epoch are the checkpoint's "step" and "epoch" entries, or -1
	// when they are not integers.
	Step, Epoch int64
	// ModelType is the variant's "m3ae.model_type" entry (such as
	// "base"), or "" when absent. The importer takes sizes from the
	// shapes, not from it, because the variant can be stale.
	ModelType string
}

// ImportM3AEJax converts an official M3AE checkpoint into a float32 model
// file. r holds the pickle, size bytes long.
//
// The pickle is read without running any of it (see readPickle): only
// numpy arrays, dtypes, dicts, lists, tuples and scalars are rebuilt, and
// everything else, the optimizer's functions included, stays an inert
// placeholder. The weights are taken from state.params["params"], reached
// through the top-level dict, its "state" train state and that state's
// BUILD dict. The optimizer's mu and nu trees have the same names and are
// not used. The architecture comes from the shapes, with opts for what
// shapes cannot tell.
//
// The parse keeps byte strings of up to 64 KiB in memory and leaves longer
// ones in the file. Each of those is read only if it is a parameter, once,
// straight into its tensor. So the import holds about the float32 model's
// size in memory, not the checkpoint's. Errors wrap ErrInvalidPickle for a
// malformed stream and ErrInvalidCheckpoint for one that is not an M3AE
// checkpoint. The latter list every missing, unexpected and mis-shaped
// parameter.
func ImportM3AEJax(r io.ReaderAt, size int64, opts M3AEJaxOptions) (*M3AEJaxCheckpoint, error) {
	return importM3AEJax(r, size, opts, defaultPickleLimits)
}

// importM3AEJax is ImportM3AEJax with the pickle reader's limits as a
// parameter, so that tests can force values out of memory.
func importM3AEJax(r io.ReaderAt, size int64, opts M3AEJaxOptions, limits pickleLimits) (*M3AEJaxCheckpoint, error) {
	root, err := readPickle(r, size, limits)
	if err != nil {
		return nil, err
	}
	top, ok := root.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%w: the pickle contains %s, want the dict with \"step\", \"epoch\", \"variant\" and \"state\" that the official training script saves",
			ErrInvalidCheckpoint, describeValue(root))
	}
	tree, err := findParamsTree(top)
	if err != nil {
		return nil, err
	}
	leaves, err := flattenParams(tree)
	if err != nil {
		return nil, err
	}
	cfg, err := inferM3AEConfig(leaves, opts)
	if err != nil {
		return nil, err
	}
	vocab, err := checkpointVocab(cfg, opts.Vocab)
	if err != nil {
		return nil, err
	}
	layouts, err := matchParams(cfg, leaves)
	if err != nil {
		return nil, err
	}

	var totalBytes int64
	for _, layout := range layouts {
		totalBytes += int64(layout.numElements) * 4
	}
	// Every parameter is stored in the file, so a file smaller than the
	// parameters points several of them at the same bytes. Rejecting it
	// bounds the import's memory by the file's size.
	if totalBytes > size {
		return nil, fmt.Errorf("%w: the parameters take %d bytes of float32, more than the %d-byte file contains: several parameters share their data, which the official checkpoints never do",
			ErrInvalidCheckpoint, totalBytes, size)
	}

	norm := core.CC12MNorm
	if opts.Norm != nil {
		norm = *opts.Norm
	}
	mf := &core.ModelFile{
		Config:       cfg,
		Vocab:        vocab,
		Norm:         norm,
		Quantization: core.QuantizationNone,
		Tensors:      make(map[string]*core.Tensor, len(layouts)),
	}
	for _, spec := range core.ParamSpecs(cfg) {
		layout := layouts[spec.Name]
		data := make([]float32, layout.numElements)
		if err := readFloat32s(r, layout, data); err != nil {
			return nil, fmt.Errorf("%w: parameter %s: %w", ErrInvalidCheckpoint, flaxPath(spec.Name), err)
		}
		mf.Tensors[spec.Name] = &core.Tensor{Name: spec.Name, DType: core.F32, Shape: slices.Clone(spec.Shape), F32: data}
	}
	if err := mf.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCheckpoint, err)
	}
	return &M3AEJaxCheckpoint{
		Model:     mf,
		Step:      intEntry(top, "step"),
		Epoch:     intEntry(top, "epoch"),
		ModelType: variantModelType(top),
	}, nil
}

// findParamsTree returns state.params["params"]. The train state is a
// placeholder whose BUILD state is its field dict, or a (dict, slots)
// pair for a dataclass with slots. A plain dict with a "params" entry is
// accepted as well, and so is a params entry that holds the parameter
// names directly.
func findParamsTree(top *pyDict) (*pyDict, error) {
	state, ok := top.get("state")
	if !ok {
		return nil, fmt.Errorf("%w: the top-level dict has no \"state\" entry, only %q: want the dict that the official training script saves",
			ErrInvalidCheckpoint, top.stringKeys())
	}
	params, err := trainStateField(state, "params")
	if err != nil {
		return nil, err
	}
	paramsDict, ok := params.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%w: state.params is %s, want a dict", ErrInvalidCheckpoint, describeValue(params))
	}
	inner, ok := paramsDict.get("params")
	if !ok {
		if _, direct := paramsDict.get("cls_token"); direct {
			return paramsDict, nil
		}
		return nil, fmt.Errorf("%w: state.params has no \"params\" entry, only %q", ErrInvalidCheckpoint, paramsDict.stringKeys())
	}
	tree, ok := inner.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%w: state.params[\"params\"] is %s, want a dict", ErrInvalidCheckpoint, describeValue(inner))
	}
	return tree, nil
}

// trainStateField returns the named field of a pickled train state.
func trainStateField(state any, field string) (any, error) {
	var dicts []*pyDict
	switch s := state.(type) {
	case *pyDict:
		dicts = append(dicts, s)
	case *pyObject:
		switch built := s.state.(type) {
		case *pyDict:
			dicts = append(dicts, built)
		case *pyTuple:
			// (instance dict or None, slots dict)
			for _, item := range built.items {
				if d, ok := item.(*pyDict); ok {
					dicts = append(dicts, d)
				}
			}
		}
	}
	for _, d := range dicts {
		if v, ok := d.get(field); ok {
			return v, nil
		}
	}
	if len(dicts) == 0 {
		return nil, fmt.Errorf("%w: state is %s with no field dict, want a flax TrainState", ErrInvalidCheckpoint, describeValue(state))
	}
	var fields []string
	for _, d := range dicts {
		fields = append(fields, d.stringKeys()...)
	}
	return nil, fmt.Errorf("%w: state has no %q field, only %q", ErrInvalidCheckpoint, field, fields)
}

// Bounds on the parameter tree. The deepest official name,
// encoder/Block_0/Attention_0/Dense_0/kernel, has 5 levels, and the large
// model has about 400 parameters. The entry bound matters because the memo
// lets a pickle reuse one dict under many keys, so a small file can
// describe a tree with exponentially many paths.
const (
	maxParamsDepth   = 16
	maxParamsEntries = 1 << 20
)

// flattenParams returns the leaves of the parameter tree by their
// "/"-joined paths. Dicts are walked; anything else is a leaf.
func flattenParams(tree *pyDict) (map[string]any, error) {
	leaves := make(map[string]any)
	entries := 0
	var walk func(d *pyDict, prefix string, depth int) error
	walk = func(d *pyDict, prefix string, depth int) error {
		if depth > maxParamsDepth {
			return fmt.Errorf("%w: the parameter tree nests deeper than %d levels at %s: the file is corrupt or not an M3AE checkpoint",
				ErrInvalidCheckpoint, maxParamsDepth, truncateForMessage(prefix))
		}
		entries += len(d.keys)
		if entries > maxParamsEntries {
			return fmt.Errorf("%w: the parameter tree has more than %d entries: the file is corrupt or not an M3AE checkpoint",
				ErrInvalidCheckpoint, maxParamsEntries)
		}
		for i, k := range d.keys {
			key, ok := k.(string)
			if !ok {
				return fmt.Errorf("%w: the parameter tree has the key %s under %q, want str keys", ErrInvalidCheckpoint, describeValue(k), prefix)
			}
			path := key
			if prefix != "" {
				path = prefix + "/" + key
			}
			if sub, ok := d.values[i].(*pyDict); ok {
				if err := walk(sub, path, depth+1); err != nil {
					return err
				}
				continue
			}
			leaves[path] = d.values[i]
		}
		return nil
	}
	if err := walk(tree, "", 1); err != nil {
		return nil, err
	}
	return leaves, nil
}

// flaxPath returns the flax path of a model-file tensor name.
func flaxPath(name string) string { return strings.ReplaceAll(name, ".", "/") }

// leafShape returns the shape of the array at path, if it is an array
// with a readable shape.
func leafShape(leaves map[string]any, path string) ([]int, bool) {
	arr, ok := leaves[path].(*npArray)
	if !ok {
		return nil, false
	}
	layout, err := arr.layout()
	if err != nil {
		return nil, false
	}
	return layout.shape, true
}

// sizeSource names a dim of a parameter that gives one size of the
// architecture.
type sizeSource struct {
	path string
	rank int
	dim  int
}

// inferSize returns the size that the first available source gives.
func inferSize(leaves map[string]any, sources []sizeSource) (int, bool) {
	for _, s := range sources {
		if shape, ok := leafShape(leaves, s.path); ok && len(shape) == s.rank && shape[s.dim] > 0 {
			return shape[s.dim], true
		}
	}
	return 0, false
}

// inferM3AEConfig returns the architecture that the parameter shapes
// describe, with opts for the sizes that shapes do not record.
func inferM3AEConfig(leaves map[string]any, opts M3AEJaxOptions) (core.Config, error) {
	var problems []string
	size := func(what string, sources ...sizeSource) int {
		v, ok := inferSize(leaves, sources)
		if !ok {
			var names []string
			for _, s := range sources {
				names = append(names, s.path)
			}
			problems = append(problems, fmt.Sprintf("%s: none of %s is an array of the expected rank", what, strings.Join(names, ", ")))
		}
		return v
	}
	width := size("encoder width",
		sizeSource{"cls_token", 3, 2}, sizeSource{"image_embedding/kernel", 2, 1},
		sizeSource{"text_embedding/embedding", 2, 1}, sizeSource{"encoder/LayerNorm_0/scale", 1, 0})
	decoderWidth := size("decoder width",
		sizeSource{"decoder_input_projection/kernel", 2, 1}, sizeSource{"image_mask_embedding", 3, 2},
		sizeSource{"decoder/LayerNorm_0/scale", 1, 0})
	vocabSize := size("vocabulary size",
		sizeSource{"text_embedding/embedding", 2, 0}, sizeSource{"decoder_text_output/Dense_0/kernel", 2, 1})
	patchDim := size("patch size",
		sizeSource{"image_embedding/kernel", 2, 0}, sizeSource{"decoder_image_output/Dense_0/kernel", 2, 1})
	hidden := size("MLP width",
		sizeSource{"encoder/Block_0/TransformerMLP_0/fc1/kernel", 2, 1})

	cfg := core.Config{
		ImageSize:       cmp.Or(opts.ImageSize, DefaultM3AEImageSize),
		TextLength:      cmp.Or(opts.TextLength, DefaultM3AETextLength),
		VocabSize:       vocabSize,
		EmbedDim:        width,
		DecoderEmbedDim: decoderWidth,
		NumHeads:        opts.NumHeads,
		DecoderNumHeads: cmp.Or(opts.DecoderNumHeads, officialDecoderHeads),
	}
	var err error
	if cfg.Depth, err = countBlocks(leaves, "encoder"); err != nil {
		problems = append(problems, err.Error())
	}
	if cfg.DecoderDepth, err = countBlocks(leaves, "decoder"); err != nil {
		problems = append(problems, err.Error())
	}
	if patchDim > 0 {
		cfg.PatchSize = isqrt(patchDim / core.Channels)
		if cfg.PatchSize*cfg.PatchSize*core.Channels != patchDim {
			problems = append(problems, fmt.Sprintf("image_embedding/kernel has %d input features, which is not 3 times a square number of pixels", patchDim))
		}
	}
	if width > 0 && hidden > 0 {
		cfg.MLPRatio = hidden / width
		if hidden%width != 0 {
			problems = append(problems, fmt.Sprintf("encoder/Block_0/TransformerMLP_0/fc1/kernel has %d outputs, not a multiple of the encoder width %d", hidden, width))
		}
	}
	if width > 0 && cfg.NumHeads == 0 {
		cfg.NumHeads = width / officialHeadWidth
		if width%officialHeadWidth != 0 {
			problems = append(problems, fmt.Sprintf("encoder width %d is not a multiple of %d, the official head width: set the encoder's head count (--num-heads)", width, officialHeadWidth))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return core.Config{}, fmt.Errorf("%w: cannot infer the architecture from the parameter shapes: %s", ErrInvalidCheckpoint, strings.Join(problems, "; "))
	}
	if err := cfg.Validate(); err != nil {
		return core.Config{}, fmt.Errorf("%w: the architecture inferred from the parameter shapes is unusable: %w", ErrInvalidCheckpoint, err)
	}
	return cfg, nil
}

// countBlocks returns 1 + the largest i of the prefix/Block_i entries.
// Missing blocks below it are reported later as missing parameters.
func countBlocks(leaves map[string]any, prefix string) (int, error) {
	depth := 0
	for path := range leaves {
		rest, ok := strings.CutPrefix(path, prefix+"/Block_")
		if !ok {
			continue
		}
		digits, _, _ := strings.Cut(rest, "/")
		i, err := strconv.Atoi(digits)
		if err != nil || i < 0 || strconv.Itoa(i) != digits {
			continue // reported as an unexpected parameter
		}
		depth = max(depth, i+1)
	}
	if depth == 0 {
		return 0, fmt.Errorf("%s depth: there is no %s/Block_0", prefix, prefix)
	}
	// Each block has 12 parameters, so a tree with fewer leaves than
	// the blocks need is not a model. The bound also keeps a hostile
	// block number from making core.ParamSpecs list millions of names.
	if depth > len(leaves)/12+1 {
		return 0, fmt.Errorf("%s depth: %s/Block_%d exists, but the tree has only %d parameters", prefix, prefix, depth-1, len(leaves))
	}
	return depth, nil
}

func isqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// checkpointVocab returns the vocabulary for cfg: vocab when given, else
// bert-base-uncased.
func checkpointVocab(cfg core.Config, vocab []string) ([]string, error) {
	if vocab == nil {
		if cfg.VocabSize != core.BertVocabSize {
			return nil, fmt.Errorf("%w: the text embedding has %d rows, but the official bert-base-uncased vocabulary has %d tokens: pass the vocabulary the model was trained with (--vocab)",
				ErrInvalidCheckpoint, cfg.VocabSize, core.BertVocabSize)
		}
		return bertvocab.Tokens(), nil
	}
	if len(vocab) != cfg.VocabSize {
		return nil, fmt.Errorf("%w: the vocabulary has %d tokens, but the text embedding has %d rows: pass the vocabulary the model was trained with, one token per row", ErrInvalidCheckpoint, len(vocab), cfg.VocabSize)
	}
	return slices.Clone(vocab), nil
}

// matchParams checks that the tree's leaves are exactly the parameters of
// cfg, each a float32 numpy array of its shape, and returns their layouts
// by tensor name. The error lists every missing, unexpected and mismatched
// parameter, sorted.
func matchParams(cfg core.Config, leaves map[string]any) (map[string]arrayLayout, error) {
	specs := core.ParamSpecs(cfg)
	layouts := make(map[string]arrayLayout, len(specs))
	expected := make(map[string]bool, len(specs))
	var problems []string
	for _, spec := range specs {
		path := flaxPath(spec.Name)
		expected[path] = true
		leaf, ok := leaves[path]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: missing, want float32 %v", path, spec.Shape))
			continue
		}
		arr, ok := leaf.(*npArray)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: is %s, want a float32 numpy array %v", path, describeValue(leaf), spec.Shape))
			continue
		}
		layout, err := arr.layout()
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: unreadable numpy array: %v", path, err))
		case !layout.dtype.isFloat32():
			problems = append(problems, fmt.Sprintf("%s: dtype %s, want float32", path, layout.dtype))
		case !slices.Equal(layout.shape, spec.Shape):
			problems = append(problems, fmt.Sprintf("%s: shape %v, want %v", path, layout.shape, spec.Shape))
		default:
			layouts[spec.Name] = layout
		}
	}
	for path, leaf := range leaves {
		if !expected[path] {
			problems = append(problems, fmt.Sprintf("%s: unexpected (%s), not a parameter of this architecture", path, describeValue(leaf)))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("%w: the parameter tree does not match the architecture that its shapes give (%s): %d problems: %s",
			ErrInvalidCheckpoint, describeConfig(cfg), len(problems), strings.Join(problems, "; "))
	}
	return layouts, nil
}

// describeConfig returns a one-line summary of cfg for messages.
func describeConfig(cfg core.Config) string {
	return fmt.Sprintf("encoder %dx%d with %d heads, decoder %dx%d with %d heads, MLP ratio %d, %d-pixel patches, vocabulary %d",
		cfg.EmbedDim, cfg.Depth, cfg.NumHeads, cfg.DecoderEmbedDim, cfg.DecoderDepth, cfg.DecoderNumHeads,
		cfg.MLPRatio, cfg.PatchSize, cfg.VocabSize)
}

// intEntry returns d[key] when it is an integer, and -1 otherwise.
func intEntry(d *pyDict, key string) int64 {
	if v, ok := d.get(key); ok {
		if i, ok := v.(int64); ok {
			return i
		}
	}
	return -1
}

// variantModelType returns variant["m3ae.model_type"] when it is a str.
func variantModelType(top *pyDict) string {
	variant, ok := top.get("variant")
	if !ok {
		return ""
	}
	d, ok := variant.(*pyDict)
	if !ok {
		return ""
	}
	if v, ok := d.get("m3ae.model_type"); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}
