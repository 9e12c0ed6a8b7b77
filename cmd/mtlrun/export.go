package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/runtime"
)

func init() {
	var out string
	var outputs []string
	var external string
	var threshold int
	var optimize bool
	cmd := &cobra.Command{
		Use:   "export MODEL --out OUT.onnx [--outputs a,b] [--optimize]",
		Short: "Re-export a model as ONNX, optionally pruned to a subset of tasks",
		Long: `Writes the model back as ONNX in its original structure (names, symbolic dims,
opsets, metadata kept; producer mtlrun). With --outputs the result serves only
those tasks: every node and weight the other tasks alone need is dropped.
With --optimize the runtime's graph passes are applied first: today constant
folding (every node computable from constants alone is evaluated once and
stored as an initializer); the original structure is kept otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			if len(outputs) > 0 {
				g, err := graph.Prune(m.Graph, outputs)
				if err != nil {
					return err
				}
				pruned := *m
				pruned.Graph = g
				m = &pruned
			}
			if optimize {
				folded, n, err := runtime.FoldConstants(m)
				if err != nil {
					return err
				}
				m = folded
				fmt.Fprintf(cmd.OutOrStdout(), "optimised: %d constant nodes folded\n", n)
			}
			// refuse to write a model we could not run ourselves
			if _, err := runtime.NewSession(m, runtime.Options{}); err != nil {
				return err
			}
			opts := exporter.Options{ExternalData: external, ExternalThreshold: threshold}
			if err := exporter.Save(m, out, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d nodes, %d outputs)\n", out, len(m.Graph.Nodes), len(m.Graph.Outputs))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output .onnx file")
	cmd.Flags().StringSliceVar(&outputs, "outputs", nil, "keep only these outputs (tasks)")
	cmd.Flags().BoolVar(&optimize, "optimize", false, "apply the runtime's graph passes (constant folding) before writing")
	cmd.Flags().StringVar(&external, "external-data", "", "write initializers of at least --external-threshold bytes to this side file (a plain name, next to OUT)")
	cmd.Flags().IntVar(&threshold, "external-threshold", 1024, "size in bytes from which an initializer goes to the external data file")
	rootCmd.AddCommand(cmd)
}
