package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/train"
)

// parseAssignments reads "a=x,b=y" (repeatable flags are joined first).
func parseAssignments(flag string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		for _, part := range strings.Split(item, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			k, v, ok := strings.Cut(part, "=")
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("--%s %q: want OUTPUT=VALUE", flag, part)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, nil
}

func loadData(path string, csvMap map[string][]string) (*train.Dataset, error) {
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		if len(csvMap) == 0 {
			return nil, fmt.Errorf("%s: CSV data needs --csv-map NAME=col1:col2,... naming each input's and target's columns", path)
		}
		return train.LoadCSVFile(path, csvMap)
	}
	return train.LoadNPZ(path)
}

type trainFlags struct {
	data, val, out, plot string
	valSplit             float64
	losses, weights, csv []string
	weighting, optimizer string
	lr, momentum, wd     float64
	batch, epochs        int
	shuffle, asJSON      bool
	seed                 uint64
	freeze               string
	softShare, clipNorm  float64
	earlyStop            int
	checkpoint, resume   string
	schedule             string
	stepSize             int
	gamma                float64
}

func init() {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train MODEL --data FILE --loss OUT=KIND[,OUT=KIND] --out TRAINED.onnx [flags]",
		Short: "Fine-tune a multi-task model (trunk, heads or both) on local data",
		Long: `Trains the model's float weights toward the tasks given a loss, and writes the
result as ONNX in the original graph's structure with updated weights.

Data: .npz with arrays keyed by the model's input and output names (like Keras'
fit(x={...}, y={...})), or .csv with --csv-map. A NaN target marks a missing
label: that row is left out of that task's loss.

Losses: mse mae huber bce bce_logits cce sparse_cce sparse_cce_logits nll.
Weighting: fixed (default) rlw uncertainty dwa gradnorm mgda pcgrad cagrad imtl.
Ctrl-C stops after the current batch and writes the checkpoint (with --checkpoint).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runTrain(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "training data (.npz or .csv)")
	fl.StringVar(&f.val, "val", "", "validation data (.npz or .csv)")
	fl.Float64Var(&f.valSplit, "val-split", 0, "hold out this fraction of the training rows (the last ones) for validation")
	fl.StringArrayVar(&f.csv, "csv-map", nil, "CSV columns per array: NAME=col1:col2 (repeatable or comma-separated)")
	fl.StringArrayVar(&f.losses, "loss", nil, "task losses: OUTPUT=KIND[,OUTPUT=KIND]")
	fl.StringArrayVar(&f.weights, "loss-weights", nil, "fixed task weights: OUTPUT=W[,OUTPUT=W] (default 1)")
	fl.StringVar(&f.weighting, "weighting", "fixed", "task weighting: fixed rlw uncertainty dwa gradnorm mgda pcgrad cagrad imtl")
	fl.StringVar(&f.optimizer, "optimizer", "adam", "sgd, adam or adamw")
	fl.Float64Var(&f.lr, "lr", 0.001, "learning rate")
	fl.Float64Var(&f.momentum, "momentum", 0, "SGD momentum")
	fl.Float64Var(&f.wd, "weight-decay", -1, "weight decay (L2 for sgd/adam, decoupled for adamw; default 0, adamw 0.01)")
	fl.IntVar(&f.batch, "batch", 32, "batch size")
	fl.IntVar(&f.epochs, "epochs", 10, "epochs")
	fl.BoolVar(&f.shuffle, "shuffle", true, "shuffle rows each epoch (false: in order, last batch may be smaller)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for shuffling and random weighting")
	fl.StringVar(&f.freeze, "freeze", "none", "none, trunk, heads, or a regular expression over parameter names")
	fl.Float64Var(&f.softShare, "soft-share", 0, "soft parameter sharing λ between task towers of equal shape")
	fl.Float64Var(&f.clipNorm, "clip-norm", 0, "clip gradients to this global L2 norm (0: off)")
	fl.IntVar(&f.earlyStop, "early-stop", 0, "stop after N epochs without validation improvement, keeping the best weights")
	fl.StringVar(&f.checkpoint, "checkpoint", "", "write a checkpoint to this folder after every epoch")
	fl.StringVar(&f.resume, "resume", "", "resume from a checkpoint folder")
	fl.StringVar(&f.schedule, "schedule", "", "learning-rate schedule: step or cosine")
	fl.IntVar(&f.stepSize, "step-size", 10, "epochs between decays (--schedule step)")
	fl.Float64Var(&f.gamma, "gamma", 0.1, "decay factor (--schedule step)")
	fl.StringVar(&f.plot, "plot", "", "draw per-task loss curves to FILE.png or FILE.svg")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON line per epoch instead of tables")
	fl.StringVar(&f.out, "out", "", "where to write the trained model (.onnx)")
	rootCmd.AddCommand(cmd)
}

func runTrain(cmd *cobra.Command, modelPath string, f *trainFlags) error {
	if f.data == "" || f.out == "" {
		return fmt.Errorf("--data and --out are required")
	}
	losses, err := parseAssignments("loss", f.losses)
	if err != nil {
		return err
	}
	weightSpecs, err := parseAssignments("loss-weights", f.weights)
	if err != nil {
		return err
	}
	weights := map[string]float64{}
	for k, v := range weightSpecs {
		w, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("--loss-weights %s=%s: %w", k, v, err)
		}
		weights[k] = w
	}
	csvSpecs, err := parseAssignments("csv-map", f.csv)
	if err != nil {
		return err
	}
	csvMap := map[string][]string{}
	for k, v := range csvSpecs {
		csvMap[k] = strings.Split(v, ":")
	}
	m, err := importer.Load(modelPath)
	if err != nil {
		return err
	}
	trainSet, err := loadData(f.data, csvMap)
	if err != nil {
		return err
	}
	var valSet *train.Dataset
	switch {
	case f.val != "":
		if valSet, err = loadData(f.val, csvMap); err != nil {
			return err
		}
	case f.valSplit > 0:
		trainSet, valSet = trainSet.Split(f.valSplit)
	}
	wd := f.wd
	if wd < 0 && f.optimizer != "adamw" {
		wd = 0
	}
	cfg := train.Config{
		Losses: losses, LossWeights: weights,
		Weighting: train.WeightingConfig{Kind: f.weighting, Seed: f.seed},
		Optimizer: train.OptimizerConfig{Kind: f.optimizer, LR: f.lr, Momentum: f.momentum, WeightDecay: wd},
		Schedule:  train.Schedule{Kind: f.schedule, StepSize: f.stepSize, Gamma: f.gamma, Epochs: f.epochs},
		BatchSize: f.batch, Epochs: f.epochs, NoShuffle: !f.shuffle, Seed: f.seed, Freeze: f.freeze,
		ClipNorm: f.clipNorm, EarlyStop: f.earlyStop, SoftShare: f.softShare,
		Checkpoint: f.checkpoint, Resume: f.resume,
	}
	tr, err := train.NewTrainer(m, cfg)
	if err != nil {
		return err
	}
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if !f.asJSON {
		fmt.Fprintf(out, "training %s: tasks %s; %d trainable tensors, %d frozen; %d training rows", modelPath,
			strings.Join(tr.Tasks(), ", "), len(tr.Trainable()), len(tr.Frozen()), trainSet.Rows)
		if valSet != nil {
			fmt.Fprintf(out, ", %d validation rows", valSet.Rows)
		}
		fmt.Fprintln(out)
		before, _, err := tr.Evaluate(evalSet(trainSet, valSet))
		if err == nil {
			fmt.Fprintln(out, "before training ("+evalName(valSet)+"):")
			printMetrics(out, tr.Tasks(), before)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	enc := json.NewEncoder(out)
	cb := train.Callbacks{
		OnBatch: func(p train.Progress) {
			if !f.asJSON {
				drawProgress(errw, p)
			}
		},
		OnEpoch: func(s train.EpochStats) {
			if f.asJSON {
				enc.Encode(s)
				return
			}
			fmt.Fprint(errw, "\r\033[K")
			printEpoch(out, tr.Tasks(), s)
		},
	}
	res, fitErr := tr.Fit(ctx, trainSet, valSet, cb)
	if fitErr != nil && res == nil {
		return fitErr
	}
	if fitErr != nil && ctx.Err() == nil {
		return fitErr
	}
	if f.plot != "" && len(res.Epochs) > 0 {
		if err := plotCurves(f.plot, tr.Tasks(), res.Epochs); err != nil {
			return err
		}
	}
	recipe, _ := json.Marshal(map[string]any{
		"losses": losses, "loss_weights": weights, "weighting": f.weighting, "optimizer": f.optimizer,
		"lr": f.lr, "momentum": f.momentum, "weight_decay": wd, "batch": f.batch, "epochs": f.epochs,
		"shuffle": f.shuffle, "seed": f.seed, "freeze": f.freeze, "clip_norm": f.clipNorm, "soft_share": f.softShare,
	})
	meta := []graph.KeyValue{
		{Key: "mtlrun.train.recipe", Value: string(recipe)},
		{Key: "mtlrun.train.time", Value: time.Now().UTC().Format(time.RFC3339)},
		{Key: "mtlrun.train.data", Value: res.Fingerprint},
		{Key: "mtlrun.train.epochs_run", Value: strconv.Itoa(len(res.Epochs))},
	}
	if err := exporter.Save(m, f.out, exporter.Options{Metadata: meta}); err != nil {
		return err
	}
	if !f.asJSON {
		if len(res.Epochs) > 0 {
			fmt.Fprintln(out, "after training ("+evalName(valSet)+"):")
			after, _, err := tr.Evaluate(evalSet(trainSet, valSet))
			if err == nil {
				printMetrics(out, tr.Tasks(), after)
			}
		}
		if res.Stopped != "" {
			fmt.Fprintf(out, "stopped: %s\n", res.Stopped)
		}
		fmt.Fprintf(out, "wrote %s\n", f.out)
	}
	if ctx.Err() != nil {
		return &exitError{code: 130, msg: "interrupted" + checkpointNote(f.checkpoint)}
	}
	return nil
}

func checkpointNote(dir string) string {
	if dir == "" {
		return ""
	}
	return "; checkpoint in " + dir + " (continue with --resume " + dir + ")"
}

func evalSet(trainSet, valSet *train.Dataset) *train.Dataset {
	if valSet != nil && valSet.Rows > 0 {
		return valSet
	}
	return trainSet
}

func evalName(valSet *train.Dataset) string {
	if valSet != nil && valSet.Rows > 0 {
		return "validation"
	}
	return "training data"
}

func metricString(m train.TaskMetrics) string {
	if train.IsClassification(m.Kind) {
		return fmt.Sprintf("loss %.4f  acc %.3f", m.Loss, m.Accuracy)
	}
	return fmt.Sprintf("loss %.4f  mse %.4g  mae %.4g", m.Loss, m.MSE, m.MAE)
}

func printMetrics(w io.Writer, tasks []string, m map[string]train.TaskMetrics) {
	for _, t := range tasks {
		fmt.Fprintf(w, "  %-20s %-10s %s\n", t, m[t].Kind, metricString(m[t]))
	}
}

func printEpoch(w io.Writer, tasks []string, s train.EpochStats) {
	fmt.Fprintf(w, "epoch %d  lr %.3g  loss %.4f", s.Epoch, s.LR, s.TrainLoss)
	if s.Val != nil {
		fmt.Fprintf(w, "  val_loss %.4f", s.ValLoss)
	}
	fmt.Fprintf(w, "  (%.1fs, %.0f samples/s)\n", s.Seconds, s.Samples)
	for _, t := range tasks {
		fmt.Fprintf(w, "  %-20s train %s", t, metricString(s.Train[t]))
		if s.Val != nil {
			fmt.Fprintf(w, " | val %s", metricString(s.Val[t]))
		}
		if wt, ok := s.Weights[t]; ok {
			fmt.Fprintf(w, " | w %.3g", wt)
		}
		fmt.Fprintln(w)
	}
}

func drawProgress(w io.Writer, p train.Progress) {
	const width = 30
	done := width * p.Batch / max(p.Batches, 1)
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	if done < width {
		bar = bar[:done] + ">" + bar[done+1:]
	}
	fmt.Fprintf(w, "\repoch %d/%d [%s] %d/%d loss %.4f %.0f samples/s", p.Epoch, p.Epochs, bar, p.Batch, p.Batches, p.RunningLoss, p.SamplesPerSecond)
}
