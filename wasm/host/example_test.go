package host_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

func Example() {
	ctx := context.Background()
	wasm, err := os.ReadFile(pluginPath) // build/m3ae-plugin.wasm after make wasm
	if err != nil {
		log.Fatal(err)
	}
	plugin, err := host.Open(ctx, wasm,
		host.WithPoolSize(2),               // two calls at once
		host.WithMemoryLimitBytes(256<<20), // per instance
		host.WithCompilationCache(cache),   // or WithCompilationCacheDir
	)
	if err != nil {
		log.Fatal(err)
	}
	defer plugin.Close(ctx)

	model, err := plugin.LoadModel(ctx, microModel) // the bytes of a model file
	if err != nil {
		log.Fatal(err)
	}

	// Each call gets its own deadline.
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	embedding, err := model.Embed(callCtx, host.EmbedRequest{Text: "a red apple", Pooling: core.PoolMean})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("embedding width:", len(embedding))

	result, err := model.Reconstruct(callCtx, host.ReconstructRequest{
		Text:    "a red apple",
		Options: core.ReconstructOptions{TextMaskRatio: 0.5, Seed: 1, TopK: 3},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tokens:", result.Text.Tokens)
	fmt.Println("hidden:", result.Text.Hidden)
	// Output:
	// embedding width: 32
	// tokens: [a red apple]
	// hidden: [true true false]
}
