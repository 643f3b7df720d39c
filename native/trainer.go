package native

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Trainer runs M3AE training steps on a GoMLX backend. It is not safe for
// concurrent use.
type Trainer struct {
	cfg     core.Config
	tc      TrainConfig
	backend compute.Backend
	store   *model.Store
	vocab   []string
	norm    core.ImageNorm
	params  []param
	byName  map[string]*param
	opt     adamW
	logger  *slog.Logger

	// execs holds one executor per combination of example kinds present in a
	// batch. Each compiles one graph per distinct set of input shapes, and
	// compiled records the sets seen so far.
	execs    map[[numKinds]bool]*model.Exec
	compiled map[string]bool

	pcg  *rand.PCG
	rng  *rand.Rand
	step int64

	started   time.Time
	startStep int64
}

// NewTrainer returns a trainer that starts from the float32 weights in init
// (core.InitModelFile builds a fresh model) and trains with tc on backend.
func NewTrainer(backend compute.Backend, init *core.ModelFile, tc TrainConfig) (*Trainer, error) {
	if init == nil {
		return nil, fmt.Errorf("%w: no initial model; pass core.InitModelFile's result or a loaded model file", core.ErrInvalidInput)
	}
	if err := tc.Validate(init.Config); err != nil {
		return nil, err
	}
	store := model.NewStore()
	if err := LoadModelFile(store, init); err != nil {
		return nil, err
	}
	return newTrainer(backend, store, init.Config, init.Vocab, init.Norm, tc)
}

func newTrainer(backend compute.Backend, store *model.Store, cfg core.Config, vocab []string, norm core.ImageNorm, tc TrainConfig) (*Trainer, error) {
	params, err := newParams(store, cfg)
	if err != nil {
		return nil, err
	}
	t := &Trainer{
		cfg: cfg, tc: tc, backend: backend, store: store, params: params,
		vocab: slices.Clone(vocab), norm: norm,
		byName: make(map[string]*param, len(params)),
		opt: adamW{
			beta1: tc.Beta1, beta2: tc.Beta2, epsilon: tc.Epsilon,
			weightDecay: tc.WeightDecay, maxGradNorm: tc.MaxGradNorm,
		},
		logger:   tc.Logger,
		execs:    make(map[[numKinds]bool]*model.Exec),
		compiled: make(map[string]bool),
	}
	if t.logger == nil {
		t.logger = slog.New(slog.DiscardHandler)
	}
	for i := range t.params {
		t.byName[t.params[i].spec.Name] = &t.params[i]
	}
	t.pcg = rand.NewPCG(tc.Seed, tc.Seed^maskSeedSalt)
	t.rng = rand.New(t.pcg)
	t.step = tensors.ToScalar[int64](store.GetVariable(globalStepPath).MustValue())
	t.logger.Info("trainer ready",
		"parameters", cfg.NumParams(),
		"peak_learning_rate", tc.PeakLearningRate,
		"kept_patches", keepCount(cfg.NumPatches(), tc.ImageMaskRatio),
		"kept_text", keepCount(cfg.TextLength, tc.TextMaskRatio),
		"step", t.step)
	return t, nil
}

// maskSeedSalt fills the second word of the mask generator's PCG seed.
const maskSeedSalt = 0x6d336165 // "m3ae"

// Config returns the architecture being trained.
func (t *Trainer) Config() core.Config { return t.cfg }

// Vocab returns the tokenizer vocabulary of the model being trained, as
// the initial model file gave it.
func (t *Trainer) Vocab() []string { return t.vocab }

// Norm returns the image normalization of the training data, as the
// initial model file gave it.
func (t *Trainer) Norm() core.ImageNorm { return t.norm }

// TrainConfig returns the training settings.
func (t *Trainer) TrainConfig() TrainConfig { return t.tc }

// Store returns the GoMLX store holding the parameters and training state.
func (t *Trainer) Store() *model.Store { return t.store }

// Backend returns the backend the trainer runs on.
func (t *Trainer) Backend() compute.Backend { return t.backend }

// GlobalStep returns the number of updates applied so far.
func (t *Trainer) GlobalStep() int64 { return t.step }

// LearningRate returns the learning rate of update number step (1 for the
// first).
func (t *Trainer) LearningRate(step int64) float64 {
	return learningRateAt(step, t.tc.PeakLearningRate, t.tc.WarmupSteps, t.tc.TotalSteps)
}

// Step draws one mask per example, runs the forward and backward passes on
// batch and applies one AdamW update. It returns the image and text losses
// computed before the update.
func (t *Trainer) Step(batch []Example) (imageLoss, textLoss float32, err error) {
	metrics, err := t.StepWithMetrics(batch)
	return metrics.ImageLoss, metrics.TextLoss, err
}

// StepWithMetrics is Step returning every metric of the step.
func (t *Trainer) StepWithMetrics(batch []Example) (StepMetrics, error) {
	start := time.Now()
	if t.started.IsZero() {
		t.started, t.startStep = start, t.step
	}
	if len(batch) == 0 {
		return StepMetrics{}, fmt.Errorf("%w: empty batch", core.ErrInvalidInput)
	}
	subBatches, err := t.prepare(batch)
	if err != nil {
		return StepMetrics{}, err
	}

	metrics := StepMetrics{Step: t.step + 1, LearningRate: t.LearningRate(t.step + 1), Examples: len(batch)}
	var layout [numKinds]bool
	inputs := []*tensors.Tensor{tensors.FromScalar(float32(metrics.LearningRate))}
	for _, sb := range subBatches {
		layout[sb.kind] = true
		inputs = append(inputs, sb.inputs...)
		switch sb.kind {
		case kindPaired:
			metrics.Paired = sb.size
		case kindImageOnly:
			metrics.ImageOnly = sb.size
		case kindTextOnly:
			metrics.TextOnly = sb.size
		}
	}
	outputs, err := t.run(layout, inputs)
	if err != nil {
		return StepMetrics{}, fmt.Errorf("training step %d: %w", metrics.Step, err)
	}
	t.step++
	metrics.ImageLoss = tensors.ToScalar[float32](outputs[0])
	metrics.TextLoss = tensors.ToScalar[float32](outputs[1])
	metrics.Loss = tensors.ToScalar[float32](outputs[2])
	metrics.GradNorm = tensors.ToScalar[float32](outputs[3])
	metrics.Duration = time.Since(start)

	t.report(metrics)
	if f := float64(metrics.Loss); math.IsNaN(f) || math.IsInf(f, 0) {
		return metrics, fmt.Errorf("%w at step %d (image %g, text %g); lower the learning rate or set MaxGradNorm",
			ErrNonFiniteLoss, metrics.Step, metrics.ImageLoss, metrics.TextLoss)
	}
	return metrics, nil
}

// prepare classifies the examples, draws their masks in batch order and packs
// one sub-batch per kind present.
func (t *Trainer) prepare(batch []Example) ([]*subBatch, error) {
	kinds := make([]exampleKind, len(batch))
	for i, ex := range batch {
		k, err := trainingKind(t.cfg, ex, i)
		if err != nil {
			return nil, err
		}
		kinds[i] = k
	}
	// Each example's masks come from core.RandomMasks with a seed drawn from
	// the trainer's generator, so core reproduces them from that seed.
	masks := make([]core.Masks, len(batch))
	for i := range kinds {
		m, err := core.RandomMasks(t.cfg, t.tc.ImageMaskRatio, t.tc.TextMaskRatio, t.rng.Uint64())
		if err != nil {
			return nil, err
		}
		masks[i] = m
	}
	return groupByKind(t.cfg, batch, kinds, masks)
}

// groupByKind packs the examples of each kind, in batch order, into one
// sub-batch per kind present.
func groupByKind(cfg core.Config, batch []Example, kinds []exampleKind, masks []core.Masks) ([]*subBatch, error) {
	var subBatches []*subBatch
	for kind := range numKinds {
		var examples []Example
		var group []core.Masks
		var indices []int
		for i, k := range kinds {
			if k == kind {
				examples = append(examples, batch[i])
				group = append(group, masks[i])
				indices = append(indices, i)
			}
		}
		if len(examples) == 0 {
			continue
		}
		sb, err := packSubBatch(cfg, kind, examples, group)
		if err != nil {
			return nil, err
		}
		sb.indices = indices
		subBatches = append(subBatches, sb)
	}
	return subBatches, nil
}

// maxGraphsPerLayout bounds the graphs one executor compiles, one per
// distinct set of input shapes (GoMLX's default is 32). Batches of a fixed
// composition need one per padded count of scored text rows, at most Nt.
const maxGraphsPerLayout = 256

// run executes the training graph of layout, building its executor on first
// use, and turns graph-building panics into errors.
func (t *Trainer) run(layout [numKinds]bool, inputs []*tensors.Tensor) (outputs []*tensors.Tensor, err error) {
	exec, ok := t.execs[layout]
	if !ok {
		exec, err = model.NewExec(t.backend, t.store, func(_ *model.Scope, nodes []*Node) []*Node {
			return t.stepGraph(layout, nodes)
		})
		if err != nil {
			return nil, err
		}
		exec.SetMaxCache(maxGraphsPerLayout)
		t.execs[layout] = exec
	}
	var signature strings.Builder
	for _, in := range inputs {
		signature.WriteString(in.Shape().String())
	}
	if key := signature.String(); !t.compiled[key] {
		t.compiled[key] = true
		t.logger.Info("compiling training graph", "graphs", len(t.compiled), "input_shapes", key)
	}
	panicErr := exceptions.TryCatch[error](func() {
		outputs, err = exec.Call(inputs)
	})
	if panicErr != nil {
		return nil, panicErr
	}
	return outputs, err
}

// stepGraph builds one training step: the losses of every sub-batch of
// layout, their gradients and the AdamW update. nodes are the learning rate
// followed by each present sub-batch's inputs in kind order. It returns the
// image loss, text loss, total loss and gradient norm.
func (t *Trainer) stepGraph(layout [numKinds]bool, nodes []*Node) []*Node {
	g := nodes[0].Graph()
	learningRate, rest := nodes[0], nodes[1:]
	m := t.graphModel(g)

	var imageSum, textSum *Node
	numWithImage, numExamples := 0, 0
	for kind := range numKinds {
		if !layout[kind] {
			continue
		}
		var sb subBatchNodes
		sb, rest = unpackSubBatch(rest, kind)
		image, text := m.subBatchLosses(sb)
		numExamples += sb.batchSize
		if kind.hasImage() {
			numWithImage += sb.batchSize
			imageSum = addOrSet(imageSum, image)
		}
		if text != nil {
			textSum = addOrSet(textSum, text)
		}
	}

	zero := Scalar(g, dtypes.Float32, 0)
	imageLoss, textLoss := zero, zero
	if imageSum != nil {
		imageLoss = DivScalar(imageSum, float64(numWithImage))
	}
	if textSum != nil {
		textLoss = DivScalar(textSum, float64(numExamples))
	}
	loss := Add(MulScalar(imageLoss, t.tc.ImageLossWeight), MulScalar(textLoss, t.tc.TextLossWeight))

	values := make([]*Node, len(t.params))
	for i, p := range t.params {
		values[i] = p.value.NodeValue(g)
	}
	grads := Gradient(loss, values...)
	gradNorm := t.opt.update(g, t.store, t.params, grads, learningRate)
	return []*Node{imageLoss, textLoss, loss, gradNorm}
}

// graphModel returns the model builder reading the parameters of g.
func (t *Trainer) graphModel(g *Graph) *m3aeGraph {
	return &m3aeGraph{cfg: t.cfg, weight: func(name string) *Node {
		p, ok := t.byName[name]
		if !ok {
			exceptions.Panicf("model graph asked for unknown parameter %q", name)
		}
		return p.value.NodeValue(g)
	}}
}

func addOrSet(sum, x *Node) *Node {
	if sum == nil {
		return x
	}
	return Add(sum, x)
}

// report sends metrics to the callback and logs every LogEvery steps.
func (t *Trainer) report(m StepMetrics) {
	if t.tc.OnStep != nil {
		t.tc.OnStep(m)
	}
	if t.tc.LogEvery == 0 || m.Step%int64(t.tc.LogEvery) != 0 {
		return
	}
	attrs := []any{
		"step", m.Step, "image_loss", m.ImageLoss, "text_loss", m.TextLoss,
		"learning_rate", m.LearningRate, "ms_per_step", m.Duration.Milliseconds(),
		"examples_per_s", float64(m.Examples) / m.Duration.Seconds(),
	}
	if done := m.Step - t.startStep; t.tc.TotalSteps > 0 && done > 0 && m.Step < int64(t.tc.TotalSteps) {
		perStep := time.Since(t.started) / time.Duration(done)
		attrs = append(attrs, "eta", (perStep * time.Duration(int64(t.tc.TotalSteps)-m.Step)).Round(time.Second).String())
	}
	t.logger.Info("train", attrs...)
}
