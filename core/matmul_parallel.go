//go:build !js && !wasip1

package core

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minShareMultiplyAdds is the least work, in multiply-adds, that matMul
// hands to one goroutine: a product of rows*in*out multiply-adds runs on at
// most rows*in*out/minShareMultiplyAdds goroutines, so products under twice
// this run on the caller alone. Splitting costs a fixed delay, the wake-up
// of a parked pool goroutine (0.7 to 11 µs, median 6) and, on a busy
// machine, the wait for a free CPU. Measured with Go 1.26.8 and the AVX2
// kernel on a 2-vCPU Xeon VM shared with other jobs, time on 2 goroutines
// against 1:
//
//	multiply-adds   2M     4M     8M     12M    24M    62M
//	time            1.00   1.12   0.95   0.79   0.65   0.55
//
// So a share of 4M multiply-adds (about 150 µs of one core) keeps the
// split a gain there. NOTE: a machine with idle cores gains from smaller
// shares too, which this constant does not exploit.
const minShareMultiplyAdds = 1 << 22

// Test hooks: when above 0, minShare replaces minShareMultiplyAdds and
// parallelWorkers replaces GOMAXPROCS as the most goroutines.
var (
	minShare        = minShareMultiplyAdds
	parallelWorkers = 0
)

// matMulWorkers returns how many goroutines share a product of rows*in*out
// multiply-adds: one per minShare multiply-adds, at most GOMAXPROCS.
func matMulWorkers(rows, in, out int) int {
	workers := runtime.GOMAXPROCS(0)
	if parallelWorkers > 0 {
		workers = parallelWorkers
	}
	if minShare > 0 {
		workers = min(workers, rows*in*out/minShare)
	}
	return max(workers, 1)
}

// splitState waits for the shares of one split matMul call.
type splitState struct {
	done sync.WaitGroup
}

// matMulShare is the panel range [from, to) of one matMul call that a pool
// goroutine computes.
type matMulShare struct {
	dst, x          []float32
	d               *dense
	rows            int
	from, to        int
	s               *matMulScratch
	worker, workers int
}

// matMulPool is the goroutines that compute matMul shares. They start on
// first need, one per share that a call hands out beyond its own, and then
// wait for work for the rest of the process. Shares pass by value through
// the channel, so splitting a call allocates nothing.
var matMulPool struct {
	mu      sync.Mutex
	started atomic.Int32
	shares  chan matMulShare
}

func init() {
	matMulPool.shares = make(chan matMulShare, 64)
}

// ensurePoolWorkers starts pool goroutines until n are running.
func ensurePoolWorkers(n int) {
	if int(matMulPool.started.Load()) >= n {
		return
	}
	matMulPool.mu.Lock()
	defer matMulPool.mu.Unlock()
	for int(matMulPool.started.Load()) < n {
		go runPoolWorker()
		matMulPool.started.Add(1)
	}
}

func runPoolWorker() {
	for share := range matMulPool.shares {
		matMulPanels(share.dst, share.x, share.d, share.rows, share.from, share.to, share.s, share.worker, share.workers)
		share.s.split.done.Done()
	}
}

// run computes matMul on workers goroutines, the caller and workers-1 from
// the pool. Worker w takes panels [w*panels/workers, (w+1)*panels/workers),
// and worker 0 is the caller.
func (st *splitState) run(dst, x []float32, d *dense, rows int, s *matMulScratch, workers int) {
	panels := len(d.bias)
	if d.q != nil {
		// Grow the tiles now, so the goroutines only read s.
		s.tile(workers-1, workers, 2*d.in)
	}
	ensurePoolWorkers(workers - 1)
	st.done.Add(workers - 1)
	for w := 1; w < workers; w++ {
		matMulPool.shares <- matMulShare{
			dst: dst, x: x, d: d, rows: rows,
			from: w * panels / workers, to: (w + 1) * panels / workers,
			s: s, worker: w, workers: workers,
		}
	}
	matMulPanels(dst, x, d, rows, 0, panels/workers, s, 0, workers)
	st.done.Wait()
}
