package parity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/tensor"
)

// requireORT lets the test run only with onnxruntime loaded. Like every
// external fixture: a library that is absent skips the test with one line,
// or fails it with the install instructions when MTLRUN_REQUIRE_FIXTURES=1
// (CI). A library that is there but does not load always fails, unless
// MTLRUN_SKIP_ORT=1 asks to skip whatever the reason.
func requireORT(t *testing.T) {
	t.Helper()
	err := Available()
	switch {
	case err == nil:
	case os.Getenv("MTLRUN_SKIP_ORT") == "1":
		t.Skipf("skipped because MTLRUN_SKIP_ORT=1: %v", err)
	case errors.Is(err, ErrLibraryMissing) && !fixtures.Required():
		t.Skipf("onnxruntime library not found (set %s, or run bash scripts/install-onnxruntime.sh; MTLRUN_REQUIRE_FIXTURES=1 makes this a failure)", LibraryEnv)
	default:
		t.Fatalf("%v\n(set MTLRUN_SKIP_ORT=1 to skip the tests that need onnxruntime)", err)
	}
}

// ortCannot lists fixtures onnxruntime 1.24's CPU provider cannot run; they
// are checked against PyTorch/numpy references elsewhere (ops/rnn, mtlrun
// test). Any other model onnxruntime refuses fails the test.
var ortCannot = map[string]string{
	"gru_float64_lbr1":                       "onnxruntime's GRU has no double kernel",
	"lstm_float64_bidirectional_seqlens":     "onnxruntime's LSTM has no double kernel",
	"gru_lbr0_layout1_bidirectional_seqlens": "onnxruntime's GRU does not implement layout=1",
	"gru_lbr1_layout1_bidirectional_seqlens": "onnxruntime's GRU does not implement layout=1",
	"lstm_layout1_bidirectional_seqlens":     "onnxruntime's LSTM does not implement layout=1",
	"lstm_layout1_seqlens":                   "onnxruntime's LSTM does not implement layout=1",
	"rnn_layout1_seqlens_clip":               "onnxruntime's RNN does not implement layout=1",
	"rnn_activations_bidirectional":          "onnxruntime aborts on a partial activation_alpha list (see ortHazard)",
}

// parityModels lists every model the parity test covers, by display name.
func parityModels(t *testing.T) map[string]string {
	root := fixtures.RepoRoot()
	out := map[string]string{}
	add := func(prefix, pattern string) {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			dir := filepath.Base(filepath.Dir(p))
			name := prefix + dir
			if b := filepath.Base(p); b != "model.onnx" {
				name += "/" + strings.TrimSuffix(b, ".onnx")
			}
			out[name] = p
		}
	}
	add("models/", filepath.Join(root, "models", "*", "model.onnx"))
	add("pytorch/", filepath.Join(root, "testdata", "pytorch", "*", "model.onnx"))
	add("rnn/", filepath.Join(root, "testdata", "rnn", "*", "model.onnx"))
	// training fixtures: the model before and the fine-tuned model after
	add("train/", filepath.Join(root, "testdata", "train", "*", "model.onnx"))
	add("train/", filepath.Join(root, "testdata", "train", "*", "trained.onnx"))
	keras := filepath.Join(fixtures.Shared(), "testdata", "keras")
	if _, err := os.Stat(keras); err != nil {
		if fixtures.Required() {
			t.Fatalf("shared models missing (MTLRUN_REQUIRE_FIXTURES=1): %s", fixtures.HowToGetShared)
		}
		t.Logf("shared models not checked: %s is missing (%s; MTLRUN_REQUIRE_FIXTURES=1 makes this a failure)", keras, fixtures.HowToGetShared)
	} else {
		add("keras/", filepath.Join(keras, "*", "model.onnx"))
		// onnxruntime itself rejects this file at run time (see SOURCES.md)
		delete(out, "keras/keras2onnx_cnn_two_outputs")
	}
	if len(out) < 10 {
		t.Fatalf("found only %d models under %s", len(out), root)
	}
	return out
}

// TestAgreesWithONNXRuntime runs every model in mtlrun and in onnxruntime
// on random inputs at batch 1, 3 and 17 and (for models with a free time
// axis) sequence lengths 1, 7 and 64, plus each model's own test sets, and
// requires every output within rtol 1e-4, atol 1e-5.
func TestAgreesWithONNXRuntime(t *testing.T) {
	requireORT(t)
	const rtol, atol = 1e-4, 1e-5
	models := parityModels(t)
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	sort.Strings(names)
	var checks, refused, skipped atomic.Int64
	start := time.Now()
	t.Run("models", func(t *testing.T) {
		for _, name := range names {
			path := models[name]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				base := filepath.Base(filepath.Dir(path))
				m, err := importer.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				c, err := NewChecker(path, m, Options{})
				var re *RunError
				if errors.As(err, &re) && re.Runtime == "onnxruntime" {
					if why, ok := ortCannot[base]; ok {
						skipped.Add(1)
						t.Skipf("%s: %s", why, firstLine(err))
					}
					t.Fatalf("onnxruntime cannot run this model (add it to ortCannot if that is expected): %v", err)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				type shape struct{ batch, time int }
				var shapes []shape
				times := []int{0}
				if HasTimeAxis(m) {
					times = []int{1, 7, 64}
				}
				for _, b := range []int{1, 3, 17} {
					for _, T := range times {
						shapes = append(shapes, shape{b, T})
					}
				}
				seen := map[string]bool{}
				ran := 0
				check := func(label string, x map[string]*tensor.Tensor) {
					rep, err := c.Check(x, rtol, atol)
					if errors.As(err, &re) && re.Runtime == "onnxruntime" {
						if why, ok := ortCannot[base]; ok {
							skipped.Add(1)
							t.Skipf("%s: %s", why, firstLine(err))
						}
						// inputs the model cannot take (e.g. a sequence shorter
						// than an unpadded convolution): not a parity question
						refused.Add(1)
						t.Logf("%s: onnxruntime refuses these inputs: %s", label, firstLine(err))
						return
					}
					if err != nil {
						t.Errorf("%s: %v", label, err)
						return
					}
					ran++
					checks.Add(1)
					if !rep.Pass {
						t.Errorf("%s: outputs differ from onnxruntime:\n%s", label, rep)
					}
				}
				for _, sh := range shapes {
					x, err := RandomInputs(m, max(sh.batch, 1), max(sh.time, 1), uint64(1000*sh.batch+sh.time))
					if err != nil {
						t.Fatal(err)
					}
					key := fmt.Sprint(shapesOf(x))
					if seen[key] {
						continue // a fixed-size model: the same shapes again
					}
					seen[key] = true
					label := fmt.Sprintf("batch %d", sh.batch)
					if sh.time > 0 {
						label += fmt.Sprintf(" time %d", sh.time)
					}
					check(label, x)
				}
				sets, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "test_data_set_*"))
				if filepath.Base(path) != "model.onnx" {
					sets = nil // the test sets belong to model.onnx
				}
				for _, dir := range sets {
					x, err := testSetInputs(dir, m.Graph.FeedInputs())
					if err != nil {
						t.Fatalf("%s: %v", dir, err)
					}
					check(filepath.Base(dir), x)
				}
				if ran == 0 {
					t.Errorf("onnxruntime refused every input tried")
				}
			})
		}
	})
	t.Logf("%d models, %d input sets agree with onnxruntime (rtol %g, atol %g); %d input sets refused by onnxruntime, %d models onnxruntime cannot run; %v",
		len(names), checks.Load(), rtol, atol, refused.Load(), skipped.Load(), time.Since(start).Round(time.Millisecond))
}

func shapesOf(x map[string]*tensor.Tensor) []string {
	var out []string
	for k, t := range x {
		out = append(out, k+fmt.Sprint(t.Shape))
	}
	sort.Strings(out)
	return out
}

// testSetInputs reads a model-zoo test set's input_N.pb files, by position
// among the feed inputs (or by the name stored in the file).
func testSetInputs(dir string, feeds []graph.ValueInfo) (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	for i, v := range feeds {
		p := filepath.Join(dir, fmt.Sprintf("input_%d.pb", i))
		if _, err := os.Stat(p); err != nil {
			continue // optional inputs may be absent
		}
		t, err := importer.ReadTensorFile(p)
		if err != nil {
			return nil, err
		}
		out[v.Name] = t
	}
	return out, nil
}

func firstLine(err error) string {
	s := fmt.Sprint(err)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
