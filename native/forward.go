package native

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Model runs the forward pass of the parameters in a GoMLX store, batched,
// with the same inputs and outputs as core.Model. It serves evaluation and
// the check that an exported model file reproduces the GoMLX model. It is
// not safe for concurrent use.
type Model struct {
	cfg     core.Config
	backend compute.Backend
	store   *model.Store
	// reconstructExecs and embedExecs hold one executor per combination of
	// token groups; each compiles one graph per distinct sub-batch size.
	reconstructExecs map[[numKinds]bool]*model.Exec
	embedExecs       map[[numKinds]bool]*model.Exec
}

// NewModel returns a Model over the parameters of cfg in store, which must
// hold every parameter as a float32 variable (LoadModelFile creates them).
func NewModel(backend compute.Backend, store *model.Store, cfg core.Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkParamVariables(store, cfg); err != nil {
		return nil, err
	}
	return &Model{
		cfg: cfg, backend: backend, store: store,
		reconstructExecs: make(map[[numKinds]bool]*model.Exec),
		embedExecs:       make(map[[numKinds]bool]*model.Exec),
	}, nil
}

// Model returns a Model that reads the trainer's current parameters.
func (t *Trainer) Model() (*Model, error) {
	return NewModel(t.backend, t.store, t.cfg)
}

// Reconstruct runs the masked forward pass of every example, as
// core.Model.Reconstruct does one at a time: an example has an image when
// Image is non-nil and text when Text is non-nil (even all pads), and a
// nil mask hides nothing. Examples that share a set of token groups run as
// one sub-batch, so their masks must keep the same number of positions.
// Patches in the results are the input patch where visible and the
// prediction where hidden.
func (m *Model) Reconstruct(examples []Example, masks []core.Masks) ([]*core.Reconstruction, error) {
	if len(masks) != len(examples) {
		return nil, fmt.Errorf("%w: %d masks for %d examples", core.ErrInvalidInput, len(masks), len(examples))
	}
	kinds, err := m.forwardKinds(examples)
	if err != nil {
		return nil, err
	}
	full := make([]core.Masks, len(examples))
	for i, k := range kinds {
		if k.hasImage() {
			full[i].Image = expandMask(masks[i].Image, m.cfg.NumPatches())
		}
		if k.hasText() {
			full[i].Text = expandMask(masks[i].Text, m.cfg.TextLength)
		}
	}
	subBatches, err := groupByKind(m.cfg, examples, kinds, full)
	if err != nil {
		return nil, err
	}
	results := make([]*core.Reconstruction, len(examples))
	for _, sb := range subBatches {
		outputs, err := m.run(m.reconstructExecs, sb.kind, sb.inputs, m.reconstructGraph)
		if err != nil {
			return nil, err
		}
		m.unpackReconstructions(results, sb, outputs, examples, full)
	}
	return results, nil
}

// Embed returns the CLS output, after the encoder's final LayerNorm, of each
// unmasked example: core.Model.Embed with core.PoolCLS.
func (m *Model) Embed(examples []Example) ([][]float32, error) {
	kinds, err := m.forwardKinds(examples)
	if err != nil {
		return nil, err
	}
	full := make([]core.Masks, len(examples))
	for i, k := range kinds {
		if k.hasImage() {
			full[i].Image = make([]bool, m.cfg.NumPatches())
		}
		if k.hasText() {
			full[i].Text = make([]bool, m.cfg.TextLength)
		}
	}
	subBatches, err := groupByKind(m.cfg, examples, kinds, full)
	if err != nil {
		return nil, err
	}
	width := m.cfg.EmbedDim
	out := make([][]float32, len(examples))
	for _, sb := range subBatches {
		outputs, err := m.run(m.embedExecs, sb.kind, sb.inputs, m.embedGraph)
		if err != nil {
			return nil, err
		}
		cls := tensors.MustCopyFlatData[float32](outputs[0]) // [B, D]
		for j, i := range sb.indices {
			out[i] = slices.Clone(cls[j*width : (j+1)*width])
		}
	}
	return out, nil
}

// forwardKinds classifies examples by the groups core would see: text is
// present whenever Text is non-nil.
func (m *Model) forwardKinds(examples []Example) ([]exampleKind, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("%w: no examples", core.ErrInvalidInput)
	}
	kinds := make([]exampleKind, len(examples))
	for i, ex := range examples {
		k, err := forwardKind(m.cfg, ex, i)
		if err != nil {
			return nil, err
		}
		kinds[i] = k
	}
	return kinds, nil
}

// expandMask returns a copy of mask, or length false entries for nil.
func expandMask(mask []bool, length int) []bool {
	if mask == nil {
		return make([]bool, length)
	}
	return slices.Clone(mask)
}

type graphBuilder func(kind exampleKind, nodes []*Node) []*Node

// run executes the graph of kind from execs, building the executor on
// first use, and turns graph-building panics into errors.
func (m *Model) run(execs map[[numKinds]bool]*model.Exec, kind exampleKind, inputs []*tensors.Tensor, build graphBuilder) (outputs []*tensors.Tensor, err error) {
	var layout [numKinds]bool
	layout[kind] = true
	exec, ok := execs[layout]
	if !ok {
		exec, err = model.NewExec(m.backend, m.store, func(_ *model.Scope, nodes []*Node) []*Node {
			return build(kind, nodes)
		})
		if err != nil {
			return nil, err
		}
		execs[layout] = exec
	}
	if panicErr := exceptions.TryCatch[error](func() { outputs, err = exec.Call(inputs) }); panicErr != nil {
		return nil, panicErr
	}
	return outputs, err
}

func (m *Model) graphModel(g *Graph) *m3aeGraph {
	return &m3aeGraph{cfg: m.cfg, weight: func(name string) *Node {
		v := m.store.GetVariable(ParamPath(name))
		if v == nil {
			exceptions.Panicf("store has no variable for parameter %q", name)
		}
		return v.NodeValue(g)
	}}
}

// reconstructGraph returns the encoder tokens [B, K, D], then the pixel
// predictions [B, Np, P] of every image slot (with images), then the logits
// [B, Nt, V] of every text slot (with text).
func (m *Model) reconstructGraph(kind exampleKind, nodes []*Node) []*Node {
	gm := m.graphModel(nodes[0].Graph())
	sb, _ := unpackSubBatch(nodes, kind)
	enc := gm.encode(sb.enc)
	decoded := gm.decode(enc, sb.dec) // [B, 1+Np+Nt, Dd]
	outputs := []*Node{enc.tokens}
	start := 1
	if enc.hasImage {
		slots := SliceAxis(decoded, 1, AxisRange(start, start+m.cfg.NumPatches()))
		outputs = append(outputs, gm.pixelHead(slots))
		start += m.cfg.NumPatches()
	}
	if enc.hasText {
		slots := SliceAxis(decoded, 1, AxisRange(start, start+m.cfg.TextLength))
		outputs = append(outputs, gm.textHead(slots))
	}
	return outputs
}

// embedGraph returns the encoder's CLS output [B, D].
func (m *Model) embedGraph(kind exampleKind, nodes []*Node) []*Node {
	gm := m.graphModel(nodes[0].Graph())
	sb, _ := unpackSubBatch(nodes, kind)
	enc := gm.encode(sb.enc)
	cls := SliceAxis(enc.tokens, 1, AxisRange(0, 1))
	return []*Node{Reshape(cls, enc.batchSize, m.cfg.EmbedDim)}
}

// unpackReconstructions copies one sub-batch's outputs into results.
func (m *Model) unpackReconstructions(results []*core.Reconstruction, sb *subBatch, outputs []*tensors.Tensor,
	examples []Example, masks []core.Masks) {
	cfg := m.cfg
	tokens := tensors.MustCopyFlatData[float32](outputs[0])
	numEncoded := outputs[0].Shape().Dim(1)
	var pixels, logits []float32
	next := 1
	if sb.kind.hasImage() {
		pixels = tensors.MustCopyFlatData[float32](outputs[next])
		next++
	}
	if sb.kind.hasText() {
		logits = tensors.MustCopyFlatData[float32](outputs[next])
	}
	encodedSize, pixelSize, logitSize := numEncoded*cfg.EmbedDim, cfg.NumPatches()*cfg.PatchDim(), cfg.TextLength*cfg.VocabSize
	for j, i := range sb.indices {
		r := &core.Reconstruction{
			Masks:      masks[i],
			NumEncoded: numEncoded,
			Encoded:    slices.Clone(tokens[j*encodedSize : (j+1)*encodedSize]),
			VocabSize:  cfg.VocabSize,
		}
		if pixels != nil {
			r.PixelPred = slices.Clone(pixels[j*pixelSize : (j+1)*pixelSize])
			r.Patches = make([]float32, pixelSize)
			core.Patchify(r.Patches, examples[i].Image, cfg)
			patchDim := cfg.PatchDim()
			for n, hidden := range masks[i].Image {
				if hidden {
					copy(r.Patches[n*patchDim:(n+1)*patchDim], r.PixelPred[n*patchDim:(n+1)*patchDim])
				}
			}
		}
		if logits != nil {
			r.Tokens = slices.Clone(examples[i].Text)
			r.TokenLogits = slices.Clone(logits[j*logitSize : (j+1)*logitSize])
		}
		results[i] = r
	}
}
