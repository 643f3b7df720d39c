package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// newInspectCommand returns "m3ae-edge inspect", which describes a model
// file: its architecture, quantization, image normalization, vocabulary
// and tensors.
func newInspectCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [MODEL]",
		Short: "Describe a model file: config, quantization, normalization and tensors",
		Long: `inspect reads and validates a model file and prints every field of its
architecture config, its quantization scheme, the per-channel image
normalization (mean and standard deviation of pixels scaled to [0, 1], in
R, G, B order), the vocabulary size, a table of the stored tensors (name,
dtype, shape, bytes) and the totals: the architecture's parameter count,
the number of stored values (int8 files add one scale per output column or
row), the tensor bytes and the file size in bytes. --json prints the same
as one JSON object. Without MODEL it describes the default model embedded
in m3ae-edge.`,
		Example: `  m3ae-edge inspect
  m3ae-edge inspect emoji.safetensors
  m3ae-edge inspect emoji.int8.safetensors --json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeModelFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
				if path == "" {
					return errors.New("MODEL is empty: give a model file path, or no argument for the embedded model")
				}
			}
			data, err := readModel("model", path)
			if err != nil {
				return err
			}
			mf, err := core.ReadModelFile(data)
			if err != nil {
				return modelFileError("model", path, err)
			}
			summary := newModelSummary(modelLabel(path), int64(len(data)), mf)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), summary)
			}
			return printModelSummary(cmd.OutOrStdout(), summary)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object in place of the plain output")
	return cmd
}

// modelSummary is the description of a model file that "m3ae-edge inspect"
// prints, and its --json output.
type modelSummary struct {
	Path          string         `json:"path"`
	Config        core.Config    `json:"config"`
	Quantization  string         `json:"quantization"`
	ImageNorm     core.ImageNorm `json:"image_norm"`
	VocabSize     int            `json:"vocab_size"`
	Tensors       []tensorRow    `json:"tensors"`
	Parameters    int            `json:"parameters"`
	StoredValues  int64          `json:"stored_values"`
	TensorBytes   int64          `json:"tensor_bytes"`
	FileSizeBytes int64          `json:"file_size_bytes"`
}

// tensorRow describes one stored tensor.
type tensorRow struct {
	Name  string     `json:"name"`
	DType core.DType `json:"dtype"`
	Shape []int      `json:"shape"`
	Bytes int64      `json:"bytes"`
}

func newModelSummary(path string, fileSize int64, mf *core.ModelFile) modelSummary {
	summary := modelSummary{
		Path:          path,
		Config:        mf.Config,
		Quantization:  mf.Quantization,
		ImageNorm:     mf.Norm,
		VocabSize:     len(mf.Vocab),
		Parameters:    mf.Config.NumParams(),
		FileSizeBytes: fileSize,
	}
	names := make([]string, 0, len(mf.Tensors))
	for name := range mf.Tensors {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := mf.Tensors[name]
		elements := int64(1)
		for _, d := range t.Shape {
			elements *= int64(d)
		}
		row := tensorRow{Name: name, DType: t.DType, Shape: t.Shape, Bytes: elements * int64(t.DType.Size())}
		summary.Tensors = append(summary.Tensors, row)
		summary.StoredValues += elements
		summary.TensorBytes += row.Bytes
	}
	return summary
}

func printModelSummary(w io.Writer, s modelSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model file:\t%s\n", s.Path)
	fmt.Fprintln(tw, "\nconfig")
	// Every field of core.Config, under its JSON name, so a field added to
	// Config is listed without a change here.
	config := reflect.ValueOf(s.Config)
	for i := range config.NumField() {
		name, _, _ := strings.Cut(config.Type().Field(i).Tag.Get("json"), ",")
		fmt.Fprintf(tw, "  %s\t%v\n", name, config.Field(i).Interface())
	}
	fmt.Fprintf(tw, "\nquantization:\t%s\n", s.Quantization)
	fmt.Fprintf(tw, "image normalization (R, G, B):\tmean %v, std %v\n", s.ImageNorm.Mean, s.ImageNorm.Std)
	fmt.Fprintf(tw, "vocabulary:\t%s\n", countNoun(s.VocabSize, "token"))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(tw, "\ntensor\tdtype\tshape\tbytes")
	for _, t := range s.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", t.Name, t.DType, t.Shape, t.Bytes)
	}
	fmt.Fprintf(tw, "\n%s, %s, %s, %s, file size %s\n",
		countNoun(len(s.Tensors), "tensor"), countNoun(s.Parameters, "parameter"), countNoun(s.StoredValues, "stored value"),
		countNoun(s.TensorBytes, "tensor byte"), countNoun(s.FileSizeBytes, "byte"))
	return tw.Flush()
}
