package parity

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// requireORT fails the test with install instructions when onnxruntime is
// missing, unless MTLRUN_SKIP_ORT=1 asks to skip instead.
func requireORT(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("MTLRUN_SKIP_ORT") == "1" {
			t.Skipf("onnxruntime unavailable (MTLRUN_SKIP_ORT=1): %v", err)
		}
		t.Fatalf("onnxruntime unavailable: %v\n(set MTLRUN_SKIP_ORT=1 to skip the parity tests)", err)
	}
}

func parityModels(t *testing.T) []string {
	root := fixtures.RepoRoot()
	var dirs []string
	for _, pat := range []string{"models/*", "testdata/pytorch/*", "testdata/rnn/*", "testdata/train/*"} {
		d, _ := filepath.Glob(filepath.Join(root, pat))
		dirs = append(dirs, d...)
	}
	keras := filepath.Join(fixtures.Shared(), "testdata", "keras")
	if _, err := os.Stat(keras); err == nil {
		d, _ := filepath.Glob(filepath.Join(keras, "*"))
		dirs = append(dirs, d...)
	} else if fixtures.Required() {
		t.Fatalf("shared Keras models missing: %s", fixtures.HowToGetShared)
	}
	var out []string
	for _, d := range dirs {
		// onnxruntime itself rejects this file at run time (see SOURCES.md)
		if strings.HasSuffix(d, "keras2onnx_cnn_two_outputs") {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
			out = append(out, filepath.Join(d, "model.onnx"))
		}
	}
	return out
}

// ortCannot lists fixtures onnxruntime 1.24's CPU provider cannot run (they
// are checked against PyTorch or numpy references in ops/rnn instead).
var ortCannot = map[string]string{
	// activation_alpha holds one value, consumed (per the spec, in order) by
	// the one activation that takes an alpha; onnxruntime indexes alphas by
	// activation position and aborts the process on an out-of-range read
	"rnn_activations_bidirectional":      "onnxruntime aborts on a partial activation_alpha list",
	"gru_float64_lbr1":                   "onnxruntime's GRU does not support double",
	"lstm_float64_bidirectional_seqlens": "onnxruntime's LSTM does not support double",
}

// TestAgreesWithONNXRuntime: every model, random inputs at batch 1, 3, 17
// and (with a time axis) sequence lengths 1, 7, 64, rtol 1e-4, atol 1e-5.
func TestAgreesWithONNXRuntime(t *testing.T) {
	requireORT(t)
	checked := 0
	for _, path := range parityModels(t) {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			if why, ok := ortCannot[name]; ok {
				t.Skip(why)
			}
			m, err := importer.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ins, outs []string
			for _, v := range m.Graph.FeedInputs() {
				ins = append(ins, v.Name)
			}
			kinds := map[string]string{}
			for _, o := range m.Graph.Outputs {
				outs = append(outs, o.Name)
				kinds[o.Name] = ClassifierKind(m.Graph, o.Name)
			}
			o, err := Open(path, Options{})
			if err != nil {
				if strings.Contains(err.Error(), "not supported") || strings.Contains(err.Error(), "does not support") {
					// onnxruntime's CPU kernels lack e.g. layout=1 recurrences;
					// these cases are checked against PyTorch/numpy instead
					t.Skipf("onnxruntime cannot run this model: %s", firstLine(err))
				}
				t.Fatal(err)
			}
			defer o.Close()
			type shape struct{ batch, time int }
			var shapes []shape
			for _, b := range []int{1, 3, 17} {
				if HasTimeAxis(m.Graph) {
					for _, T := range []int{1, 7, 64} {
						shapes = append(shapes, shape{b, T})
					}
				} else {
					shapes = append(shapes, shape{b, 7})
				}
			}
			// single-node recurrent cases take weights and lengths as inputs:
			// their own test data is what makes sense to feed
			fromTestSet := strings.Contains(path, filepath.Join("testdata", "rnn"))
			if fromTestSet {
				shapes = shapes[:1]
			}
			for _, sh := range shapes {
				batch, T := sh.batch, sh.time
				{
					x, err := RandomInputs(m, batch, T, uint64(batch*100+T))
					if fromTestSet {
						x, err = testSetInputs(filepath.Dir(path), ins)
					}
					if err != nil {
						t.Fatal(err)
					}
					want, err := o.Run(x, outs)
					if err != nil {
						// shapes the model cannot take (a fixed batch, a time
						// axis shorter than a valid convolution): onnxruntime
						// refuses them, and so must mtlrun
						if _, ourErr := sess.Run(x); ourErr == nil {
							t.Errorf("batch %d time %d: onnxruntime refused (%s) but mtlrun ran", batch, T, firstLine(err))
						}
						continue
					}
					got, err := sess.Run(x)
					if err != nil {
						t.Fatalf("batch %d time %d: mtlrun: %v", batch, T, err)
					}
					for _, r := range Compare(got, want, outs, kinds, 1e-4, 1e-5) {
						if !r.Pass || (r.DecisionsAgree != nil && !*r.DecisionsAgree) {
							t.Errorf("batch %d time %d output %q: %s (max abs %.3g, rel %.3g)", batch, T, r.Name, r.Reason, r.MaxAbsErr, r.MaxRelErr)
						}
					}
					checked++
				}
			}
		})
	}
	t.Logf("%d model/shape combinations agree with onnxruntime", checked)
}

// testSetInputs reads test_data_set_0's inputs by position.
func testSetInputs(dir string, names []string) (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	for i, n := range names {
		t, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			return nil, err
		}
		out[n] = t
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
