// Command kernelbench times the core's dense-layer kernels, the matmuls of
// the model's forward pass, for the kernels group of m3ae-bench. The same
// source builds natively and for GOOS=wasip1 GOARCH=wasm, so every target
// runs the same timing loop:
//
//	kernelbench -min-time 300ms 21x128x384 81x128x512
//
// Each argument is a shape ROWSxINxOUT: ROWS input rows through a layer of
// IN inputs and OUT outputs. For every shape and weight type it prints one
// JSON object on its own line (see result).
//
// The core's matmul splits large products across GOMAXPROCS goroutines
// natively, so GOMAXPROCS=1 times one core. With GOMAXPROCS=1, a call's
// time is the CPU time of the thread that runs it where the platform has
// such a clock (Linux), so other processes on a shared machine do not
// lengthen it. Otherwise, and under wasip1, it is the monotonic clock,
// which a wasm host may back with its own thread's CPU time.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/threadcpu"
	"github.com/m3ae-edge/m3ae-edge/core"
)

// result is one output line.
type result struct {
	Shape   string `json:"shape"`
	Rows    int    `json:"rows"`
	In      int    `json:"in"`
	Out     int    `json:"out"`
	Weights string `json:"weights"`
	// Kernel names the matmul kernel, such as avx2 or scalar, and Threads
	// is GOMAXPROCS, the most goroutines a call splits into.
	Kernel  string `json:"kernel"`
	Threads int    `json:"threads"`
	// Clock is thread-cpu or monotonic: what the times below measure.
	Clock string `json:"clock"`
	// Calls is the number of timed calls, after one untimed warm-up call.
	Calls int `json:"calls"`
	// MedianSeconds and MinSeconds are the median and fastest call.
	MedianSeconds float64 `json:"median_s"`
	MinSeconds    float64 `json:"min_s"`
	// GFLOPS is 2*rows*in*out / MedianSeconds / 1e9.
	GFLOPS float64 `json:"gflops"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kernelbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("kernelbench", flag.ContinueOnError)
	minTime := flags.Duration("min-time", 300*time.Millisecond, "minimum total time of the timed calls of each shape and weight type")
	minCalls := flags.Int("min-calls", 3, "minimum number of timed calls of each shape and weight type")
	weights := flags.String("weights", "float32,int8", "comma-separated weight types: float32, int8")
	clock := flags.String("clock", "auto", "auto: time calls by the CPU time of their thread where the platform has that clock and GOMAXPROCS is 1, else by the monotonic clock; monotonic: always the monotonic clock")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *minCalls < 1 {
		return fmt.Errorf("-min-calls %d: want 1 or more", *minCalls)
	}
	if flags.NArg() == 0 {
		return errors.New("no shape: pass one or more ROWSxINxOUT arguments, such as 21x128x384")
	}
	if *clock != "auto" && *clock != "monotonic" {
		return fmt.Errorf("-clock %q: use auto or monotonic", *clock)
	}
	types := strings.Split(*weights, ",")
	for _, w := range types {
		if w != "float32" && w != "int8" {
			return fmt.Errorf("-weights %q: want float32, int8 or both, comma-separated", *weights)
		}
	}

	encoder := json.NewEncoder(stdout)
	for _, shape := range flags.Args() {
		rows, in, out, err := parseShape(shape)
		if err != nil {
			return err
		}
		for _, w := range types {
			r, err := timeKernel(rows, in, out, w == "int8", *clock == "auto", *minTime, *minCalls)
			if err != nil {
				return err
			}
			r.Shape, r.Weights = shape, w
			if err := encoder.Encode(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseShape reads ROWSxINxOUT.
func parseShape(shape string) (rows, in, out int, err error) {
	parts := strings.Split(shape, "x")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("shape %q: want ROWSxINxOUT, such as 21x128x384", shape)
	}
	dims := make([]int, 3)
	for i, p := range parts {
		if dims[i], err = strconv.Atoi(p); err != nil || dims[i] < 1 {
			return 0, 0, 0, fmt.Errorf("shape %q: %q is not a positive integer", shape, p)
		}
	}
	return dims[0], dims[1], dims[2], nil
}

// timeKernel runs one warm-up call, then timed calls until both minCalls
// and minTime are reached. With threadClock and GOMAXPROCS=1 it times them
// by the CPU time of this goroutine's thread where the platform has that
// clock. A call that splits across goroutines would hide their time from
// that clock.
func timeKernel(rows, in, out int, quantized, threadClock bool, minTime time.Duration, minCalls int) (result, error) {
	b, err := core.NewDenseBenchmark(rows, in, out, quantized, 1)
	if err != nil {
		return result{}, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clockName, now := "monotonic", monotonicSinceStart()
	if _, ok := threadcpu.Now(); ok && threadClock && runtime.GOMAXPROCS(0) == 1 {
		clockName = "thread-cpu"
		now = func() time.Duration {
			d, _ := threadcpu.Now()
			return d
		}
	}

	b.Run()
	var calls []float64
	var total time.Duration
	for len(calls) < minCalls || total < minTime {
		start := now()
		b.Run()
		elapsed := now() - start
		total += elapsed
		calls = append(calls, elapsed.Seconds())
	}
	slices.Sort(calls)
	median := calls[len(calls)/2]
	if len(calls)%2 == 0 {
		median = (calls[len(calls)/2-1] + calls[len(calls)/2]) / 2
	}
	return result{
		Rows: rows, In: in, Out: out, Kernel: b.Kernel(), Threads: runtime.GOMAXPROCS(0),
		Clock: clockName, Calls: len(calls),
		MedianSeconds: median, MinSeconds: calls[0],
		GFLOPS: b.FLOPs() / median / 1e9,
	}, nil
}

// monotonicSinceStart returns a clock that reads the monotonic time elapsed
// since it was made.
func monotonicSinceStart() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}
