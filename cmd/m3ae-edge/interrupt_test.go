package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run the command line in place of the
// tests, so a test can send it signals.
const runMainEnv = "M3AE_EDGE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startMain starts the test binary as m3ae-edge with args.
func startMain(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// waitExit waits at most timeout for cmd and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	result := make(chan error, 1)
	go func() { result <- cmd.Wait() }()
	select {
	case err := <-result:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return exitErr.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		t.Fatalf("process %d still running %v after the signal", cmd.Process.Pid, timeout)
		return -1
	}
}

func TestInterruptStopsBlockedEmbed(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "image.png")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skip("no FIFOs here:", err)
			}
			cmd, stderr := startMain(t, "embed", "--image", fifo)
			time.Sleep(500 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, interruptGrace+5*time.Second)
			if code != exitInterrupted {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, stderr)
			}
			if !strings.Contains(stderr.String(), "error: interrupted") {
				t.Errorf("stderr does not say interrupted:\n%s", stderr)
			}
		})
	}
}

func TestSecondSignalKillsAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "image.png")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	cmd, stderr := startMain(t, "embed", "--image", fifo)
	time.Sleep(500 * time.Millisecond)
	for range 2 {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	waitExit(t, cmd, interruptGrace)
	if elapsed := time.Since(start); elapsed > interruptGrace/2 {
		t.Errorf("process ran %v after the second signal; stderr:\n%s", elapsed, stderr)
	}
}

func TestWatchInterruptRemovesTempFiles(t *testing.T) {
	temp := filepath.Join(t.TempDir(), "partial.tmp")
	if err := os.WriteFile(temp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	openTempFiles.Store(temp, struct{}{})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	exited := make(chan struct{})
	go watchInterrupt(ctx, func() { close(stopped) }, make(chan struct{}), time.Millisecond, func() {
		removeTempFiles()
		close(exited)
	})
	cancel()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("watchInterrupt did not exit after the grace period")
	}
	select {
	case <-stopped:
	default:
		t.Error("watchInterrupt did not restore the default signal handling")
	}
	if _, err := os.Stat(temp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file %s still exists: %v", temp, err)
	}
}

func TestWatchInterruptIgnoresFinishedRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	close(done)
	cancel()
	returned := make(chan struct{})
	go func() {
		watchInterrupt(ctx, func() { t.Error("stop called after the run finished") }, done, time.Millisecond, func() {
			t.Error("exit called after the run finished")
		})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("watchInterrupt did not return")
	}
}

func TestInterruptedMessage(t *testing.T) {
	cases := map[string]string{
		"context canceled":        "interrupted",
		"embed: context canceled": "interrupted: embed",
		"interrupted before the first step, nothing saved: context canceled": "interrupted before the first step, nothing saved",
	}
	for in, want := range cases {
		if got := interruptedMessage(errors.New(in)); got != want {
			t.Errorf("interruptedMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
