package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// allCommands returns root and every command under it.
func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, sub := range root.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// zeroDefaultStatement matches help text that states a zero-valued
// default in words, which cobra does not print for such flags: "(default
// none)", "(required)", or what 0 does, as in "0 means one per CPU" or
// "0 keeps all".
var zeroDefaultStatement = regexp.MustCompile(`\(default|\(required|required\)|\b0 (means|disables)\b|\b0 \w+ all\b`)

// TestHelpGivesDefaults runs --help for every command and checks that
// every flag whose default cobra leaves out (an empty string, a zero
// number or an empty list) states its default in words. Boolean flags
// default to false, which --help leaves implicit.
func TestHelpGivesDefaults(t *testing.T) {
	for _, cmd := range allCommands(newRootCommand()) {
		path := cmd.CommandPath()
		args := append(strings.Fields(path)[1:], "--help")
		stdout, _, err := execute(t, args...)
		if err != nil {
			t.Errorf("%s --help: %v", path, err)
			continue
		}
		if !strings.Contains(stdout, "Usage:") {
			t.Errorf("%s --help printed no usage:\n%s", path, stdout)
		}
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() == "bool" || f.Name == "help" {
				return
			}
			switch f.DefValue {
			case "", "0", "[]":
				if !zeroDefaultStatement.MatchString(f.Usage) {
					t.Errorf("%s --%s: help %q states no default: add (default ...) or (required)", path, f.Name, f.Usage)
				}
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	stdout, _, err := execute(t, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`--addr string`, `(default "127.0.0.1:8080")`, "port 0 picks a free port",
		"--model", "emoji-mini.int8.safetensors", "--www", "make demo", "SIGTERM"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, stdout)
		}
	}
}

// TestShellCompletion checks cobra's completion command and the file
// filters of the model, image and folder flags.
func TestShellCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		stdout, _, err := execute(t, "completion", shell)
		if err != nil {
			t.Errorf("completion %s: %v", shell, err)
			continue
		}
		if !strings.Contains(stdout, "m3ae-edge") {
			t.Errorf("completion %s: script does not name m3ae-edge", shell)
		}
	}

	// "__complete" is the hidden command that the scripts call. It prints
	// the candidates, then ":" and the directive: 8 filters files by
	// extension and 16 offers folders only.
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"serve", "embed", "reconstruct", "inspect", "completion"}},
		{[]string{"serve", "--model", ""}, []string{"safetensors", ":8"}},
		{[]string{"serve", "--www", ""}, []string{":16"}},
		{[]string{"embed", "--model", ""}, []string{"safetensors", ":8"}},
		{[]string{"embed", "--image", ""}, []string{"png", "jpg", "jpeg", ":8"}},
		{[]string{"reconstruct", "--image", ""}, []string{"png", "jpg", ":8"}},
		{[]string{"reconstruct", "--out", ""}, []string{"png", ":8"}},
		{[]string{"inspect", ""}, []string{"safetensors", ":8"}},
	}
	for _, tt := range tests {
		stdout, _, err := execute(t, append([]string{"__complete"}, tt.args...)...)
		if err != nil {
			t.Errorf("__complete %q: %v", tt.args, err)
			continue
		}
		for _, want := range tt.want {
			if !strings.Contains(stdout, want) {
				t.Errorf("__complete %q = %q, want it to contain %q", tt.args, stdout, want)
			}
		}
	}
}
