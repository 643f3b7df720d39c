// Command m3ae-bench measures m3ae-edge beside the peers a user would pick
// instead and writes the tables of docs/BENCHMARKS.md. Each group of
// measurements rewrites only its own generated section of the file (see
// benchdoc.go), so groups can be run one at a time:
//
//	go run ./cmd/m3ae-bench                 # every group, in order
//	go run ./cmd/m3ae-bench -groups train   # one group
//	go run ./cmd/m3ae-bench -doc ''         # print the sections instead
//
// `make bench` installs the peers and runs every group. Figures are taken
// side by side within one run, and each section starts with the command,
// machine and date behind it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// group is one set of measurements that fills one section of the document.
type group struct {
	name  string
	about string
	// run measures and returns the section's Markdown body. main puts the
	// line naming the date, machine and command above it.
	run func(ctx context.Context, env *benchEnv) (string, error)
}

// groups lists every group in the order `make bench` runs them. Each
// group's file adds itself with register.
var groups []group

// groupOrder fixes the run order, which is also the order of the sections
// in docs/BENCHMARKS.md: inference peers first, then training, kernels and
// memory. register rejects a name missing from it.
var groupOrder = []string{"onnx-node", "browser", "wasm", "train", "kernels", "memory"}

// register adds g to groups at its place in groupOrder. Call it from an
// init function in the group's file.
func register(g group) {
	rank := slices.Index(groupOrder, g.name)
	if rank < 0 {
		panic("m3ae-bench: group " + g.name + " is missing from groupOrder")
	}
	at := 0
	for at < len(groups) && slices.Index(groupOrder, groups[at].name) < rank {
		at++
	}
	groups = slices.Insert(groups, at, g)
}

// benchEnv is the environment every group gets: the parsed flags and a
// logger for progress on stderr.
type benchEnv struct {
	log *slog.Logger
	// quick shortens every group to a smoke run: fewer repetitions and the
	// smallest presets. Its figures are not for the document.
	quick bool
	// flags holds the string flags groups declare with stringFlag.
	flags map[string]*string
}

// flagDefs are the string flags that group files declare, keyed by name.
var flagDefs = map[string]struct{ value, usage string }{}

// stringFlag declares a string flag for a group's file. Call it from a
// package-level var initialiser so that main registers every flag.
func stringFlag(name, value, usage string) string {
	flagDefs[name] = struct{ value, usage string }{value, usage}
	return name
}

// flag returns the value of a flag declared with stringFlag.
func (e *benchEnv) flag(name string) string {
	if p, ok := e.flags[name]; ok {
		return *p
	}
	panic("m3ae-bench: flag " + name + " was not declared with stringFlag")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Args[1:], os.Stdout, logger)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		logger.Error("m3ae-bench failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	flags := flag.NewFlagSet("m3ae-bench", flag.ContinueOnError)
	doc := flags.String("doc", "docs/BENCHMARKS.md", "Markdown file whose generated sections are rewritten; empty prints them to stdout")
	only := flags.String("groups", "", "comma-separated groups to run (default all): "+groupNames())
	quick := flags.Bool("quick", false, "smoke run: fewest repetitions and smallest presets; prints instead of writing -doc")
	env := &benchEnv{log: logger, flags: map[string]*string{}}
	for name, def := range flagDefs {
		env.flags[name] = flags.String(name, def.value, def.usage)
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: name groups with -groups", flags.Arg(0))
	}
	env.quick = *quick
	if env.quick {
		*doc = ""
	}

	selected, err := selectGroups(*only)
	if err != nil {
		return err
	}
	if *doc != "" {
		// Checked before measuring, so that a bad -doc fails in a second
		// rather than after every group has run.
		if err := checkDocWritable(*doc); err != nil {
			return err
		}
	}
	machine, err := describeMachine()
	if err != nil {
		return err
	}
	for _, g := range selected {
		if err := ctx.Err(); err != nil {
			return err
		}
		logger.Info("group started", "group", g.name, "about", g.about)
		start := time.Now()
		body, err := g.run(ctx, env)
		if err != nil {
			return fmt.Errorf("group %s: %w", g.name, err)
		}
		logger.Info("group finished", "group", g.name, "elapsed", time.Since(start).Round(time.Second))
		section := fmt.Sprintf("Measured %s on %s with\n`go run ./cmd/m3ae-bench -groups %s` (%s).\n\n%s",
			time.Now().UTC().Format("2006-01-02"), machine, g.name, commandContext(), body)
		if *doc == "" {
			fmt.Fprintf(stdout, "<!-- %s -->\n%s\n", g.name, section)
			continue
		}
		if err := ReplaceFile(*doc, g.name, section); err != nil {
			return err
		}
	}
	return nil
}

func groupNames() string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	return strings.Join(names, ", ")
}

// selectGroups returns the groups named in list, in document order, or all
// of them when list is empty.
func selectGroups(list string) ([]group, error) {
	if list == "" {
		return groups, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, g := range groups {
			found = found || g.name == name
		}
		if !found {
			return nil, fmt.Errorf("unknown group %q: use one of %s", name, groupNames())
		}
		want[name] = true
	}
	var out []group
	for _, g := range groups {
		if want[g.name] {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-groups lists no group")
	}
	return out, nil
}
