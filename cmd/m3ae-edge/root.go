package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// run executes the command line args and returns the process exit code:
// 0 on success, 1 on error. SIGINT and SIGTERM cancel the command's context.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// newRootCommand returns the m3ae-edge command with every subcommand.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "m3ae-edge",
		Short: "Train, export and run M3AE multimodal masked autoencoders",
		Long: `m3ae-edge prepares image-text data, trains M3AE (Multimodal Masked
Autoencoder, Geng et al. 2022) models, exports them to one file and runs
reconstruction and embedding from a pure-Go core.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "minimum level of log lines on stderr: debug, info, warn or error")
	root.AddCommand(newDataCommand())
	root.AddCommand(newTrainCommand())
	root.AddCommand(newExportCommand())
	root.AddCommand(newImportCommand())
	root.AddCommand(newQuantizeCommand())
	root.AddCommand(newEvaluateCommand(), newProbeCommand())
	root.AddCommand(newTSNECommand())
	root.AddCommand(newOODCommand())
	root.AddCommand(newEmbedCommand())
	root.AddCommand(newReconstructCommand())
	root.AddCommand(newInspectCommand())
	root.AddCommand(newServeCommand())
	root.AddCommand(newVersionCommand())
	return root
}

// commandLogger returns a logger that writes text lines to the command's
// stderr at the level set by --log-level.
func commandLogger(cmd *cobra.Command) (*slog.Logger, error) {
	name, err := cmd.Flags().GetString("log-level")
	if err != nil {
		return nil, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(name))); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", name)
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})), nil
}
