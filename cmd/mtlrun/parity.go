package main

import (
	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	var specs []string
	var random, asJSON bool
	var batch, timeSteps int
	var seed uint64
	var rtol, atol float64
	cmd := &cobra.Command{
		Use:   "parity MODEL [--input NAME=FILE]... [--random] [--batch N] [--time T] [--seed S] [--rtol R] [--atol A] [--json]",
		Short: "Run a model in mtlrun and in onnxruntime on the same inputs and compare every output",
		Long: `Prints, per output, the largest absolute and relative error and, for softmax,
log-softmax and sigmoid outputs, whether the argmax (or 0.5 threshold) decision
agrees on every row. Exit status 1 when an output is outside tolerance.
Needs the onnxruntime shared library (see docs/PARITY.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parity.Available(); err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			var inputs map[string]*tensor.Tensor
			if random || len(specs) == 0 {
				if inputs, err = parity.RandomInputs(m, batch, timeSteps, seed); err != nil {
					return err
				}
			}
			if len(specs) > 0 {
				given, err := readInputs(m.Graph, specs)
				if err != nil {
					return err
				}
				if inputs == nil {
					inputs = given
				}
				for k, v := range given {
					inputs[k] = v
				}
			}
			rep, err := parity.Check(args[0], m, inputs, rtol, atol)
			if err != nil {
				return err
			}
			if asJSON {
				if err := rep.WriteJSON(cmd.OutOrStdout()); err != nil {
					return err
				}
			} else {
				rep.WriteText(cmd.OutOrStdout())
			}
			if !rep.Pass {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&specs, "input", nil, "input as NAME=FILE (.npy/.pb) or FILE.npz; others are drawn at random")
	f.BoolVar(&random, "random", false, "draw random inputs (floats N(0,1), token ids within their embedding table)")
	f.IntVar(&batch, "batch", 1, "batch size for random inputs")
	f.IntVar(&timeSteps, "time", 16, "sequence length for random inputs (ignored without a time axis)")
	f.Uint64Var(&seed, "seed", 1, "seed for random inputs")
	f.Float64Var(&rtol, "rtol", 1e-4, "relative tolerance")
	f.Float64Var(&atol, "atol", 1e-5, "absolute tolerance")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}
