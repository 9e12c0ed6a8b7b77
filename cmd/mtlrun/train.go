package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/exitgate"
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
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, part)
			}
			if prev, dup := out[k]; dup {
				return nil, fmt.Errorf("--%s names %s twice (%s=%s and %s=%s); give each once", flag, k, k, prev, k, v)
			}
			out[k] = v
		}
	}
	return out, nil
}

// parseClassWeights reads "OUT=w0,w1,..." items, one task per item.
func parseClassWeights(items []string) (map[string][]float64, error) {
	out := map[string][]float64{}
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("--class-weight %q: want OUTPUT=w0,w1,...", item)
		}
		for _, part := range strings.Split(v, ",") {
			w, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
			if err != nil {
				return nil, fmt.Errorf("--class-weight %s: %w", item, err)
			}
			out[k] = append(out[k], w)
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
	if len(csvMap) > 0 {
		return nil, fmt.Errorf("--csv-map applies to .csv data only; %s is read as .npz (drop --csv-map)", path)
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
	checkpointEvery      int
	schedule             string
	stepSize             int
	gamma                float64
	classWeights         []string
	onNaN                string
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
label: that row is left out of that task's loss. An array "sample_weight/OUT"
weights each row of task OUT (Keras' sample_weight); --class-weight weights
the classes of a classification task (Keras' class_weight).

Losses: mse mae huber bce bce_logits cce sparse_cce sparse_cce_logits nll.
Weighting: fixed (default) rlw uncertainty dwa gradnorm mgda pcgrad cagrad imtl.
Ctrl-C (or SIGTERM) stops after the current batch, writes the checkpoint (with
--checkpoint) and the model, and exits 130 (143); a second Ctrl-C exits at once,
writing nothing. --resume continues at the next batch, bit-identical to a run
that was never stopped.`,
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
	fl.StringArrayVar(&f.classWeights, "class-weight", nil, "class weights of a classification task: OUTPUT=w0,w1,... (repeat per task)")
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
	fl.StringVar(&f.checkpoint, "checkpoint", "", "write a checkpoint to this folder after every epoch (and on Ctrl-C)")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 0, "also write the checkpoint every N steps (0: per epoch only)")
	fl.StringVar(&f.onNaN, "on-nan", "stop", "a NaN/Inf loss or gradient: stop (error, no model written) or skip-batch")
	fl.StringVar(&f.resume, "resume", "", "resume from a checkpoint folder")
	fl.StringVar(&f.schedule, "schedule", "none", "learning-rate schedule per epoch: none, step, cosine or exp")
	fl.IntVar(&f.stepSize, "step-size", 10, "epochs between decays (--schedule step)")
	fl.Float64Var(&f.gamma, "gamma", 0, "decay factor per decay (--schedule step, default 0.1) or per epoch (exp, default 0.9)")
	fl.StringVar(&f.plot, "plot", "", "draw per-task loss curves to FILE.png or FILE.svg")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON line per epoch instead of tables")
	fl.StringVar(&f.out, "out", "", "where to write the trained model (.onnx)")
	rootCmd.AddCommand(cmd)
}

// usageError is a flag that cannot work as given: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// checkTrainFlags refuses flag values and combinations that would be
// silently ignored or cannot work; the recipe itself is checked by
// train.Config.Validate.
func checkTrainFlags(cmd *cobra.Command, f *trainFlags) error {
	changed := cmd.Flags().Changed
	switch {
	case f.data == "" || f.out == "":
		return usageError("--data and --out are required")
	case f.epochs < 1:
		return usageError("--epochs %d: train for at least 1 epoch", f.epochs)
	case f.batch < 1:
		return usageError("--batch %d: the batch size must be at least 1", f.batch)
	case f.val != "" && changed("val-split"):
		return usageError("--val and --val-split both give validation data; use one")
	case changed("val-split") && !(f.valSplit > 0 && f.valSplit < 1):
		return usageError("--val-split %v: want a fraction between 0 and 1 (exclusive), e.g. 0.2 holds out the last 20%% of the rows", f.valSplit)
	case changed("step-size") && f.schedule != "step":
		return usageError("--step-size only applies to --schedule step (got --schedule %s)", f.schedule)
	case changed("gamma") && f.schedule != "step" && f.schedule != "exp":
		return usageError("--gamma only applies to --schedule step or exp (got --schedule %s)", f.schedule)
	case changed("momentum") && f.optimizer != "sgd":
		return usageError("--momentum applies to --optimizer sgd only; %s keeps its own moment estimates (drop --momentum, or use sgd)", f.optimizer)
	case changed("weight-decay") && !(f.wd >= 0):
		return usageError("--weight-decay %v: want a number ≥ 0", f.wd)
	case changed("checkpoint-every") && f.checkpoint == "":
		return usageError("--checkpoint-every needs --checkpoint DIR")
	case f.earlyStop > 0 && f.val == "" && !changed("val-split"):
		return usageError("--early-stop watches the validation loss: give --val FILE or --val-split F")
	}
	if st, err := os.Stat(f.out); err == nil && st.IsDir() {
		return usageError("--out %s is a folder; give the model's file name, e.g. %s", f.out, filepath.Join(f.out, "trained.onnx"))
	}
	if st, err := os.Stat(filepath.Dir(f.out)); err != nil || !st.IsDir() {
		return usageError("--out %s: the folder %s does not exist", f.out, filepath.Dir(f.out))
	}
	if f.plot != "" {
		if ext := strings.ToLower(filepath.Ext(f.plot)); ext != ".png" && ext != ".svg" {
			return usageError("--plot %s: use a .png or .svg file", f.plot)
		}
	}
	return nil
}

func runTrain(cmd *cobra.Command, modelPath string, f *trainFlags) error {
	if err := checkTrainFlags(cmd, f); err != nil {
		return err
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
			return fmt.Errorf("--loss-weights %s=%s: not a number", k, v)
		}
		weights[k] = w
	}
	classWeights, err := parseClassWeights(f.classWeights)
	if err != nil {
		return err
	}
	csvSpecs, err := parseAssignments("csv-map", f.csv)
	if err != nil {
		return err
	}
	csvMap := map[string][]string{}
	for k, v := range csvSpecs {
		csvMap[k] = strings.Split(v, ":")
	}
	wd := f.wd
	if wd < 0 && f.optimizer != "adamw" {
		wd = 0
	}
	// the flags' names become the recipe's typed values
	lossKinds, err := train.ParseLosses(losses)
	if err != nil {
		return err
	}
	weighting, err := train.ParseWeighting(f.weighting)
	if err != nil {
		return err
	}
	optimizer, err := train.ParseOptimizer(f.optimizer)
	if err != nil {
		return err
	}
	schedule, err := train.ParseSchedule(f.schedule)
	if err != nil {
		return err
	}
	onNaN, err := train.ParseOnNaN(f.onNaN)
	if err != nil {
		return err
	}
	cfg := train.Config{
		Losses: lossKinds, LossWeights: weights,
		Weighting: train.WeightingConfig{Kind: weighting, Seed: f.seed},
		Optimizer: train.OptimizerConfig{Kind: optimizer, LR: f.lr, Momentum: f.momentum, WeightDecay: wd},
		Schedule:  train.Schedule{Kind: schedule, StepSize: f.stepSize, Gamma: f.gamma, Epochs: f.epochs},
		BatchSize: f.batch, Epochs: f.epochs, NoShuffle: !f.shuffle, Seed: f.seed, Freeze: f.freeze,
		ClipNorm: f.clipNorm, EarlyStop: f.earlyStop, SoftShare: f.softShare, ClassWeights: classWeights,
		Checkpoint: f.checkpoint, CheckpointEvery: f.checkpointEvery, Resume: f.resume, OnNaN: onNaN,
	}
	// the recipe alone first, so that a bad flag is reported before any
	// file is read
	if err := cfg.Validate(); err != nil {
		return err
	}
	m, err := importer.Load(modelPath)
	if err != nil {
		return err
	}
	tr, err := train.NewTrainer(m, cfg)
	if err != nil {
		return err
	}
	trainSet, err := loadData(f.data, csvMap)
	if err != nil {
		return err
	}
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	trainSet, notes, err := tr.CheckData(trainSet, "training")
	if err != nil {
		return err
	}
	var valSet *train.Dataset
	switch {
	case f.val != "":
		if valSet, err = loadData(f.val, csvMap); err != nil {
			return err
		}
		var more []string
		if valSet, more, err = tr.CheckData(valSet, "validation"); err != nil {
			return err
		}
		notes = append(notes, more...)
	case f.valSplit > 0:
		if trainSet, valSet, err = trainSet.Split(f.valSplit); err != nil {
			return usageError("%v", err)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(errw, "note:", n)
	}
	if f.resume != "" {
		epoch, done, err := tr.Resume(trainSet)
		if err != nil {
			return err
		}
		if !f.asJSON {
			fmt.Fprintf(out, "resuming from %s: epoch %d, after batch %d\n", f.resume, epoch, done)
		}
	}
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
	ctx, sig, stop := notifyStop(f)
	defer stop()
	enc := json.NewEncoder(out)
	bar := isTerminal(errw) && !f.asJSON
	cb := train.Callbacks{
		OnBatch: func(p train.Progress) {
			if bar {
				drawProgress(errw, p)
			}
		},
		OnEpoch: func(s train.EpochStats) {
			if f.asJSON {
				enc.Encode(s)
				return
			}
			if bar {
				fmt.Fprint(errw, "\r\033[K")
			}
			printEpoch(out, tr.Tasks(), s)
		},
	}
	res, fitErr := tr.Fit(ctx, trainSet, valSet, cb)
	if fitErr != nil && (res == nil || ctx.Err() == nil) {
		if bar {
			fmt.Fprint(errw, "\r\033[K")
		}
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
		"class_weights": classWeights, "schedule": f.schedule,
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
		code := 130
		if s := sig(); s == syscall.SIGTERM {
			code = 143
		}
		return &exitError{code: code, msg: "interrupted" + checkpointNote(f.checkpoint)}
	}
	return nil
}

// notifyStop cancels the returned context on the first SIGINT or SIGTERM
// (training stops after the current batch); a second one exits at once
// with 130 (143), removing the checkpoint being written, if any, so that
// nothing partial is left. sig reports the first signal.
func notifyStop(f *trainFlags) (ctx context.Context, sig func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var first os.Signal
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				mu.Lock()
				again := first != nil
				if !again {
					first = s
				}
				mu.Unlock()
				if !again {
					fmt.Fprintln(os.Stderr, "mtlrun: stopping after the current batch (press Ctrl-C again to stop at once)")
					cancel()
					continue
				}
				exitgate.Close() // nothing more is made behind the removals
				if f.checkpoint != "" {
					os.RemoveAll(filepath.Clean(f.checkpoint) + ".tmp")
				}
				removeTemps(f.out)
				code := 130
				if s == syscall.SIGTERM {
					code = 143
				}
				fmt.Fprintln(os.Stderr, "mtlrun: stopped at once; nothing more was written")
				os.Exit(code)
			}
		}
	}()
	sig = func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	return ctx, sig, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// removeTemps deletes the exporter's temporary files for path, if any.
func removeTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// isTerminal reports whether w is a terminal (the progress bar's \r
// redraws would flood a log file or pipe).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
	if train.LossKind(m.Kind).Classification() {
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
