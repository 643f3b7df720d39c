package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/defaultmodel"
	"github.com/m3ae-edge/m3ae-edge/www"
)

// defaultServeAddr is the address that "m3ae-edge serve" listens on
// without --addr, on the loopback interface only.
const defaultServeAddr = "127.0.0.1:8080"

// shutdownTimeout bounds how long serve waits for open requests, such as a
// model download, after SIGINT or SIGTERM before it closes them.
const shutdownTimeout = 5 * time.Second

// serveOptions are the flags of "m3ae-edge serve".
type serveOptions struct {
	addr, modelPath, wwwDir string
}

// newServeCommand returns "m3ae-edge serve", which serves the browser demo
// and a model file over HTTP.
func newServeCommand() *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--model FILE]",
		Short: "Serve the browser demo and a model file over HTTP",
		Long: `serve runs an HTTP server for the browser demo: a page that downloads the
model once, keeps it in the browser's Cache API and runs masked
reconstruction and embedding in a Web Worker with the WebAssembly build
of the core. It prints the page's URL and stops on Ctrl-C (SIGINT) or
SIGTERM, after open requests finish or 5 seconds pass.

The page, the WebAssembly module and the default model are embedded in
m3ae-edge at build time. A build from a fresh clone lacks the module:
run "make demo", which builds it into www/static, rebuilds m3ae-edge and
starts serve. --www serves the page from a folder in place of the
embedded copy, to edit it without rebuilding.

Service workers and the Cache API work only in secure contexts:
http://127.0.0.1, http://localhost or HTTPS. A browser on another machine
that opens the page over plain HTTP still runs the demo, but downloads the
model on every visit and does not work offline.`,
		Example: `  m3ae-edge serve
  m3ae-edge serve --addr 127.0.0.1:9000 --model emoji.int8.safetensors
  m3ae-edge serve --www www/static --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.addr, "addr", defaultServeAddr, "TCP address to listen on, HOST:PORT; port 0 picks a free port")
	flags.StringVar(&opts.modelPath, "model", "", "model file that the page downloads and runs (default: the "+defaultmodel.FileName+" model embedded in m3ae-edge)")
	flags.StringVar(&opts.wwwDir, "www", "", "folder to serve the page from, such as www/static with the built m3ae.wasm and wasm_exec.js (default: the page embedded in m3ae-edge)")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions})
	if err := cmd.MarkFlagDirname("www"); err != nil {
		panic(err) // the flag is not defined: a programming error
	}
	return cmd
}

func runServe(ctx context.Context, cmd *cobra.Command, logger *slog.Logger, opts serveOptions) error {
	site, siteLabel, err := openSite(opts.wwwDir)
	if err != nil {
		return err
	}
	modelData, err := readModel("--model", opts.modelPath)
	if err != nil {
		return err
	}
	// Check the file here, so that a bad --model fails at start and not in
	// the browser.
	if _, err := core.ReadModelFile(modelData); err != nil {
		return modelFileError("--model", opts.modelPath, err)
	}
	model := newServedModel(modelData, modelName(opts.modelPath))

	listener, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w: pick a free port, such as --addr 127.0.0.1:8081, or port 0 for any", opts.addr, err)
	}
	url := pageURL(listener.Addr())
	handler := newDemoHandler(site, model, logger)
	host, _, _ := net.SplitHostPort(listener.Addr().String())
	loopback := net.ParseIP(host).IsLoopback()
	if loopback {
		handler = requireLoopbackHost(handler, logger)
	}
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving the demo", "url", url, "model", modelLabel(opts.modelPath),
		"model_bytes", len(modelData), "page", siteLabel)
	if !loopback {
		logger.Warn("listening beyond the loopback interface: browsers on other machines that use plain HTTP get no model cache and no offline page",
			"addr", listener.Addr().String())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "m3ae-edge demo: open %s (Ctrl-C stops the server)\n", url)
	return serveUntilDone(ctx, server, listener, logger)
}

// openSite returns the page to serve, from dir or, when dir is empty, the
// copy embedded at build time, and a label that logs name it by. It fails
// when the built module files are missing.
func openSite(dir string) (fs.FS, string, error) {
	if dir == "" {
		site := www.Files()
		if err := www.CheckBuilt(site); err != nil {
			return nil, "", fmt.Errorf("%w from the page embedded in this m3ae-edge: run `make demo`, which builds them into www/static and rebuilds m3ae-edge", err)
		}
		return site, "embedded", nil
	}
	// os.Root keeps every open inside dir, symbolic links included.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", fmt.Errorf("--www %s: %w: give the folder that contains index.html", dir, err)
	}
	site := root.FS()
	if _, err := fs.Stat(site, "index.html"); err != nil {
		return nil, "", fmt.Errorf("--www %s: index.html not found: give the page folder, such as www/static", dir)
	}
	if err := www.CheckBuilt(site); err != nil {
		return nil, "", fmt.Errorf("--www %s: %w: run `make demo`, or build them with GOOS=js GOARCH=wasm go build -o %s/%s ./wasm/browser and cp \"$(go env GOROOT)/lib/wasm/%s\" %s",
			dir, err, dir, www.ModuleFile, www.WasmExecFile, dir)
	}
	return site, dir, nil
}

// pageURL returns the URL that a browser on this machine opens for a
// server listening on addr. An unspecified host, such as 0.0.0.0, becomes
// 127.0.0.1, so that the page runs in a secure context.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// serveUntilDone serves on listener until ctx is done, then shuts the
// server down, waiting at most shutdownTimeout for open requests.
func serveUntilDone(ctx context.Context, server *http.Server, listener net.Listener, logger *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("stopping: waiting for open requests", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := server.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("open requests did not finish in time: closing them", "timeout", shutdownTimeout)
		err = server.Close()
	}
	if err != nil {
		return fmt.Errorf("shut down the server: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
