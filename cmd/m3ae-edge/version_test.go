package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	stdout, stderr, err := execute(t, "version")
	if err != nil {
		t.Fatalf("m3ae-edge version: %v\nstderr:\n%s", err, stderr)
	}
	// A test binary has no main module version, so the version is devel.
	want := "m3ae-edge devel\ngo: " + runtime.Version() + "\nplatform: " + runtime.GOOS + "/" + runtime.GOARCH + "\nmodel-file format version: 1\n"
	if stdout != want {
		t.Errorf("m3ae-edge version output = %q, want %q", stdout, want)
	}
}

func TestVersionCommandRejectsArgs(t *testing.T) {
	_, _, err := execute(t, "version", "extra")
	if err == nil || !strings.Contains(err.Error(), `unknown command "extra"`) {
		t.Errorf("m3ae-edge version extra error = %v, want an unknown command error", err)
	}
}
