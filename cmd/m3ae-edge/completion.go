package main

import "github.com/spf13/cobra"

// File name extensions, without the dot, that shell completion offers for
// model files and images.
var (
	modelExtensions = []string{"safetensors"}
	imageExtensions = []string{"png", "jpg", "jpeg"}
)

// markFileFlags makes shell completion offer only files with the given
// extensions for each named flag, or any file for an empty list.
func markFileFlags(cmd *cobra.Command, extensions map[string][]string) {
	for name, exts := range extensions {
		if err := cmd.MarkFlagFilename(name, exts...); err != nil {
			panic(err) // the flag is not defined: a programming error
		}
	}
}

// completeModelFile completes a positional model file argument.
func completeModelFile(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return modelExtensions, cobra.ShellCompDirectiveFilterFileExt
}
