package train

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestLossGradientsMatchFiniteDifferences(t *testing.T) {
	nan := math.NaN()
	probs := []float32{0.2, 0.5, 0.3, 0.6, 0.1, 0.3, 0.25, 0.25, 0.5}
	cases := []struct {
		kind   string
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
		t.Run(c.kind, func(t *testing.T) {
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
		kind   string
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
