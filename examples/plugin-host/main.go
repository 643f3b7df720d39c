// Command plugin-host loads the m3ae WebAssembly plugin with the wazero host
// library (package wasm/host). It embeds an image, a caption and both
// together on a pool of two instances. Then it prints the embeddings, their
// cosine similarities and the model's guesses for the caption's hidden words.
//
// Build the plugin first (make wasm writes build/m3ae-plugin.wasm), then:
//
//	go run ./examples/plugin-host -model model.safetensors -image photo.jpg -text "a red apple"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/host"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plugin-host:", err)
		os.Exit(1)
	}
}

// config holds the command-line flags.
type config struct {
	pluginPath string
	modelPath  string
	imagePath  string
	text       string
	cacheDir   string
	timeout    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	flags := flag.NewFlagSet("plugin-host", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&c.pluginPath, "plugin", "build/m3ae-plugin.wasm", "plugin module (make wasm builds build/m3ae-plugin.wasm)")
	flags.StringVar(&c.modelPath, "model", "", "model file (required)")
	flags.StringVar(&c.imagePath, "image", "", "PNG or JPEG file to embed (required)")
	flags.StringVar(&c.text, "text", "", "caption to embed (required)")
	flags.StringVar(&c.cacheDir, "cache", "", "directory that keeps compiled machine code between runs; empty compiles on every run")
	flags.DurationVar(&c.timeout, "timeout", time.Minute, "limit of each plugin call")
	if err := flags.Parse(args); err != nil {
		return config{}, err
	}
	switch {
	case c.modelPath == "":
		return config{}, errors.New("-model is required: pass a model file")
	case c.imagePath == "":
		return config{}, errors.New("-image is required: pass a PNG or JPEG file")
	case strings.TrimSpace(c.text) == "":
		return config{}, errors.New("-text is required: pass a caption")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	wasm, err := os.ReadFile(c.pluginPath)
	if err != nil {
		return fmt.Errorf("read the plugin: %w (build it with make wasm)", err)
	}
	modelData, err := os.ReadFile(c.modelPath)
	if err != nil {
		return fmt.Errorf("read the model: %w", err)
	}
	imageData, err := os.ReadFile(c.imagePath)
	if err != nil {
		return fmt.Errorf("read the image: %w", err)
	}

	// Open the plugin: two instances, so two calls run at once.
	opts := []host.Option{host.WithPoolSize(2)}
	if c.cacheDir != "" {
		opts = append(opts, host.WithCompilationCacheDir(c.cacheDir))
	}
	start := time.Now()
	plugin, err := host.Open(ctx, wasm, opts...)
	if err != nil {
		return err
	}
	defer plugin.Close(ctx)
	fmt.Fprintf(stdout, "plugin: %s, opened in %v\n", c.pluginPath, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	model, err := plugin.LoadModel(ctx, modelData)
	if err != nil {
		return err
	}
	cfg := model.Config()
	fmt.Fprintf(stdout, "model: %s, image %d, patch %d, text %d, width %d, depth %d, loaded in %v\n",
		c.modelPath, cfg.ImageSize, cfg.PatchSize, cfg.TextLength, cfg.EmbedDim, cfg.Depth,
		time.Since(start).Round(time.Millisecond))

	embeddings, err := embedAll(ctx, model, c, imageData)
	if err != nil {
		return err
	}
	for _, e := range embeddings {
		fmt.Fprintf(stdout, "%-6s embedding: %s\n", e.name, formatVector(e.vector))
	}
	fmt.Fprintf(stdout, "cosine(image, text) = %.4f\n", cosine(embeddings[0].vector, embeddings[1].vector))
	fmt.Fprintf(stdout, "cosine(image, both) = %.4f\n", cosine(embeddings[0].vector, embeddings[2].vector))
	fmt.Fprintf(stdout, "cosine(text, both)  = %.4f\n", cosine(embeddings[1].vector, embeddings[2].vector))

	return printGuesses(ctx, model, c, imageData, stdout)
}

// embedding is one named result of embedAll.
type embedding struct {
	name   string
	vector []float32
}

// embedAll embeds the image, the caption and both, concurrently.
func embedAll(ctx context.Context, model *host.Model, c config, imageData []byte) ([]embedding, error) {
	image := host.Image{Encoded: imageData}
	requests := []host.EmbedRequest{{Image: image}, {Text: c.text}, {Image: image, Text: c.text}}
	out := []embedding{{name: "image"}, {name: "text"}, {name: "both"}}
	errs := make([]error, len(requests))
	var wg sync.WaitGroup
	for i, req := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			callCtx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			out[i].vector, errs[i] = model.Embed(callCtx, req)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// printGuesses hides half of the caption's words and prints the model's
// best three guesses for each.
func printGuesses(ctx context.Context, model *host.Model, c config, imageData []byte, stdout io.Writer) error {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	result, err := model.Reconstruct(callCtx, host.ReconstructRequest{
		Image: host.Image{Encoded: imageData},
		Text:  c.text,
		Options: core.ReconstructOptions{
			ImageMaskRatio: core.DefaultMaskRatio,
			TextMaskRatio:  0.5,
			Seed:           1,
			TopK:           3,
		},
	})
	if err != nil {
		return err
	}
	if result.Text == nil {
		fmt.Fprintln(stdout, "tokens: none (the caption has no words in the vocabulary)")
		return nil
	}
	fmt.Fprintf(stdout, "tokens: %s\n", strings.Join(result.Text.Tokens, " "))
	for _, p := range result.Text.Predictions {
		guesses := make([]string, len(p.Candidates))
		for i, candidate := range p.Candidates {
			guesses[i] = fmt.Sprintf("%s %.2g", candidate.Token, candidate.Prob)
		}
		fmt.Fprintf(stdout, "hidden %d %q: %s\n", p.Position, p.Original, strings.Join(guesses, ", "))
	}
	return nil
}

// formatVector prints the length, the L2 norm and the first four values.
func formatVector(v []float32) string {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	head := make([]string, 0, 4)
	for _, x := range v[:min(4, len(v))] {
		head = append(head, fmt.Sprintf("%.6g", x))
	}
	return fmt.Sprintf("D=%d norm=%.4f [%s ...]", len(v), math.Sqrt(sum), strings.Join(head, " "))
}

func cosine(a, b []float32) float64 {
	var dot, normA, normB float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		normA += float64(a[i]) * float64(a[i])
		normB += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(normA*normB)
}
