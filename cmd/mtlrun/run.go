package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// readInputs resolves --input flags: NAME=FILE (.npy or .pb), a bare .npz
// whose arrays are keyed by input name, or a bare FILE for a one-input model.
func readInputs(g *graph.Graph, specs []string) (map[string]*tensor.Tensor, error) {
	feeds := g.FeedInputs()
	inputs := map[string]*tensor.Tensor{}
	for _, spec := range specs {
		name, path, hasName := strings.Cut(spec, "=")
		if !hasName {
			path, name = spec, ""
		}
		if strings.EqualFold(filepath.Ext(path), ".npz") {
			arrays, err := tensorio.ReadNPZ(path)
			if err != nil {
				return nil, err
			}
			for k, t := range arrays {
				if name != "" && k != name {
					continue
				}
				if _, ok := g.Input(k); ok {
					inputs[k] = t
				}
			}
			continue
		}
		if name == "" {
			if len(feeds) != 1 {
				return nil, fmt.Errorf("--input %s: the model has %d inputs, write NAME=FILE", spec, len(feeds))
			}
			name = feeds[0].Name
		}
		t, err := tensorio.ReadFile(path)
		if err != nil {
			return nil, err
		}
		inputs[name] = t
	}
	return inputs, nil
}

// preview prints up to n leading values of a tensor.
func preview(t *tensor.Tensor, n int) string {
	if t.DType == tensor.String {
		s := tensor.Data[string](t)
		return fmt.Sprintf("%q", s[:min(n, len(s))])
	}
	v, err := tensor.AsFloat64(t)
	if err != nil {
		return err.Error()
	}
	parts := make([]string, 0, n+1)
	for i := 0; i < len(v) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%.6g", v[i]))
	}
	if len(v) > n {
		parts = append(parts, fmt.Sprintf("… (%d values)", len(v)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func printOutputs(w io.Writer, g *graph.Graph, outs map[string]*tensor.Tensor, names []string) {
	if len(names) == 0 {
		for _, o := range g.Outputs {
			names = append(names, o.Name)
		}
	}
	for _, name := range names {
		t := outs[name]
		fmt.Fprintf(w, "  %-20s %-8s %-12s %s\n", name, t.DType, tensor.ShapeString(t.Shape), preview(t, 6))
	}
}

func init() {
	var inputSpecs []string
	var outputs []string
	var outFile string
	cmd := &cobra.Command{
		Use:   "run MODEL [--input NAME=FILE]... [--outputs a,b] [--out FILE.npz]",
		Short: "Run a model on inputs from .npy, .npz or .pb files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				return err
			}
			inputs, err := readInputs(m.Graph, inputSpecs)
			if err != nil {
				return err
			}
			start := time.Now()
			outs, err := sess.Run(inputs, outputs...)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ran %s in %v\n", args[0], time.Since(start).Round(time.Microsecond))
			printOutputs(w, m.Graph, outs, outputs)
			if outFile != "" {
				if err := tensorio.WriteNPZ(outFile, outs); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %d outputs to %s\n", len(outs), outFile)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&inputSpecs, "input", nil, "input as NAME=FILE (.npy/.pb), FILE.npz keyed by input name, or FILE for a one-input model")
	cmd.Flags().StringSliceVar(&outputs, "outputs", nil, "compute only these outputs (comma-separated task names)")
	cmd.Flags().StringVar(&outFile, "out", "", "write all computed outputs to this .npz file")
	rootCmd.AddCommand(cmd)
}
