// Command peakrss runs a program and writes its peak resident memory, the
// ru_maxrss that Linux reports when it exits, as one JSON object:
//
//	peakrss -o result.json -- PROGRAM [ARG...]
//
// The program's stdin, stdout and stderr are peakrss's own.
//
// m3ae-bench's memory group starts programs through this small process
// rather than directly. Go starts a child with vfork (clone with CLONE_VM,
// so the child shares its parent's memory until exec), and Linux's exec
// folds the peak of the memory map it replaces into the new program's
// ru_maxrss. So a child of a large process such as m3ae-bench, which has
// held whole models, reports at least the parent's peak. A child of
// peakrss reports at least peakrss's few MiB, below any program measured.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// result is the JSON object peakrss writes.
type result struct {
	// MaxRSSKiB is the program's peak resident set size in KiB.
	MaxRSSKiB int64 `json:"max_rss_kib"`
	// WallSeconds and CPUSeconds are the program's run time and its user
	// plus system CPU time.
	WallSeconds float64 `json:"wall_s"`
	CPUSeconds  float64 `json:"cpu_s"`
	ExitCode    int     `json:"exit_code"`
}

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "peakrss:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// run returns the program's exit code, or an error when peakrss could not
// run it or write the result.
func run(args []string) (int, error) {
	flags := flag.NewFlagSet("peakrss", flag.ContinueOnError)
	outPath := flags.String("o", "", "JSON file to write the result to (required)")
	if err := flags.Parse(args); err != nil {
		return 0, err
	}
	if *outPath == "" || flags.NArg() == 0 {
		return 0, errors.New("usage: peakrss -o RESULT.json -- PROGRAM [ARG...]")
	}

	cmd := exec.Command(flags.Arg(0), flags.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return 0, err
	}
	usage, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, errors.New("the operating system reported no resource usage")
	}
	res := result{
		MaxRSSKiB:   usage.Maxrss, // KiB on Linux
		WallSeconds: wall.Seconds(),
		CPUSeconds:  time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds(),
		ExitCode:    cmd.ProcessState.ExitCode(),
	}
	data, err := json.Marshal(res)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(*outPath, append(data, '\n'), 0o644); err != nil {
		return 0, err
	}
	return res.ExitCode, nil
}
