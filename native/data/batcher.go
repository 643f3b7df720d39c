package data

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"runtime"
	"sync"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	// Model gives the image size, patch size and text length Nt.
	Model core.Config
	// Norm is the dataset's pixel mean and std (see ComputeNorm).
	Norm      core.ImageNorm
	Tokenizer *core.Tokenizer
	// BatchSize is the number of examples B per batch.
	BatchSize int
	// Workers is the number of goroutines that decode and augment; zero
	// means GOMAXPROCS.
	Workers int
	// Prefetch is how many batches the workers prepare ahead of the
	// caller; zero means 2.
	Prefetch int
	// Augment selects random training views, drawn as Augmentation sets.
	// Without it, every image is preprocessed as core.PreprocessImage does
	// for inference, by a bicubic resize of the shorter side and a centre
	// crop.
	Augment      bool
	Augmentation Augmentation
	// Seed seeds each example's augmentation generator together with the
	// example's epoch and index within the epoch.
	Seed uint64
	// SkipBad drops examples whose data is bad (errors wrapping
	// ErrInvalidData) and fills the batch from the next draws, counting
	// them, instead of failing. A skip shifts every later batch by one
	// draw, so batches after it may mix kinds in other proportions.
	SkipBad bool
	// DropLast drops a final batch that has fewer than BatchSize examples.
	DropLast bool
	// Logger receives a warning per skipped example (the first
	// maxLoggedSkips of them). Nil discards them.
	Logger *slog.Logger
}

// Batch is B examples ready for a training or evaluation step. Buffers are
// flat and row-major.
type Batch struct {
	// Size is the number of examples B.
	Size int
	// ImageSize, PatchSize and TextLength are the model's, so the shapes
	// below can be checked.
	ImageSize, PatchSize, TextLength int
	// Patches has shape [B, Np, p*p*C]: patch n of example i starts at
	// (i*Np + n)*p*p*C, in core.Patchify's order. A text-only example's
	// patches are zero.
	Patches []float32
	// Tokens has shape [B, Nt]: WordPiece ids padded with core.PadID. An
	// image-only example's row is all pads.
	Tokens []int32
	// Kinds has shape [B]. A paired example whose caption gives no token
	// is counted as ImageOnly.
	Kinds []Kind
	// Labels has shape [B]: class labels, or NoLabel.
	Labels []int32
	// Draws has shape [B]: the mixer draw of each example.
	Draws []Pick
	// Next is the position after the last draw this batch consumed,
	// skipped draws included: save it to resume after this batch.
	Next Position
}

// NumPatches returns Np.
func (b *Batch) NumPatches() int { return (b.ImageSize / b.PatchSize) * (b.ImageSize / b.PatchSize) }

// PatchDim returns p*p*C.
func (b *Batch) PatchDim() int { return b.PatchSize * b.PatchSize * core.Channels }

// ExamplePatches returns the [Np, p*p*C] patches of example i, sharing
// memory with Patches.
func (b *Batch) ExamplePatches(i int) []float32 {
	n := b.NumPatches() * b.PatchDim()
	return b.Patches[i*n : (i+1)*n]
}

// ExampleTokens returns the [Nt] ids of example i, sharing memory with
// Tokens.
func (b *Batch) ExampleTokens(i int) []int32 {
	return b.Tokens[i*b.TextLength : (i+1)*b.TextLength]
}

// ExamplePixels returns example i's image as a new [ImageSize, ImageSize,
// C] buffer, the layout of core.PreprocessImage, or nil for a text-only
// example.
func (b *Batch) ExamplePixels(i int) []float32 {
	if !b.Kinds[i].HasImage() {
		return nil
	}
	pixels := make([]float32, b.ImageSize*b.ImageSize*core.Channels)
	core.Unpatchify(pixels, b.ExamplePatches(i), core.Config{ImageSize: b.ImageSize, PatchSize: b.PatchSize})
	return pixels
}

// Batcher reads draws from a Mixer and prepares batches on a pool of
// workers. Output order follows draw order whatever the workers' timing,
// and an example's pixels depend only on the config and its draw.
type Batcher struct {
	cfg    BatcherConfig
	mixer  *Mixer
	logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	out    chan batchOrError
	done   sync.WaitGroup

	mu      sync.Mutex
	skipped int
	// finished is set when the collector has sent the last batch, so Next
	// can tell the end of the data from a cancellation.
	finished bool
}

// batchOrError is one item of the output channel.
type batchOrError struct {
	batch *Batch
	err   error
}

// job is one draw on its way through the workers.
type job struct {
	pick  Pick
	done  chan struct{}
	ready prepared
	err   error
}

// prepared is one example as it enters a batch.
type prepared struct {
	kind    Kind
	label   int
	patches []float32 // [Np, p*p*C], nil for text-only
	tokens  []int32   // [Nt]
}

// NewBatcher starts the workers at position start of mixer. It reads the
// mixer with Pick only, so the mixer's own Next position is left alone.
// Call Close to stop the workers.
func NewBatcher(ctx context.Context, mixer *Mixer, start Position, cfg BatcherConfig) (*Batcher, error) {
	if err := cfg.Model.Validate(); err != nil {
		return nil, fmt.Errorf("batcher: %w", err)
	}
	if cfg.Tokenizer == nil {
		return nil, fmt.Errorf("batcher: tokenizer is nil: use core.NewTokenizer(bertvocab.Tokens())")
	}
	if cfg.BatchSize < 1 {
		return nil, fmt.Errorf("batcher: batch size %d: want at least 1", cfg.BatchSize)
	}
	if cfg.Augment {
		if err := cfg.Augmentation.Validate(); err != nil {
			return nil, fmt.Errorf("batcher: %w", err)
		}
	}
	if err := checkNorm(cfg.Norm); err != nil {
		return nil, fmt.Errorf("batcher: %w", err)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2
	}
	if cfg.Workers < 1 || cfg.Prefetch < 1 {
		return nil, fmt.Errorf("batcher: workers %d and prefetch %d must be positive", cfg.Workers, cfg.Prefetch)
	}
	if err := mixer.checkPosition(start); err != nil {
		return nil, fmt.Errorf("batcher: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	b := &Batcher{
		cfg:    cfg,
		mixer:  mixer,
		logger: loggerOrDiscard(cfg.Logger),
		ctx:    ctx,
		cancel: cancel,
		out:    make(chan batchOrError, cfg.Prefetch),
	}
	// pending holds the jobs in draw order; its capacity bounds how far the
	// dispatcher runs ahead of the collector.
	pending := make(chan *job, cfg.BatchSize*cfg.Prefetch)
	jobs := make(chan *job, cfg.Workers)
	b.done.Add(2 + cfg.Workers)
	go b.dispatch(ctx, start.Draw, jobs, pending)
	for range cfg.Workers {
		go b.work(ctx, jobs)
	}
	go b.collect(ctx, pending)
	return b, nil
}

// Next returns the next batch, or io.EOF after the last one. Once the
// context is cancelled or Close is called, it returns the context's error.
// After any error the batcher is stopped.
func (b *Batcher) Next() (*Batch, error) {
	item, ok := <-b.out
	if ok {
		return item.batch, item.err
	}
	b.mu.Lock()
	finished := b.finished
	b.mu.Unlock()
	if !finished {
		return nil, fmt.Errorf("batcher: %w", context.Cause(b.ctx))
	}
	return nil, io.EOF
}

// Close stops the workers and waits for them. It is safe to call more
// than once.
func (b *Batcher) Close() {
	b.cancel()
	b.done.Wait()
}

// Skipped returns the number of bad examples skipped so far.
func (b *Batcher) Skipped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.skipped
}

// dispatch sends the draws from first on, in order, to the workers and
// to the collector.
func (b *Batcher) dispatch(ctx context.Context, first int64, jobs, pending chan<- *job) {
	defer b.done.Done()
	defer close(jobs)
	defer close(pending)
	for k := first; ; k++ {
		pick, err := b.mixer.Pick(k)
		if errors.Is(err, io.EOF) {
			return
		}
		j := &job{pick: pick, done: make(chan struct{})}
		if err != nil {
			j.err = err
			close(j.done)
		}
		select {
		case pending <- j:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			return
		}
	}
}

// work prepares jobs until the jobs channel closes.
func (b *Batcher) work(ctx context.Context, jobs <-chan *job) {
	defer b.done.Done()
	for j := range jobs {
		if ctx.Err() == nil {
			j.ready, j.err = b.prepare(j.pick)
		} else {
			j.err = ctx.Err()
		}
		close(j.done)
	}
}

// collect assembles the prepared examples into batches in draw order.
func (b *Batcher) collect(ctx context.Context, pending <-chan *job) {
	defer b.done.Done()
	defer close(b.out)
	send := func(item batchOrError) bool {
		select {
		case b.out <- item:
			return true
		case <-ctx.Done():
			return false
		}
	}

	batch := b.newBatch()
	for j := range pending {
		select {
		case <-j.done:
		case <-ctx.Done():
			return
		}
		batch.Next = b.mixer.PositionAt(j.pick.Draw + 1)
		if j.err != nil {
			if b.cfg.SkipBad && errors.Is(j.err, ErrInvalidData) {
				b.noteSkip(j.err)
				continue
			}
			if send(batchOrError{err: j.err}) {
				b.mu.Lock()
				b.finished = true // later calls of Next return io.EOF
				b.mu.Unlock()
			}
			return
		}
		batch.add(j.pick, j.ready)
		if batch.Size == b.cfg.BatchSize {
			if !send(batchOrError{batch: batch}) {
				return
			}
			batch = b.newBatch()
		}
	}
	if ctx.Err() != nil {
		return
	}
	if skipped := b.Skipped(); skipped > 0 {
		b.logger.Warn("skipped bad examples", "skipped", skipped)
	}
	if batch.Size > 0 && !b.cfg.DropLast {
		if !send(batchOrError{batch: batch}) {
			return
		}
	}
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
}

// noteSkip counts a skipped example and logs the first few.
func (b *Batcher) noteSkip(err error) {
	b.mu.Lock()
	b.skipped++
	n := b.skipped
	b.mu.Unlock()
	if n <= maxLoggedSkips {
		b.logger.Warn("skipping bad example", "error", err)
	}
}

// newBatch returns an empty batch with room for BatchSize examples.
func (b *Batcher) newBatch() *Batch {
	m, size := b.cfg.Model, b.cfg.BatchSize
	return &Batch{
		ImageSize:  m.ImageSize,
		PatchSize:  m.PatchSize,
		TextLength: m.TextLength,
		Patches:    make([]float32, 0, size*m.NumPatches()*m.PatchDim()),
		Tokens:     make([]int32, 0, size*m.TextLength),
		Kinds:      make([]Kind, 0, size),
		Labels:     make([]int32, 0, size),
		Draws:      make([]Pick, 0, size),
	}
}

// add appends one prepared example.
func (batch *Batch) add(pick Pick, ex prepared) {
	if ex.patches != nil {
		batch.Patches = append(batch.Patches, ex.patches...)
	} else {
		n := batch.NumPatches() * batch.PatchDim()
		batch.Patches = append(batch.Patches, make([]float32, n)...)
	}
	batch.Tokens = append(batch.Tokens, ex.tokens...)
	batch.Kinds = append(batch.Kinds, ex.kind)
	batch.Labels = append(batch.Labels, int32(ex.label))
	batch.Draws = append(batch.Draws, pick)
	batch.Size++
}

// prepare reads, decodes, transforms and tokenizes the example of one draw.
func (b *Batcher) prepare(pick Pick) (prepared, error) {
	cfg := b.cfg
	ex, err := b.mixer.cfg.Sources[pick.Source].Source.Example(pick.Example)
	if err != nil {
		return prepared{}, err
	}
	if err := ex.Decode(); err != nil {
		return prepared{}, err
	}
	out := prepared{kind: ex.Kind, label: ex.Label, tokens: make([]int32, cfg.Model.TextLength)}

	if ex.Kind.HasText() && cfg.Tokenizer.EncodeInto(out.tokens, ex.Caption) == 0 {
		if ex.Kind == TextOnly {
			return prepared{}, fmt.Errorf("%w: %s: caption %q gives no WordPiece token", ErrInvalidData, ex.Origin, ex.Caption)
		}
		out.kind = ImageOnly
	}
	if !ex.Kind.HasImage() {
		return out, nil
	}

	size := cfg.Model.ImageSize
	pixels := make([]float32, size*size*core.Channels)
	if cfg.Augment {
		rng := newRand(cfg.Seed, domainAugment, uint64(pick.Epoch), uint64(pick.Index))
		augmentImage(pixels, ex.Image.(*image.RGBA), size, cfg.Norm, cfg.Augmentation, rng)
	} else if err := core.PreprocessImage(ex.Image, size, cfg.Norm, pixels); err != nil {
		return prepared{}, fmt.Errorf("%w: %s: %w", ErrInvalidData, ex.Origin, err)
	}
	out.patches = make([]float32, cfg.Model.NumPatches()*cfg.Model.PatchDim())
	core.Patchify(out.patches, pixels, cfg.Model)
	return out, nil
}
