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
	"time"

	"github.com/spf13/cobra"
)

// run executes the command line args and returns the process exit code:
// 0 on success, 1 on error and 130 when SIGINT or SIGTERM interrupted the
// command. The first signal cancels the command's context and restores the
// default signal handling, so a second signal ends the process at once.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	grace := interruptGrace
	if cmd, _, err := root.Find(args); err == nil && handlesInterrupt(cmd) {
		grace = -1
	}
	done := make(chan struct{})
	defer close(done)
	go watchInterrupt(ctx, stop, done, grace, func() {
		removeTempFiles()
		fmt.Fprintln(stderr, "error: interrupted")
		os.Exit(exitInterrupted)
	})

	if err := root.ExecuteContext(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "error:", interruptedMessage(err))
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// interruptedMessage returns the message of err, an interrupted command's
// error, without the bare "context canceled" of the canceled context.
func interruptedMessage(err error) string {
	message := strings.TrimSuffix(err.Error(), ": "+context.Canceled.Error())
	switch {
	case message == context.Canceled.Error():
		return "interrupted"
	case strings.HasPrefix(message, "interrupted"):
		return message
	}
	return "interrupted: " + message
}

// exitInterrupted is the exit code of an interrupted command, 128 + SIGINT
// as shells report it.
const exitInterrupted = 130

// interruptGrace is how long a command that does not check its context may
// run on after the first signal before the process exits.
const interruptGrace = 2 * time.Second

// contextCommands are the commands that stop by themselves when their
// context is canceled, some after saving their state, so they get no
// deadline after the first signal.
var contextCommands = map[string]bool{
	"data": true, "train": true, "evaluate": true, "probe": true,
	"serve": true, "tsne": true, "ood": true,
	"experiment": true,
}

// handlesInterrupt reports whether cmd or a parent of it is in
// contextCommands.
func handlesInterrupt(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if contextCommands[c.Name()] {
			return true
		}
	}
	return false
}

// watchInterrupt waits for ctx, the signal context, to be canceled before
// done is closed. It then calls stop so that a second signal gets the
// default handling, and calls exit when the command is still running after
// grace. A negative grace never calls exit.
func watchInterrupt(ctx context.Context, stop context.CancelFunc, done <-chan struct{}, grace time.Duration, exit func()) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	select {
	case <-done:
		return
	default:
	}
	stop()
	if grace < 0 {
		return
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		exit()
	}
}

// newRootCommand returns the m3ae-edge command with every subcommand.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "m3ae-edge",
		Short: "Train, export and run M3AE multimodal masked autoencoders",
		Long: `m3ae-edge prepares image-text data, trains M3AE (Multimodal Masked
Autoencoder, Geng et al. 2022) models, exports them to one file and runs
reconstruction and embedding from a pure-Go core.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: checkFlagValues,
	}
	root.PersistentFlags().String("log-level", "info", "minimum level of log lines on stderr: debug, info, warn or error")
	root.AddCommand(newDataCommand())
	root.AddCommand(newTrainCommand())
	root.AddCommand(newExportCommand())
	root.AddCommand(newImportCommand())
	root.AddCommand(newQuantizeCommand())
	root.AddCommand(newEvaluateCommand(), newProbeCommand())
	root.AddCommand(newExperimentCommand())
	root.AddCommand(newTSNECommand())
	root.AddCommand(newOODCommand())
	root.AddCommand(newAttentionCommand())
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
