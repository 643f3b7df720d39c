package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// newVersionCommand returns "m3ae-edge version", which prints the build's
// module version, Go version, platform and model-file format version.
func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the m3ae-edge version, Go version, platform and model-file format version",
		Long: `version prints the module version of this build (devel for a build from
a source checkout), the Go version it was built with, its GOOS/GOARCH
and the model-file format version it reads and writes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "m3ae-edge %s\ngo: %s\nplatform: %s/%s\nmodel-file format version: %d\n",
				moduleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, core.FormatVersion)
			return err
		},
	}
}

// moduleVersion returns the main module's version from the build info, or
// "devel" when the build has none, as for "go build" in a checkout.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "devel"
	}
	return info.Main.Version
}
