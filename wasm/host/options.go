package host

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/tetratelabs/wazero"
)

// wasmPageSize is the size of one WebAssembly memory page, 64 KiB.
const wasmPageSize = 64 << 10

// maxMemoryPages is the maximum number of pages of a wasm32 memory: 65536
// pages are 4 GiB.
const maxMemoryPages = 65536

// Option configures Open. Options are applied in order, so a later option
// overrides an earlier one of the same kind.
type Option func(*options)

type options struct {
	poolSize           int
	closeOnContextDone bool
	memoryLimitPages   uint64
	cacheDir           string
	cache              wazero.CompilationCache
	logger             *slog.Logger
}

func defaultOptions() options {
	return options{
		poolSize:           runtime.GOMAXPROCS(0),
		closeOnContextDone: true,
		memoryLimitPages:   maxMemoryPages,
		logger:             slog.New(slog.DiscardHandler),
	}
}

func (o *options) validate() error {
	if o.poolSize < 1 {
		return fmt.Errorf("pool size %d is invalid: use 1 or more", o.poolSize)
	}
	if o.memoryLimitPages < 1 || o.memoryLimitPages > maxMemoryPages {
		return fmt.Errorf("memory limit of %d pages (%d bytes) is invalid: use 1 to %d pages of %d bytes",
			o.memoryLimitPages, o.memoryLimitPages*wasmPageSize, maxMemoryPages, wasmPageSize)
	}
	if o.cache != nil && o.cacheDir != "" {
		return fmt.Errorf("both a compilation cache and a cache directory (%s) are set: use one", o.cacheDir)
	}
	return nil
}

// WithPoolSize sets the maximum number of guest instances that run calls at
// once. Go's
// wasm code is single-threaded, so each concurrent call needs its own
// instance, and each instance holds its own copy of every loaded model.
// Instances are created when calls need them. The default is
// runtime.GOMAXPROCS(0).
func WithPoolSize(n int) Option {
	return func(o *options) { o.poolSize = n }
}

// WithCloseOnContextDone sets whether a call's context stops the guest
// while it runs (the default, true). wazero v1.12 then calls a check at the
// head of every loop of the guest's code, and Go's wasm code runs each
// function body inside a loop, so the check runs on every call and every
// iteration. It made the plugin's calls 3 to 5 times slower on the micro
// and tiny models (measured with make bench-wasm on a 2-core x86-64
// machine). With false, calls run at full speed, the context is checked
// only before a call starts, a running call always finishes, and Close
// waits for it until its own context is done.
func WithCloseOnContextDone(enabled bool) Option {
	return func(o *options) { o.closeOnContextDone = enabled }
}

// WithMemoryLimitPages caps each instance's linear memory at pages pages of
// 64 KiB, from 1 to 65536 (4 GiB, the default). A call that needs more
// memory traps, and the pool replaces that instance.
func WithMemoryLimitPages(pages uint32) Option {
	return func(o *options) { o.memoryLimitPages = uint64(pages) }
}

// WithMemoryLimitBytes is WithMemoryLimitPages for a size in bytes, rounded
// down to whole 64 KiB pages.
func WithMemoryLimitBytes(bytes uint64) Option {
	return func(o *options) { o.memoryLimitPages = bytes / wasmPageSize }
}

// WithCompilationCacheDir keeps compiled machine code in dir, created if
// missing, so a later Open of the same module skips compilation. The
// Plugin closes the cache in Close.
func WithCompilationCacheDir(dir string) Option {
	return func(o *options) { o.cacheDir = dir }
}

// WithCompilationCache uses cache, which the caller may share between
// Plugins and must close after the last of them. See
// wazero.NewCompilationCache.
func WithCompilationCache(cache wazero.CompilationCache) Option {
	return func(o *options) { o.cache = cache }
}

// WithLogger logs instance creation (debug) and every instance the pool
// discards after a trap, an exit or a cancelled call (warn, or debug when
// Close stopped the call). The default discards every record.
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		o.logger = logger
	}
}
