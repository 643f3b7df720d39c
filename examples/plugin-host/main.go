// Command plugin-host loads the m3ae WebAssembly plugin with the wazero host
// library (package wasm/host). It embeds an image, a caption or both, and
// with both also the pair together, on a pool of two instances. Then it
// prints the embeddings, their cosine similarities and, with a caption, the
// model's guesses for the caption's hidden words.
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
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
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

// parseFlags returns the configuration in args. On -help or -h it writes
// the usage to stdout and returns flag.ErrHelp.
func parseFlags(args []string, stdout io.Writer) (config, error) {
	var c config
	flags := flag.NewFlagSet("plugin-host", flag.ContinueOnError)
	flags.StringVar(&c.pluginPath, "plugin", "build/m3ae-plugin.wasm", "plugin module (make wasm builds build/m3ae-plugin.wasm)")
	flags.StringVar(&c.modelPath, "model", "", "model file (required)")
	flags.StringVar(&c.imagePath, "image", "", "PNG or JPEG file to embed; pass -image, -text or both")
	flags.StringVar(&c.text, "text", "", "caption to embed; pass -image, -text or both")
	flags.StringVar(&c.cacheDir, "cache", "", "directory that keeps compiled machine code between runs; empty compiles on every run")
	flags.DurationVar(&c.timeout, "timeout", time.Minute, "time limit of each plugin call, a positive duration such as 30s")

	// The flag package would print each parse error and the usage itself,
	// so main's report would repeat the error.
	flags.SetOutput(io.Discard)
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		flags.SetOutput(stdout)
		flags.Usage()
		return config{}, err
	}
	if err != nil {
		return config{}, fmt.Errorf("%w (run plugin-host -help for the flags)", err)
	}

	switch {
	case flags.NArg() > 0:
		return config{}, fmt.Errorf("unexpected argument %q: pass the caption with -text", flags.Arg(0))
	case c.modelPath == "":
		return config{}, errors.New("-model is required: pass a model file")
	case c.imagePath == "" && c.text == "":
		return config{}, errors.New("nothing to embed: pass -image, -text or both")
	case c.text != "" && strings.TrimSpace(c.text) == "":
		return config{}, fmt.Errorf("-text %q is blank: pass a caption or leave -text out", c.text)
	case c.timeout <= 0:
		return config{}, fmt.Errorf("-timeout %v: want a positive duration, such as 30s", c.timeout)
	}
	return c, nil
}

// run runs the program and returns its one error. It returns nil after
// -help.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
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
	var imageData []byte
	if c.imagePath != "" {
		if imageData, err = os.ReadFile(c.imagePath); err != nil {
			return fmt.Errorf("read the image: %w", err)
		}
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
	if len(embeddings) == 3 {
		fmt.Fprintf(stdout, "cosine(image, text) = %.4f\n", cosine(embeddings[0].vector, embeddings[1].vector))
		fmt.Fprintf(stdout, "cosine(image, both) = %.4f\n", cosine(embeddings[0].vector, embeddings[2].vector))
		fmt.Fprintf(stdout, "cosine(text, both)  = %.4f\n", cosine(embeddings[1].vector, embeddings[2].vector))
	}

	if c.text == "" {
		return nil // the guesses are for hidden caption words
	}
	return printGuesses(ctx, model, c, imageData, stdout)
}

// embedding is one named result of embedAll.
type embedding struct {
	name   string
	vector []float32
}

// embedAll embeds, concurrently, the image and the caption that c names
// and, when it names both, the pair. It returns the first failure in that
// order only, because a bad image or caption fails the pair's request too.
func embedAll(ctx context.Context, model *host.Model, c config, imageData []byte) ([]embedding, error) {
	image := host.Image{Encoded: imageData}
	var requests []host.EmbedRequest
	var out []embedding
	if c.imagePath != "" {
		requests = append(requests, host.EmbedRequest{Image: image})
		out = append(out, embedding{name: "image"})
	}
	if c.text != "" {
		requests = append(requests, host.EmbedRequest{Text: c.text})
		out = append(out, embedding{name: "text"})
	}
	if c.imagePath != "" && c.text != "" {
		requests = append(requests, host.EmbedRequest{Image: image, Text: c.text})
		out = append(out, embedding{name: "both"})
	}

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
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s embedding failed: %w", out[i].name, err)
		}
	}
	return out, nil
}

// printGuesses hides half of the caption's words and prints the model's
// best three guesses for each. imageData may be empty.
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
