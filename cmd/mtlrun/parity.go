package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/models"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	var specs []string
	var random, asJSON bool
	var batch, timeSteps, threads int
	var seed uint64
	var rtol, atol float64
	cmd := &cobra.Command{
		Use:   "parity MODEL [--input NAME=FILE]... [--random] [--batch N] [--time T] [--seed S] [--rtol R] [--atol A] [--json]",
		Short: "Run a model in mtlrun and in onnxruntime on the same inputs and compare every output",
		Long: `Runs MODEL in mtlrun and in onnxruntime on the same inputs and prints, per
output, the largest absolute and relative error, how many elements are outside
|mtlrun - onnxruntime| <= atol + rtol*|onnxruntime|, and for softmax,
log-softmax and sigmoid outputs whether the argmax (or >= 0.5) decision agrees
on every row.

Inputs come from --input NAME=FILE (.npy, .pb, or an .npz of several); every
input not given is drawn at random: floats N(0,1), token ids inside the
embedding table they index, lengths set to the full sequence, free dims from
--batch and --time (--time is ignored by models without a time axis).

Exit status: 0 when every output is within tolerance, 1 when one is not, 2
on other errors, e.g. when the onnxruntime library is missing (see
docs/PARITY.md; install it with bash scripts/install-onnxruntime.sh).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parity.Available(); err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			given, err := readInputs(m.Graph, specs)
			if err != nil {
				return err
			}
			inputs := given
			missing := false
			for _, v := range m.Graph.FeedInputs() {
				if _, ok := given[v.Name]; !ok {
					missing = true
				}
			}
			if random || missing {
				if inputs, err = parity.RandomInputs(m, batch, timeSteps, seed); err != nil {
					return err
				}
				for k, v := range given {
					inputs[k] = v
				}
			}
			c, err := parity.NewChecker(args[0], m, parity.Options{Threads: threads})
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Check(inputs, rtol, atol)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				data, err := rep.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(data))
			} else {
				fmt.Fprintf(w, "model %s, inputs %s\n", args[0], rep.InputsString())
				if err := rep.WriteText(w); err != nil {
					return err
				}
			}
			if !rep.Pass {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&specs, "input", nil, "input as NAME=FILE (.npy/.pb) or FILE.npz (repeatable); inputs not given are random")
	f.BoolVar(&random, "random", false, "draw random inputs for every input not given with --input (the default when some are missing)")
	f.IntVar(&batch, "batch", 1, "batch size of random inputs")
	f.IntVar(&timeSteps, "time", 16, "sequence length of random inputs (ignored by models without a time axis)")
	f.Uint64Var(&seed, "seed", 1, "seed of random inputs")
	f.Float64Var(&rtol, "rtol", 1e-4, "relative tolerance")
	f.Float64Var(&atol, "atol", 1e-5, "absolute tolerance")
	f.IntVar(&threads, "threads", 1, "threads for each runtime")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	rootCmd.AddCommand(cmd)

	// `mtlrun bench --vs-ort` runs onnxruntime through the same bridge.
	ortBenchRunner = func(modelPath string, inputs map[string]*tensor.Tensor, outputs []string, threads int) (benchRunner, func(), error) {
		o, err := parity.Open(modelPath, parity.Options{Threads: threads})
		if err != nil {
			return nil, nil, err
		}
		run, release, err := o.Prepare(inputs, outputs)
		if err != nil {
			o.Close()
			return nil, nil, err
		}
		return func() error { _, err := run(); return err }, func() { release(); o.Close() }, nil
	}

	// `mtlrun demo`: check the sample model against onnxruntime when the
	// library is present.
	addDemoStep(25, "parity with onnxruntime", func(w io.Writer, d *demoState) error {
		if err := parity.Available(); err != nil {
			fmt.Fprintf(w, "skipped: %v\n", firstLineOf(err))
			if !errors.Is(err, parity.ErrNoCgo) {
				fmt.Fprintln(w, "(install onnxruntime with: bash scripts/install-onnxruntime.sh; see docs/PARITY.md)")
			}
			return nil
		}
		data, err := models.FS.ReadFile(demoModel + "/model.onnx")
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "mtlrun-demo-parity")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "model.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		c, err := parity.NewChecker(path, d.model, parity.Options{})
		if err != nil {
			return err
		}
		defer c.Close()
		inputs, err := parity.RandomInputs(d.model, 64, 50, 1)
		if err != nil {
			return err
		}
		rep, err := c.Check(inputs, 1e-4, 1e-5)
		if err != nil {
			return err
		}
		v, _, _ := parity.Version()
		fmt.Fprintf(w, "onnxruntime %s vs mtlrun on random inputs %s:\n", v, rep.InputsString())
		if err := rep.WriteText(w); err != nil {
			return err
		}
		if !rep.Pass {
			return fmt.Errorf("outputs differ from onnxruntime beyond rtol 1e-4, atol 1e-5")
		}
		return nil
	})
}

func firstLineOf(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
