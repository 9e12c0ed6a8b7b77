package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mtlrun/mtlrun/edit"
	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/seattle"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train"
)

// The demo's second half: real data. The seed model's trunk (LSTM(64) over
// a 1-feature series) gets a new 5-class softmax head for tomorrow's weather
// in Seattle; output1 is re-purposed as tomorrow's maximum temperature.
// Both tasks are fine-tuned together, then the model is exported and
// re-imported.

const demoWindow = 14

func init() {
	addDemoStep(50, "fine-tune on real data (Seattle weather, 2012-2015)", func(w io.Writer, d *demoState) error {
		days, err := seattle.Load()
		if err != nil {
			return err
		}
		split := len(days) * 3 / 4
		mean, std := seattle.Stats(days[:split])
		tr := seattle.MakeWindows(days, demoWindow, 0, split, mean, std)
		va := seattle.MakeWindows(days, demoWindow, split-demoWindow, len(days), mean, std)
		in := d.model.Graph.FeedInputs()[0].Name
		probe := map[string]*tensor.Tensor{in: tensor.From([]int{2, demoWindow, 1}, make([]float32, 2*demoWindow))}
		trunk, err := edit.TrunkOutput(d.model.Graph)
		if err != nil {
			return err
		}
		if err := edit.AddHead(d.model, edit.HeadSpec{Name: "weather", From: trunk, Units: len(seattle.Classes), Activation: "softmax", Seed: 7}, probe); err != nil {
			return err
		}
		fmt.Fprintf(w, "added a %d-class softmax head %q on the trunk tensor %q\n", len(seattle.Classes), "weather", trunk)
		trainSet, _ := train.NewDataset(map[string]*tensor.Tensor{in: tr.Input, "output1": tr.TempMax, "weather": tr.Weather})
		valSet, _ := train.NewDataset(map[string]*tensor.Tensor{in: va.Input, "output1": va.TempMax, "weather": va.Weather})
		cfg := train.Config{
			Losses:    map[string]train.Loss{"output1": train.MSE, "weather": train.SparseCCE},
			Optimizer: train.OptimizerConfig{Kind: train.Adam, LR: 3e-3},
			BatchSize: 32, Epochs: 4, Seed: 1,
		}
		t, err := train.NewTrainer(d.model, cfg)
		if err != nil {
			return err
		}
		before, _, err := t.Evaluate(valSet)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%d training windows, %d validation windows of %d days; %d trainable tensors\n", trainSet.Rows, valSet.Rows, demoWindow, len(t.Trainable()))
		res, err := t.Fit(context.Background(), trainSet, valSet, train.Callbacks{OnEpoch: func(s train.EpochStats) {
			fmt.Fprintf(w, "  epoch %d: loss %.4f  val temp MAE %.2f °C  val weather acc %.3f  (%.0f samples/s)\n",
				s.Epoch, s.TrainLoss, s.Val["output1"].MAE*std, s.Val["weather"].Accuracy, s.Samples)
		}})
		if err != nil {
			return err
		}
		after := res.Epochs[len(res.Epochs)-1].Val
		fmt.Fprintf(w, "validation, before → after: temp_max MAE %.2f → %.2f °C, weather accuracy %.3f → %.3f\n",
			before["output1"].MAE*std, after["output1"].MAE*std, before["weather"].Accuracy, after["weather"].Accuracy)
		dir, err := os.MkdirTemp("", "mtlrun-demo-")
		if err != nil {
			return err
		}
		d.dir = dir
		out := filepath.Join(dir, "seattle_mtl.onnx")
		if err := exporter.Save(d.model, out, exporter.Options{Metadata: []graph.KeyValue{{Key: "mtlrun.train.data", Value: trainSet.Fingerprint()}}}); err != nil {
			return err
		}
		back, err := importer.Load(out)
		if err != nil {
			return err
		}
		s1, _ := runtime.NewSession(d.model, runtime.Options{})
		s2, err := runtime.NewSession(back, runtime.Options{})
		if err != nil {
			return err
		}
		x := map[string]*tensor.Tensor{in: va.Input}
		a, err := s1.Run(x)
		if err != nil {
			return err
		}
		b, err := s2.Run(x)
		if err != nil {
			return err
		}
		same := true
		for k, v := range a {
			av, bv := v.Float32s(), b[k].Float32s()
			for i := range av {
				if av[i] != bv[i] {
					same = false
				}
			}
		}
		fmt.Fprintf(w, "exported to %s; re-imported outputs identical: %v\n", out, same)
		d.exported = out
		return nil
	})
}
