package main

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/models"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/testset"
)

// demoModel is the embedded sample the demo runs.
const demoModel = "seed_lstm"

// demoSteps are the stages of `mtlrun demo`; other features append theirs
// (parity, fine-tuning, export) in their own files.
var demoSteps []demoStep

type demoStep struct {
	order int
	title string
	run   func(w io.Writer, d *demoState) error
}

// demoState carries what the steps share.
type demoState struct {
	model    *graph.Model
	session  *runtime.Session
	inputs   map[string]*tensor.Tensor
	want     map[string]*tensor.Tensor
	dir      string // a scratch folder for files the demo writes
	exported string // the fine-tuned model, once exported
}

func addDemoStep(order int, title string, run func(io.Writer, *demoState) error) {
	demoSteps = append(demoSteps, demoStep{order, title, run})
}

func readEmbedded(dir, prefix string) ([]*tensor.Tensor, error) {
	var out []*tensor.Tensor
	for i := 0; ; i++ {
		data, err := fs.ReadFile(models.FS, path.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i)))
		if err != nil {
			break
		}
		t, err := importer.DecodeTensor(data, "")
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func init() {
	addDemoStep(10, "inspect", func(w io.Writer, d *demoState) error {
		printSummary(w, summarize("embedded:"+demoModel+"/model.onnx", d.model))
		return nil
	})
	addDemoStep(20, "inference on the sample input", func(w io.Writer, d *demoState) error {
		start := time.Now()
		outs, err := d.session.Run(d.inputs)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "all tasks in %v:\n", time.Since(start).Round(time.Microsecond))
		printOutputs(w, d.model.Graph, outs, nil)
		for name, want := range d.want {
			c := testset.Compare(outs[name], want, testset.Tolerance{RTol: 1e-4, ATol: 1e-5})
			verdict := "matches"
			if !c.Pass {
				verdict = "DIFFERS FROM"
			}
			fmt.Fprintf(w, "  %s %s the PyTorch reference (max abs err %.2g)\n", name, verdict, c.MaxAbsErr)
			if !c.Pass {
				return fmt.Errorf("output %q: %s", name, c.Detail)
			}
		}
		return nil
	})
	addDemoStep(30, "one task only", func(w io.Writer, d *demoState) error {
		last := d.model.Graph.Outputs[len(d.model.Graph.Outputs)-1].Name
		pruned, err := graph.Prune(d.model.Graph, []string{last})
		if err != nil {
			return err
		}
		outs, err := d.session.Run(d.inputs, last)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "asked only for %q: %d of %d nodes run\n", last, len(pruned.Nodes), len(d.model.Graph.Nodes))
		printOutputs(w, d.model.Graph, outs, []string{last})
		return nil
	})
	addDemoStep(40, "latency", func(w io.Writer, d *demoState) error {
		const runs = 200
		lat := make([]time.Duration, runs)
		for i := range lat {
			start := time.Now()
			if _, err := d.session.Run(d.inputs); err != nil {
				return err
			}
			lat[i] = time.Since(start)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		x := d.inputs[d.model.Graph.FeedInputs()[0].Name]
		fmt.Fprintf(w, "%d runs on input %v: p50 %v, p99 %v (see `mtlrun bench` for more)\n", runs, x.Shape, lat[pctIndex(runs, 50)].Round(time.Microsecond), lat[pctIndex(runs, 99)].Round(time.Microsecond))
		return nil
	})
	rootCmd.AddCommand(&cobra.Command{
		Use:   "demo",
		Short: "Run the embedded sample multi-task model end to end (no arguments, no network)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			data, err := fs.ReadFile(models.FS, path.Join(demoModel, "model.onnx"))
			if err != nil {
				return err
			}
			m, err := importer.Decode(data, "")
			if err != nil {
				return err
			}
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				return err
			}
			ins, err := readEmbedded(path.Join(demoModel, "test_data_set_0"), "input")
			if err != nil {
				return err
			}
			wants, err := readEmbedded(path.Join(demoModel, "test_data_set_0"), "output")
			if err != nil {
				return err
			}
			d := &demoState{model: m, session: sess, inputs: map[string]*tensor.Tensor{}, want: map[string]*tensor.Tensor{}}
			for i, v := range m.Graph.FeedInputs() {
				if i < len(ins) {
					d.inputs[v.Name] = ins[i]
				}
			}
			for i, o := range m.Graph.Outputs {
				if i < len(wants) {
					d.want[o.Name] = wants[i]
				}
			}
			sort.SliceStable(demoSteps, func(i, j int) bool { return demoSteps[i].order < demoSteps[j].order })
			for i, s := range demoSteps {
				fmt.Fprintf(w, "\n== %d. %s ==\n", i+1, s.title)
				if err := s.run(w, d); err != nil {
					return fmt.Errorf("demo step %q: %w", s.title, err)
				}
			}
			fmt.Fprintln(w, "\ndemo finished: every step passed")
			return nil
		},
	})
}
