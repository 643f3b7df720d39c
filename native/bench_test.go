package native

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// benchmarkExamples returns n paired examples with normal(0, 1) pixels and
// captions of 3 to Nt random ids, the batch testdata/torchtrain/step.py
// draws for its PyTorch peer.
func benchmarkExamples(cfg core.Config, n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 0))
	examples := make([]Example, n)
	for i := range examples {
		image := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
		for j := range image {
			image[j] = float32(rng.NormFloat64())
		}
		text := make([]int32, cfg.TextLength)
		for j := range 3 + rng.IntN(cfg.TextLength-2) {
			text[j] = int32(1000 + rng.IntN(cfg.VocabSize-1000))
		}
		examples[i] = Example{Image: image, Text: text}
	}
	return examples
}

// BenchmarkTrainStepTiny times one training step of the tiny preset on 64
// paired examples, a new random batch each step, with the first
// (compiling) step excluded.
func BenchmarkTrainStepTiny(b *testing.B) {
	cfg, err := core.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	const batchSize = 64
	trainer, err := NewTrainer(testBackend(b), initModel(b, cfg, 1), DefaultTrainConfig(batchSize))
	if err != nil {
		b.Fatal(err)
	}
	batches := make([][]Example, 4)
	for i := range batches {
		batches[i] = benchmarkExamples(cfg, batchSize, uint64(i))
	}
	for _, batch := range batches { // compiles every padded count of text rows that the batches need
		if _, _, err := trainer.Step(batch); err != nil {
			b.Fatal(err)
		}
	}
	step := 0
	cpuStart := processCPUTime()
	for b.Loop() {
		if _, _, err := trainer.Step(batches[step%len(batches)]); err != nil {
			b.Fatal(err)
		}
		step++
	}
	// CPU time per step is steadier than wall time on a shared machine.
	b.ReportMetric(float64((processCPUTime()-cpuStart).Milliseconds())/float64(step), "cpu-ms/op")
}

// processCPUTime returns the user plus system CPU time of this process.
func processCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
