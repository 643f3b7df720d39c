package core

import "fmt"

// ParamSpec names one parameter tensor of the model and gives its shape.
// Names are the official flax parameter paths joined with ".", and dense
// kernels keep flax's [in, out] layout, so an official checkpoint converts
// without renaming or transposing anything.
type ParamSpec struct {
	Name  string
	Shape []int
	// Kind is how the parameter is used, which decides its weight decay
	// during training and its quantization.
	Kind ParamKind
}

// ParamKind classifies a parameter.
type ParamKind int

const (
	// KindKernel is a dense layer's [in, out] weight matrix.
	KindKernel ParamKind = iota
	// KindBias is a dense layer's bias vector.
	KindBias
	// KindNormScale is a LayerNorm scale vector.
	KindNormScale
	// KindNormBias is a LayerNorm bias vector.
	KindNormBias
	// KindEmbeddingTable is the [V, D] text embedding table.
	KindEmbeddingTable
	// KindToken is a learned [1, 1, width] vector: CLS, a type embedding
	// or a mask embedding.
	KindToken
)

// NumElements returns the product of the shape.
func (p ParamSpec) NumElements() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// ParamSpecs lists every parameter of the architecture in a fixed order:
// the top-level tokens and embeddings, the encoder blocks, the decoder
// blocks, then the heads.
func ParamSpecs(c Config) []ParamSpec {
	d, dd, v := c.EmbedDim, c.DecoderEmbedDim, c.VocabSize
	var specs []ParamSpec
	add := func(name string, kind ParamKind, shape ...int) {
		specs = append(specs, ParamSpec{Name: name, Shape: shape, Kind: kind})
	}
	dense := func(prefix string, in, out int) {
		add(prefix+".kernel", KindKernel, in, out)
		add(prefix+".bias", KindBias, out)
	}
	layerNorm := func(prefix string, width int) {
		add(prefix+".scale", KindNormScale, width)
		add(prefix+".bias", KindNormBias, width)
	}
	transformer := func(prefix string, depth, width int) {
		for i := range depth {
			block := fmt.Sprintf("%s.Block_%d", prefix, i)
			layerNorm(block+".LayerNorm_0", width)
			dense(block+".Attention_0.Dense_0", width, 3*width)
			dense(block+".Attention_0.Dense_1", width, width)
			layerNorm(block+".LayerNorm_1", width)
			dense(block+".TransformerMLP_0.fc1", width, c.MLPRatio*width)
			dense(block+".TransformerMLP_0.fc2", c.MLPRatio*width, width)
		}
		layerNorm(prefix+".LayerNorm_0", width)
	}

	add("cls_token", KindToken, 1, 1, d)
	add("encoder_image_type_embedding", KindToken, 1, 1, d)
	add("encoder_text_type_embedding", KindToken, 1, 1, d)
	add("decoder_image_type_embedding", KindToken, 1, 1, dd)
	add("decoder_text_type_embedding", KindToken, 1, 1, dd)
	add("image_mask_embedding", KindToken, 1, 1, dd)
	add("text_mask_embedding", KindToken, 1, 1, dd)
	add("text_embedding.embedding", KindEmbeddingTable, v, d)
	dense("image_embedding", c.PatchDim(), d)
	transformer("encoder", c.Depth, d)
	dense("decoder_input_projection", d, dd)
	transformer("decoder", c.DecoderDepth, dd)
	dense("decoder_image_output.Dense_0", dd, c.PatchDim())
	dense("decoder_text_output.Dense_0", dd, v)
	return specs
}
