package train

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestLossGradientsMatchFiniteDifferences(t *testing.T) {
	nan := math.NaN()
	probs := []float32{0.2, 0.5, 0.3, 0.6, 0.1, 0.3, 0.25, 0.25, 0.5}
	cases := []struct {
		kind   LossKind
		pred   []float32
		shape  []int
		target *tensor.Tensor
	}{
		{"mse", []float32{0.5, -1, 2, 0.3, 0.1, 0.9}, []int{3, 2}, tensor.From([]int{3, 2}, []float64{1, 0, nan, 1, 0.5, 0.2})},
		{"mae", []float32{0.5, -1, 2, 0.3}, []int{4, 1}, tensor.From([]int{4, 1}, []float64{1, 0, 1.5, 1})},
		{"huber", []float32{0.5, -1, 2, 0.3}, []int{4, 1}, tensor.From([]int{4, 1}, []float64{1, 0.8, 0.2, 1})},
		{"bce", []float32{0.2, 0.7, 0.9}, []int{3, 1}, tensor.From([]int{3, 1}, []float64{0, 1, 0})},
		{"bce_logits", []float32{-1.2, 0.7, 2.9}, []int{3, 1}, tensor.From([]int{3, 1}, []float64{0, 1, nan})},
		{"cce", probs, []int{3, 3}, tensor.From([]int{3, 3}, []float64{0, 1, 0, 1, 0, 0, 0, 0, 1})},
		{"sparse_cce", probs, []int{3, 3}, tensor.From([]int{3}, []int64{1, 0, 2})},
		{"sparse_cce_logits", []float32{0.2, -1, 3, 0.1, 0.1, 0.4}, []int{2, 3}, tensor.From([]int{2}, []float64{2, nan})},
		{"nll", []float32{-1.2, -0.5, -2, -0.1, -3, -0.7}, []int{2, 3}, tensor.From([]int{2}, []int64{1, 0})},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			res, err := TaskLoss(c.kind, tensor.From(c.shape, c.pred), c.target)
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float64, len(c.pred))
			for i, v := range c.pred {
				x[i] = float64(v)
			}
			want := make([]float64, len(x))
			fd.Gradient(want, func(v []float64) float64 {
				p := make([]float32, len(v))
				for i := range v {
					p[i] = float32(v[i])
				}
				r, err := TaskLoss(c.kind, tensor.From(c.shape, p), c.target)
				if err != nil {
					t.Fatal(err)
				}
				return r.Loss
			}, x, &fd.Settings{Formula: fd.Central, Step: 1e-3})
			got := res.Grad.Float32s()
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 2e-3*(1+math.Abs(want[i])) {
					t.Errorf("d/dpred[%d] = %g, finite differences %g", i, got[i], want[i])
				}
			}
		})
	}
}

func TestLossValues(t *testing.T) {
	// hand-computed references
	nan := math.NaN()
	cases := []struct {
		kind   LossKind
		pred   *tensor.Tensor
		target *tensor.Tensor
		want   float64
		rows   int
	}{
		// mean over the valid row only: ((0.5-1)^2 + (-1-0)^2)/2
		{"mse", tensor.From([]int{2, 2}, []float32{0.5, -1, 3, 3}), tensor.From([]int{2, 2}, []float64{1, 0, nan, 0}), 0.625, 1},
		{"mae", tensor.From([]int{2}, []float32{1, -1}), tensor.From([]int{2}, []float64{0, 1}), 1.5, 2},
		{"huber", tensor.From([]int{2}, []float32{0.5, 3}), tensor.From([]int{2}, []float64{0, 0}), (0.125 + 2.5) / 2, 2},
		{"nll", tensor.From([]int{1, 2}, []float32{-0.25, -1.5}), tensor.From([]int{1}, []int64{1}), 1.5, 1},
		{"sparse_cce", tensor.From([]int{1, 2}, []float32{0.75, 0.25}), tensor.From([]int{1}, []int64{0}), -math.Log(0.75), 1},
		{"bce", tensor.From([]int{1, 1}, []float32{0.25}), tensor.From([]int{1, 1}, []float64{1}), -math.Log(0.25), 1},
	}
	for _, c := range cases {
		r, err := TaskLoss(c.kind, c.pred, c.target)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Loss-c.want) > 1e-6 || r.Rows != c.rows {
			t.Errorf("%s: loss %g over %d rows, want %g over %d", c.kind, r.Loss, r.Rows, c.want, c.rows)
		}
	}
}

// TestWeightedLosses: Keras' sample_weight and class_weight scale each
// row's loss and gradient; the mean still divides by the labelled rows.
func TestWeightedLosses(t *testing.T) {
	nan := math.NaN()
	pred := tensor.From([]int{3, 1}, []float32{1, 2, 3})
	target := tensor.From([]int{3, 1}, []float64{0, 0, nan})
	rw, err := RowWeights(MSE, target, tensor.From([]int{3}, []float32{2, 0.5, 7}), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := MSE.Eval(pred, target, rw)
	if err != nil {
		t.Fatal(err)
	}
	// (2·1² + 0.5·2²) / 2 rows; d/dp = w·2(p−y)/2
	if res.Loss != 2 || res.Grad.Float32s()[0] != 2 || res.Grad.Float32s()[1] != 1 || res.Grad.Float32s()[2] != 0 {
		t.Errorf("weighted mse: loss %v grad %v, want 2 and [2 1 0]", res.Loss, res.Grad.Float32s())
	}

	logits := tensor.From([]int{2, 2}, []float32{0, 0, 0, 0})
	labels := tensor.From([]int{2}, []int64{0, 1})
	rw, err = RowWeights(SparseCCELogits, labels, nil, []float64{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	res, err = SparseCCELogits.Eval(logits, labels, rw)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * math.Ln2; math.Abs(res.Loss-want) > 1e-12 {
		t.Errorf("class-weighted cross-entropy %v, want (1·ln2 + 3·ln2)/2 = %v", res.Loss, want)
	}

	for _, c := range []struct {
		kind   LossKind
		target *tensor.Tensor
		sample *tensor.Tensor
		class  []float64
		want   []float64
		err    string
	}{
		{kind: "sparse_cce", target: tensor.From([]int{2}, []int64{1, 0}), sample: tensor.From([]int{2, 1}, []float32{1, 2}), class: []float64{1, 3}, want: []float64{3, 2}},
		{kind: "bce", target: tensor.From([]int{3, 1}, []float32{1, 0, float32(nan)}), class: []float64{0.5, 4}, want: []float64{4, 0.5, 0}},
		{kind: "cce", target: tensor.From([]int{2, 3}, []float32{0, 0, 1, 1, 0, 0}), class: []float64{2, 1, 5}, want: []float64{5, 2}},
		{kind: "mse", target: tensor.From([]int{2, 1}, []float32{0, 1}), class: []float64{1, 2}, err: "classification"},
		{kind: "nll", target: tensor.From([]int{2}, []int64{0, 2}), class: []float64{1, 2}, err: "class 2"},
		{kind: "mse", target: tensor.From([]int{2, 1}, []float32{0, 1}), sample: tensor.From([]int{2}, []float32{1, -1}), err: "non-negative"},
		{kind: "mse", target: tensor.From([]int{2, 1}, []float32{0, 1}), sample: tensor.From([]int{3}, []float32{1, 1, 1}), err: "one per row"},
	} {
		got, err := RowWeights(c.kind, c.target, c.sample, c.class)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, %v; want an error about %q", c.kind, got, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.kind, got, err, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %v, want %v", c.kind, got, c.want)
				break
			}
		}
	}
}
