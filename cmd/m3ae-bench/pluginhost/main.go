// Command pluginhost is the smallest host of the m3ae WebAssembly plugin
// that does what `m3ae-edge embed` or `m3ae-edge reconstruct` does: it
// opens the plugin with one instance, loads a model file and runs one call
// on an image and a caption. m3ae-bench's memory group measures its peak
// resident memory beside the CLI's.
//
//	pluginhost -plugin build/m3ae-plugin.wasm -model model.safetensors \
//	    -image photo.png -text "a red apple" -op reconstruct
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pluginhost:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("pluginhost", flag.ContinueOnError)
	pluginPath := flags.String("plugin", "build/m3ae-plugin.wasm", "plugin module (make wasm builds build/m3ae-plugin.wasm)")
	modelPath := flags.String("model", "", "model file (required)")
	imagePath := flags.String("image", "", "PNG or JPEG file (required)")
	text := flags.String("text", "", "caption (required)")
	op := flags.String("op", "embed", "call to run: embed or reconstruct")
	cacheDir := flags.String("cache", "", "directory that keeps compiled machine code between runs; empty compiles on every run")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" || *imagePath == "" || *text == "" {
		return errors.New("-model, -image and -text are required")
	}
	if *op != "embed" && *op != "reconstruct" {
		return fmt.Errorf("-op %q: use embed or reconstruct", *op)
	}
	wasm, err := os.ReadFile(*pluginPath)
	if err != nil {
		return fmt.Errorf("read the plugin: %w", err)
	}
	modelData, err := os.ReadFile(*modelPath)
	if err != nil {
		return fmt.Errorf("read the model: %w", err)
	}
	imageData, err := os.ReadFile(*imagePath)
	if err != nil {
		return fmt.Errorf("read the image: %w", err)
	}

	// One instance, as the CLI runs one model. Calls run to completion
	// without interruption checks, which change their speed but not the
	// memory they use.
	opts := []host.Option{host.WithPoolSize(1), host.WithCloseOnContextDone(false)}
	if *cacheDir != "" {
		opts = append(opts, host.WithCompilationCacheDir(*cacheDir))
	}
	plugin, err := host.Open(ctx, wasm, opts...)
	if err != nil {
		return err
	}
	defer plugin.Close(ctx)
	model, err := plugin.LoadModel(ctx, modelData)
	if err != nil {
		return err
	}

	image := host.Image{Encoded: imageData}
	if *op == "embed" {
		embedding, err := model.Embed(ctx, host.EmbedRequest{Image: image, Text: *text})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "embedding: %d values\n", len(embedding))
		return err
	}
	options := core.DefaultReconstructOptions()
	result, err := model.Reconstruct(ctx, host.ReconstructRequest{Image: image, Text: *text, Options: options})
	if err != nil {
		return err
	}
	predictions := 0
	if result.Text != nil {
		predictions = len(result.Text.Predictions)
	}
	_, err = fmt.Fprintf(stdout, "reconstruction: %d hidden tokens predicted\n", predictions)
	return err
}
