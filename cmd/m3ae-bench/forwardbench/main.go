// Command forwardbench times the core's forward pass natively on one
// preprocessed example that cmd/m3ae-bench wrote to a folder (see package
// forwardinput). With it, the onnx-node group times a build of the core
// other than its own, such as one with the scalar kernels:
//
//	forwardbench -dir DIR -op embed|reconstruct -warmup N -runs N
//
// embed times core.Model.Embed with CLS pooling and reconstruct
// core.Model.Reconstruct with the folder's masks. It prints one JSON
// object: the matmul kernel it ran, the milliseconds of each timed call
// and the last call's output (the CLS embedding, or the encoder output of
// Reconstruct) as base64 of little-endian float32.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/forwardinput"
	"github.com/m3ae-edge/m3ae-edge/core"
)

// report is the JSON object that forwardbench prints.
type report struct {
	Kernel string    `json:"kernel"`
	Millis []float64 `json:"millis"`
	Output string    `json:"output"`
}

func main() {
	dir := flag.String("dir", "", "folder with the model file and the example, as cmd/m3ae-bench writes it")
	op := flag.String("op", "embed", "embed or reconstruct")
	warmup := flag.Int("warmup", 1, "untimed calls before the timed ones")
	runs := flag.Int("runs", 10, "timed calls")
	flag.Parse()
	if err := run(*dir, *op, *warmup, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "forwardbench:", err)
		os.Exit(1)
	}
}

func run(dir, op string, warmup, runs int) error {
	if dir == "" {
		return errors.New("-dir is empty: pass the folder that cmd/m3ae-bench wrote")
	}
	if warmup < 0 || runs < 1 {
		return fmt.Errorf("-warmup %d and -runs %d: want at least 0 warm-up calls and 1 timed call", warmup, runs)
	}
	data, err := os.ReadFile(filepath.Join(dir, forwardinput.ModelFile))
	if err != nil {
		return err
	}
	mf, err := core.ReadModelFile(data)
	if err != nil {
		return err
	}
	model, err := core.NewModel(mf)
	if err != nil {
		return err
	}
	in, masks, err := forwardinput.ReadDir(dir)
	if err != nil {
		return err
	}
	var call func() ([]float32, error)
	switch op {
	case "embed":
		call = func() ([]float32, error) { return model.Embed(in, core.PoolCLS) }
	case "reconstruct":
		call = func() ([]float32, error) {
			r, err := model.Reconstruct(in, masks)
			if err != nil {
				return nil, err
			}
			return r.Encoded, nil
		}
	default:
		return fmt.Errorf("-op %q: want embed or reconstruct", op)
	}

	var output []float32
	for range warmup {
		if output, err = call(); err != nil {
			return err
		}
	}
	r := report{Millis: make([]float64, runs)}
	for i := range r.Millis {
		start := time.Now()
		if output, err = call(); err != nil {
			return err
		}
		r.Millis[i] = float64(time.Since(start).Nanoseconds()) / 1e6
	}
	r.Output = base64.StdEncoding.EncodeToString(forwardinput.Float32Bytes(output))
	bench, err := core.NewDenseBenchmark(1, 1, 1, false, 0)
	if err != nil {
		return err
	}
	r.Kernel = bench.Kernel()
	return json.NewEncoder(os.Stdout).Encode(r)
}
