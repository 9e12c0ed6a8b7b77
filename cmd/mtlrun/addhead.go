package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/edit"
	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/parity"
)

func init() {
	var spec edit.HeadSpec
	var out string
	cmd := &cobra.Command{
		Use:   "add-head MODEL --name NAME [--from TENSOR|trunk] --units K [--hidden H] [--activation A] [--seed S] --out OUT.onnx",
		Short: "Graft a new task head (Dense layers, Glorot-uniform init) onto the trunk",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			// any valid inputs do: the probe only learns the source tensor's shape
			probe, err := parity.RandomInputs(m, 2, 4, 1)
			if err != nil {
				return err
			}
			if spec.From == "" {
				spec.From = "trunk"
			}
			if spec.From == "trunk" {
				if spec.From, err = edit.TrunkOutput(m.Graph); err != nil {
					return err
				}
			}
			if err := edit.AddHead(m, spec, probe); err != nil {
				return err
			}
			if err := exporter.Save(m, out, exporter.Options{Metadata: []graph.KeyValue{{Key: "mtlrun.added_head", Value: spec.Name + " from " + spec.From}}}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added head %q (%s, %d units) on %q; wrote %s\n", spec.Name, spec.Activation, spec.Units, spec.From, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Name, "name", "", "name of the new output (task)")
	f.StringVar(&spec.From, "from", "trunk", "tensor to graft onto, or 'trunk' for the detected trunk output")
	f.IntVar(&spec.Units, "units", 0, "output units of the head")
	f.IntVar(&spec.Hidden, "hidden", 0, "units of an optional hidden ReLU layer")
	f.StringVar(&spec.Activation, "activation", "linear", "linear, relu, sigmoid, softmax or log_softmax")
	f.Uint64Var(&spec.Seed, "seed", 1, "seed of the Glorot-uniform initialisation")
	f.StringVar(&out, "out", "", "output .onnx file")
	rootCmd.AddCommand(cmd)
}
