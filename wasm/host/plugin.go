// Package host runs the m3ae WebAssembly plugin (wasm/plugin, built for
// GOOS=wasip1) inside a Go program with wazero: sandboxed, memory-limited,
// and on a pool of instances so that calls run concurrently.
//
// A Plugin is one compiled module and its pool. LoadModel copies a model
// file into the guest and returns a Model, whose Embed and Reconstruct
// give the same bits as core.Pipeline does natively.
//
// The guest gets no file system, network, environment variables or
// arguments. Its standard input is empty and its standard output is
// discarded. It reads the host's real clocks, which Go's runtime needs, and
// a fixed random source, so every instance starts in the same state. Sleep
// calls return at once, so a guest that sleeps spins on the clock and the
// call's context can still stop it.
//
// Each call takes a context. When the context is cancelled or its deadline
// passes, wazero stops the guest, the call returns the context's error, and
// the pool replaces that instance. That check slows the guest down several
// times; WithCloseOnContextDone(false) trades it for speed.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// stderrBytes is how much of a call's standard error an instance keeps,
// enough for the first paragraph of a Go crash report.
const stderrBytes = 1 << 10

// Plugin is a compiled m3ae plugin and its pool of instances. It is safe
// for concurrent use.
type Plugin struct {
	runtime      wazero.Runtime
	compiled     wazero.CompiledModule
	moduleConfig wazero.ModuleConfig
	ownedCache   wazero.CompilationCache // created from a cache directory, closed by Close
	logger       *slog.Logger

	// slots has one token per pool slot, which a call holds while it runs.
	slots chan struct{}
	// closing is cancelled by Close, which stops running calls and wakes
	// calls waiting for a slot.
	closing       context.Context
	cancelClosing context.CancelFunc

	mu sync.Mutex
	// idle holds the instances that no call is using, most recently used
	// last. A call takes the last one, so a lightly loaded pool reuses warm
	// instances and creates the others only when calls overlap.
	idle     []*instance
	closed   bool
	inFlight sync.WaitGroup // calls between acquire and release
}

// Open compiles the plugin module wasm and starts the first instance of
// its pool, which checks the module's exports and ABI version. ctx bounds
// compilation and instantiation only.
func Open(ctx context.Context, wasm []byte, opts ...Option) (*Plugin, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("m3ae plugin: open: %w", err)
	}

	runtimeConfig := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(o.closeOnContextDone).
		WithMemoryLimitPages(uint32(o.memoryLimitPages))
	p := &Plugin{logger: o.logger}
	switch {
	case o.cache != nil:
		runtimeConfig = runtimeConfig.WithCompilationCache(o.cache)
	case o.cacheDir != "":
		cache, err := wazero.NewCompilationCacheWithDir(o.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("m3ae plugin: open: compilation cache directory %s: %w", o.cacheDir, err)
		}
		p.ownedCache = cache
		runtimeConfig = runtimeConfig.WithCompilationCache(cache)
	}
	p.runtime = wazero.NewRuntimeWithConfig(ctx, runtimeConfig)
	p.closing, p.cancelClosing = context.WithCancel(context.Background())

	if err := p.compile(ctx, wasm); err != nil {
		_ = p.Close(ctx)
		return nil, fmt.Errorf("m3ae plugin: open: %w", err)
	}
	first, err := p.newInstance(ctx)
	if err == nil {
		err = checkVersion(ctx, first)
	}
	if err != nil {
		_ = p.Close(ctx)
		return nil, fmt.Errorf("m3ae plugin: open: %w", err)
	}

	p.slots = make(chan struct{}, o.poolSize)
	p.idle = []*instance{first}
	return p, nil
}

// compile instantiates WASI, compiles wasm and checks its imports and
// exports.
func (p *Plugin) compile(ctx context.Context, wasm []byte) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.runtime); err != nil {
		return fmt.Errorf("instantiate WASI: %w", err)
	}
	compiled, err := p.runtime.CompileModule(ctx, wasm)
	if err != nil {
		return fmt.Errorf("compile module: %w", err)
	}
	p.compiled = compiled
	for _, fn := range compiled.ImportedFunctions() {
		module, name, _ := fn.Import()
		if module != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("module imports %s.%s, but the host provides only %s", module, name, wasi_snapshot_preview1.ModuleName)
		}
	}
	exports := compiled.ExportedFunctions()
	if _, ok := exports["_initialize"]; !ok {
		return errors.New("module does not export _initialize: build the plugin with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared")
	}
	for _, name := range exportNames {
		if _, ok := exports[name]; !ok {
			return fmt.Errorf("module does not export %s, so it is not an m3ae plugin", name)
		}
	}

	// The zero ModuleConfig grants no arguments, environment variables,
	// preopened directories or sockets, reads stdin as empty and discards
	// stdout. WithName("") lets the pool instantiate the module many times.
	p.moduleConfig = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithSysNanotime().
		WithSysWalltime()
	return nil
}

func checkVersion(ctx context.Context, inst *instance) error {
	results, err := inst.call(ctx, "m3ae_abi_version", inst.abiVersion)
	if err != nil {
		return err
	}
	if version := uint32(results[0]); version != abi.Version {
		return fmt.Errorf("module speaks ABI version %d, but this host speaks version %d: build the plugin and the host from the same release",
			version, abi.Version)
	}
	return nil
}

// newInstance instantiates the module, running _initialize.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	start := time.Now()
	stderr := &stderrWriter{max: stderrBytes}
	module, err := p.runtime.InstantiateModule(ctx, p.compiled, p.moduleConfig.WithStderr(stderr))
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %w", ErrTrap, err)
	}
	inst, err := newInstance(module, stderr)
	if err != nil {
		_ = module.Close(ctx)
		return nil, err
	}
	p.logger.Debug("m3ae plugin instance created", "duration", time.Since(start))
	return inst, nil
}

// acquire takes a pool slot, waiting until one is free, and returns the
// most recently used idle instance, or nil when none is idle. Every
// successful acquire must be paired with release.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.inFlight.Add(1)
	p.mu.Unlock()

	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		p.inFlight.Done()
		return nil, ctx.Err()
	case <-p.closing.Done():
		p.inFlight.Done()
		return nil, ErrClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var inst *instance
	if n := len(p.idle); n > 0 {
		inst = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	return inst, nil
}

// release returns a slot and its instance, or nil for an instance that was
// discarded.
func (p *Plugin) release(inst *instance) {
	if inst != nil {
		p.mu.Lock()
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
	}
	<-p.slots
	p.inFlight.Done()
}

// run runs call on an instance that has m loaded, creating the instance
// and loading m first where needed. A failure other than a GuestError
// discards the instance.
func (p *Plugin) run(ctx context.Context, m *Model, op string, call func(context.Context, *instance, int32) error) error {
	if m.closed.Load() {
		return fmt.Errorf("m3ae plugin: %s: %w", op, ErrClosed)
	}
	inst, err := p.acquire(ctx)
	if err != nil {
		return fmt.Errorf("m3ae plugin: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		// Both a slot and ctx.Done were ready, and select chose the slot.
		p.release(inst)
		return fmt.Errorf("m3ae plugin: %s: %w", op, err)
	}

	// The call stops when ctx is done or when Close cancels p.closing.
	callCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.closing, cancel)
	defer stop()
	defer cancel()

	inst, err = p.runOn(callCtx, inst, m, op, call)
	p.release(inst)
	if err == nil {
		return nil
	}
	var guestErr *GuestError
	switch {
	case errors.As(err, &guestErr):
		return err
	case p.closing.Err() != nil:
		return fmt.Errorf("m3ae plugin: %s: %w", op, ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("m3ae plugin: %s: %w", op, ctx.Err())
	default:
		return fmt.Errorf("m3ae plugin: %s: %w", op, err)
	}
}

// runOn prepares inst and runs call on it. It returns the instance to put
// back in the pool: inst, a new instance, or nil after a failure that left
// no usable instance.
func (p *Plugin) runOn(ctx context.Context, inst *instance, m *Model, op string, call func(context.Context, *instance, int32) error) (*instance, error) {
	if inst == nil {
		var err error
		if inst, err = p.newInstance(ctx); err != nil {
			p.logger.Warn("m3ae plugin instance could not be created", "op", op, "error", err)
			return nil, err
		}
	}
	inst.stderr.reset()
	err := p.sweep(ctx, inst)
	if err == nil {
		err = p.ensureLoaded(ctx, inst, m)
	}
	if err == nil {
		err = call(ctx, inst, inst.handles[m])
	}
	var guestErr *GuestError
	if err != nil && !errors.As(err, &guestErr) {
		level := slog.LevelWarn
		if p.closing.Err() != nil {
			level = slog.LevelDebug // Close stopped the call on purpose
		}
		p.logger.Log(ctx, level, "m3ae plugin instance discarded", "op", op, "error", err)
		_ = inst.module.Close(context.Background())
		return nil, err
	}
	return inst, err
}

// sweep releases the handles of closed models.
func (p *Plugin) sweep(ctx context.Context, inst *instance) error {
	for model, handle := range inst.handles {
		if !model.closed.Load() {
			continue
		}
		delete(inst.handles, model)
		if err := inst.releaseModel(ctx, handle); err != nil {
			return err
		}
	}
	return nil
}

// ensureLoaded loads m into inst unless it is loaded already.
func (p *Plugin) ensureLoaded(ctx context.Context, inst *instance, m *Model) error {
	if _, ok := inst.handles[m]; ok {
		return nil
	}
	handle, err := inst.loadModel(ctx, m.data)
	if err != nil {
		return err
	}
	inst.handles[m] = handle
	return nil
}

// Close stops running calls, waits until they return or ctx is done, and
// closes every instance. Later calls return ErrClosed. Closing twice is a
// no-op.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancelClosing()

	drained := make(chan struct{})
	go func() {
		p.inFlight.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
	}

	err := p.runtime.Close(ctx)
	if p.ownedCache != nil {
		err = errors.Join(err, p.ownedCache.Close(ctx))
	}
	if err != nil {
		return fmt.Errorf("m3ae plugin: close: %w", err)
	}
	return nil
}
