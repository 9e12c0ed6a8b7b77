package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// trainCmd finds the train subcommand.
func trainCmd(t *testing.T) *cobra.Command {
	t.Helper()
	for _, c := range rootCmd.Commands() {
		if c.Name() == "train" {
			return c
		}
	}
	t.Fatal("no train command")
	return nil
}

// resetTrainFlags puts every train flag back to its default (cobra keeps
// values across in-process runs).
func resetTrainFlags(t *testing.T) {
	trainCmd(t).Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			sv.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
}

// seedData writes an .npz for the seed model: rows sequences of T steps
// with width features; edit may change the arrays before writing.
func seedData(t *testing.T, dir, name string, rows, T, width int, edit func(map[string]*tensor.Tensor)) string {
	t.Helper()
	x, y1, y2 := make([]float32, rows*T*width), make([]float32, rows), make([]float32, rows)
	for i := range x {
		x[i] = float32(i%7)/3 - 1
	}
	for i := range y1 {
		y1[i], y2[i] = x[i*T*width], x[(i+1)*T*width-1]
	}
	arrays := map[string]*tensor.Tensor{"input": tensor.From([]int{rows, T, width}, x),
		"output1": tensor.From([]int{rows, 1}, y1), "output2": tensor.From([]int{rows, 1}, y2)}
	if edit != nil {
		edit(arrays)
	}
	path := filepath.Join(dir, name)
	if err := tensorio.WriteNPZ(path, arrays); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainRefusesWhatItWouldIgnore: every flag value or data fault that
// used to be accepted and ignored, or to panic, is refused with exit status
// 2 and a message that says what is wrong (issue 13, Why items 4–6).
func TestTrainRefusesWhatItWouldIgnore(t *testing.T) {
	dir := t.TempDir()
	good := seedData(t, dir, "good.npz", 24, 4, 1, nil)
	wide := seedData(t, dir, "wide.npz", 24, 4, 2, nil)
	nanIn := seedData(t, dir, "nan_in.npz", 24, 4, 1, func(a map[string]*tensor.Tensor) {
		a["input"].Float32s()[4*17+2] = float32(math.NaN())
	})
	frac := seedData(t, dir, "frac.npz", 24, 4, 1, func(a map[string]*tensor.Tensor) {
		y := a["output1"].Float32s()
		for i := range y {
			y[i] = 0
		}
		y[5] = 0.5
	})
	outOfRange := seedData(t, dir, "range.npz", 24, 4, 1, func(a map[string]*tensor.Tensor) {
		y := a["output1"].Float32s()
		for i := range y {
			y[i] = 0
		}
		y[9] = 3
	})
	infTarget := seedData(t, dir, "inf.npz", 24, 4, 1, func(a map[string]*tensor.Tensor) {
		a["output2"].Float32s()[11] = float32(math.Inf(1))
	})
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(empty, []byte("a,b,c\n"), 0o644)
	out := filepath.Join(dir, "out.onnx")
	base := func(data string, extra ...string) []string {
		return append([]string{"train", seed, "--data", data, "--out", out, "--loss", "output1=mse,output2=mse", "--epochs", "1", "--batch", "8"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want []string // substrings of the message
	}{
		{"input feature width", base(wide), []string{`"input"`, "[24 4 2]", "[batch time 1]", "axis 2 is 2, want 1"}},
		{"val-split 1.5", base(good, "--val-split", "1.5"), []string{"--val-split 1.5", "between 0 and 1"}},
		{"val-split 1", base(good, "--val-split", "1"), []string{"--val-split 1", "between 0 and 1"}},
		{"val-split leaving no rows", base(good, "--val-split", "0.01"), []string{"--val-split 0.01", "0 validation rows"}},
		{"unknown schedule", base(good, "--schedule", "linear"), []string{`unknown schedule "linear"`, "none, step, cosine, exp"}},
		{"freeze matching nothing", base(good, "--freeze", "^nope"), []string{`"^nope" matches no parameter`, "head1.weight", "onnx::LSTM_110"}},
		{"early-stop without validation", base(good, "--early-stop", "2"), []string{"--early-stop", "--val FILE or --val-split"}},
		{"epochs 0", base(good, "--epochs", "0"), []string{"--epochs 0"}},
		{"batch 0", base(good, "--batch", "0"), []string{"--batch 0"}},
		{"batch -4", base(good, "--batch", "-4"), []string{"--batch -4"}},
		{"momentum with adam", base(good, "--optimizer", "adam", "--momentum", "0.9"), []string{"--momentum", "sgd only"}},
		{"negative clip-norm", base(good, "--clip-norm", "-1"), []string{"--clip-norm", "-1"}},
		{"negative soft-share", base(good, "--soft-share", "-0.5"), []string{"--soft-share", "-0.5"}},
		{"output twice in --loss", []string{"train", seed, "--data", good, "--out", out, "--loss", "output1=mse,output1=mae"}, []string{"--loss names output1 twice"}},
		{"loss-weights under uncertainty", base(good, "--weighting", "uncertainty", "--loss-weights", "output1=2"), []string{"--loss-weights", "uncertainty sets the weights itself"}},
		{"loss-weights under pcgrad", base(good, "--weighting", "pcgrad", "--loss-weights", "output1=2"), []string{"--loss-weights", "pcgrad sets the weights itself"}},
		{"fractional sparse label", []string{"train", seed, "--data", frac, "--out", out, "--loss", "output1=sparse_cce,output2=mse", "--epochs", "1"}, []string{`"output1"`, "frac.npz row 5", "label 0.5 is not a class id"}},
		{"sparse label out of range", []string{"train", seed, "--data", outOfRange, "--out", out, "--loss", "output1=sparse_cce,output2=mse", "--epochs", "1"}, []string{"range.npz row 9", "label 3 is out of range", "1 classes"}},
		{"zero training rows", base(empty, "--csv-map", "input=a,output1=b,output2=c"), []string{"training data has no rows"}},
		{"NaN input", base(nanIn), []string{`"input"`, "nan_in.npz row 17", "must be finite"}},
		{"Inf target", base(infTarget), []string{`"output2"`, "inf.npz row 11", "infinite"}},
		{"gamma without a schedule", base(good, "--gamma", "0.5"), []string{"--gamma only applies"}},
		{"step-size without step", base(good, "--schedule", "cosine", "--step-size", "2"), []string{"--step-size only applies"}},
		{"unknown on-nan", base(good, "--on-nan", "ignore"), []string{`unknown action "ignore"`}},
		{"out is a folder", []string{"train", seed, "--data", good, "--out", dir, "--loss", "output1=mse"}, []string{"is a folder", "trained.onnx"}},
		{"csv-map with npz", base(good, "--csv-map", "input=a"), []string{"--csv-map applies to .csv data only"}},
		{"resume from nothing", base(good, "--resume", filepath.Join(dir, "nope")), []string{"no checkpoint here"}},
		{"checkpoint-every without checkpoint", base(good, "--checkpoint-every", "3"), []string{"--checkpoint-every needs --checkpoint"}},
		{"negative lr", base(good, "--lr", "-0.1"), []string{"--lr", "positive"}},
		{"negative weight decay", base(good, "--weight-decay", "-1"), []string{"--weight-decay -1"}},
		{"non-finite update", base(good, "--optimizer", "sgd", "--lr", "1e38"), []string{": step ", "the weights were left as they were", "--on-nan skip-batch"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resetTrainFlags(t)
			_, err := mtlrun(t, c.args...)
			if err == nil {
				t.Fatalf("accepted %v", c.args)
			}
			t.Logf("%v", err)
			var ee *exitError
			if errors.As(err, &ee) && ee.code != 2 {
				t.Errorf("exit status %d, want 2", ee.code)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err.Error(), w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run wrote %s", out)
				os.Remove(out)
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestTrainAcceptsWhatItDocuments: the settings that now work as documented.
func TestTrainAcceptsWhatItDocuments(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.onnx")
	// a NaN target is a missing label; an unrelated array is ignored with a note
	data := seedData(t, dir, "data.npz", 24, 4, 1, func(a map[string]*tensor.Tensor) {
		a["output1"].Float32s()[3] = float32(math.NaN())
		a["notes"] = tensor.From([]int{3}, []float32{1, 2, 3})
	})
	for _, extra := range [][]string{
		{"--schedule", "exp", "--gamma", "0.5", "--epochs", "2", "--json"},
		{"--schedule", "step", "--step-size", "1", "--val-split", "0.25", "--early-stop", "1"},
		{"--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01"},
		{"--weighting", "uncertainty"},
		{"--weighting", "rlw", "--json"},
		{"--weighting", "mgda", "--json"},
		{"--optimizer", "sgd", "--lr", "1e38", "--on-nan", "skip-batch", "--json"},
	} {
		resetTrainFlags(t)
		args := append([]string{"train", seed, "--data", data, "--out", out, "--loss", "output1=mse,output2=mse", "--batch", "8", "--epochs", "1"}, extra...)
		var stdout, stderr bytes.Buffer
		rootCmd.SetOut(&stdout)
		rootCmd.SetErr(&stderr)
		rootCmd.SetArgs(args)
		if err := rootCmd.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, stdout.String())
		}
		if !strings.Contains(stderr.String(), `note: ignoring array "notes" in the training data`) {
			t.Errorf("no note about the unrelated array: %q", stderr.String())
		}
		if strings.Contains(stderr.String(), "\r") {
			t.Errorf("progress bar written to a non-terminal: %q", stderr.String())
		}
		if extra[len(extra)-2] == "skip-batch" {
			if !strings.Contains(stdout.String(), `"skipped_batches":`) {
				t.Errorf("--on-nan skip-batch: want skipped batches:\n%s", stdout.String())
			}
		} else if extra[len(extra)-1] == "--json" && !strings.Contains(stdout.String(), `"task_weights":{"output1":`) {
			t.Errorf("%v: no task_weights in %s", extra, stdout.String())
		}
		if extra[0] == "--weighting" && extra[1] == "uncertainty" && !strings.Contains(stdout.String(), "| w 0.5") {
			t.Errorf("the table shows no task weights:\n%s", stdout.String())
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("model written %v, want 0644", st.Mode().Perm())
		}
		if extra[1] == "exp" && (!strings.Contains(stdout.String(), `"lr":0.001`) || !strings.Contains(stdout.String(), `"lr":0.0005`)) {
			t.Errorf("--schedule exp --gamma 0.5 should halve the rate each epoch:\n%s", stdout.String())
		}
		os.Remove(out)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestTrainSignalHelper runs `mtlrun` with the arguments in
// MTLRUN_SIGNAL_HELPER_ARGS and exits as main does; TestTrainSignals
// starts it as a separate process to send it signals.
func TestTrainSignalHelper(t *testing.T) {
	args := os.Getenv("MTLRUN_SIGNAL_HELPER_ARGS")
	if args == "" {
		t.Skip("helper process of TestTrainSignals")
	}
	rootCmd.SetArgs(strings.Split(args, "\x1f"))
	err := rootCmd.Execute()
	var ee *exitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee):
		os.Exit(ee.code)
	}
	os.Exit(2)
}

// TestTrainSignals: SIGINT and SIGTERM stop after the current batch, write
// the checkpoint and the model, and exit 130 and 143; two Ctrl-C in a row
// exit at once with nothing partial on disk. The checkpoint resumes.
func TestTrainSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes: -short")
	}
	dir := t.TempDir()
	data := seedData(t, dir, "data.npz", 64, 4, 1, nil)
	cases := []struct {
		name    string
		signals []os.Signal
		code    int
		model   bool // the model is written
	}{
		{"SIGINT", []os.Signal{os.Interrupt}, 130, true},
		{"SIGTERM", []os.Signal{syscall.SIGTERM}, 143, true},
		{"two SIGINTs", []os.Signal{os.Interrupt, os.Interrupt}, 130, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := t.TempDir()
			ck, out := filepath.Join(sub, "ck"), filepath.Join(sub, "out.onnx")
			args := []string{"train", seed, "--data", data, "--out", out, "--loss", "output1=mse,output2=mse",
				"--epochs", "100000", "--batch", "4", "--checkpoint", ck, "--json"}
			cmd := exec.Command(os.Args[0], "-test.run=^TestTrainSignalHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "MTLRUN_SIGNAL_HELPER_ARGS="+strings.Join(args, "\x1f"))
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !fileExists(filepath.Join(ck, "state.json")) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no checkpoint after 60 s: %s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			for i, s := range c.signals {
				if i > 0 {
					// the second once the first is being handled (two at
					// once may reach the process as one)
					for !strings.Contains(stderr.String(), "stopping after the current batch") {
						time.Sleep(time.Millisecond)
					}
				}
				cmd.Process.Signal(s)
			}
			err := cmd.Wait()
			var xe *exec.ExitError
			if !errors.As(err, &xe) || xe.ExitCode() != c.code {
				t.Fatalf("exit %v, want status %d; stderr:\n%s", err, c.code, stderr.String())
			}
			if got := fileExists(out); got != c.model {
				// the first signal's orderly stop may win the race against
				// the second; what was written must then be whole
				if _, err := importer.Load(out); c.model || err != nil {
					t.Errorf("model written: %v, want %v (%v)", got, c.model, err)
				}
				t.Logf("the orderly stop finished before the second signal")
			}
			left, _ := filepath.Glob(filepath.Join(sub, ".*"))
			if more, _ := filepath.Glob(filepath.Join(sub, "*.tmp")); len(more) > 0 {
				left = append(left, more...)
			}
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			// the checkpoint is whole and resumes to the end of the next
			// epoch, with weights bit-identical to a run never stopped
			epochs := resumeEpochs(t, ck)
			resetTrainFlags(t)
			resumed, whole := filepath.Join(sub, "resumed.onnx"), filepath.Join(sub, "whole.onnx")
			if _, err := mtlrun(t, "train", seed, "--data", data, "--out", resumed, "--loss", "output1=mse,output2=mse",
				"--batch", "4", "--resume", ck, "--checkpoint-every", "1", "--checkpoint", ck, "--json", "--epochs", epochs); err != nil {
				t.Fatalf("resume: %v", err)
			}
			resetTrainFlags(t)
			if _, err := mtlrun(t, "train", seed, "--data", data, "--out", whole, "--loss", "output1=mse,output2=mse",
				"--batch", "4", "--json", "--epochs", epochs); err != nil {
				t.Fatalf("uninterrupted: %v", err)
			}
			a, err1 := importer.Load(resumed)
			b, err2 := importer.Load(whole)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			for name, w := range b.Graph.Initializers {
				wv, ok := w.Data.([]float32)
				if !ok {
					continue
				}
				for i, v := range a.Graph.Initializers[name].Float32s() {
					if math.Float32bits(v) != math.Float32bits(wv[i]) {
						t.Fatalf("%s[%d]: resumed %v, uninterrupted %v (%s epochs)", name, i, v, wv[i], epochs)
					}
				}
			}
			t.Logf("stopped in epoch %s; resumed run bit-identical to an uninterrupted one", epochs)
		})
	}
}

// resumeEpochs gives an --epochs value one past the checkpoint's epoch.
func resumeEpochs(t *testing.T, ck string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ck, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Run struct {
			Epoch int `json:"epoch"`
		} `json:"run"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(st.Run.Epoch + 1)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// lockedBuffer is a strings.Builder safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
