package math

import (
	gomath "math"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The random ops are checked by their statistics: the sample mean and
// standard deviation of 200 000 draws within 6 standard errors of the
// distribution's (so a wrong scale, offset or range fails, chance does not),
// and by reproducibility under a seed.
func TestRandomStatistics(t *testing.T) {
	const n = 200000
	attrs := func(kv map[string]graph.Attr) graph.Attrs { return graph.Attrs(kv) }
	f := func(v float32) graph.Attr { return graph.Attr{Type: graph.AttrFloat, Float: v} }
	shape := graph.Attr{Type: graph.AttrInts, Ints: []int64{n}}
	cases := []struct {
		op        string
		attrs     graph.Attrs
		in        *tensor.Tensor
		mean, std float64
		lo, hi    float64
		dtype     tensor.DType
	}{
		{"RandomNormal", attrs(map[string]graph.Attr{"shape": shape, "mean": f(2), "scale": f(3), "seed": f(1)}), nil, 2, 3, gomath.Inf(-1), gomath.Inf(1), tensor.Float32},
		{"RandomUniform", attrs(map[string]graph.Attr{"shape": shape, "low": f(-1), "high": f(5), "seed": f(2), "dtype": {Type: graph.AttrInt, Int: int64(tensor.Float64)}}), nil, 2, 6 / gomath.Sqrt(12), -1, 5, tensor.Float64},
		{"RandomNormalLike", attrs(map[string]graph.Attr{"seed": f(3)}), tensor.From([]int{n}, make([]float64, n)), 0, 1, gomath.Inf(-1), gomath.Inf(1), tensor.Float64},
		{"RandomUniformLike", attrs(map[string]graph.Attr{"seed": f(4)}), tensor.From([]int{n}, make([]float32, n)), 0.5, gomath.Sqrt(1.0 / 12), 0, 1, tensor.Float32},
		{"Bernoulli", attrs(map[string]graph.Attr{"seed": f(5)}), tensor.From([]int{n}, filled(n, 0.3)), 0.3, gomath.Sqrt(0.3 * 0.7), 0, 1, tensor.Float32},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			run := func() *tensor.Tensor {
				k, err := ops.New(&ops.Config{OpType: c.op, Opset: 18, Attrs: c.attrs})
				if err != nil {
					t.Fatal(err)
				}
				var in []*tensor.Tensor
				if c.in != nil {
					in = []*tensor.Tensor{c.in}
				}
				out, err := k.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				return out[0]
			}
			y := run()
			if y.DType != c.dtype || y.Len() != n {
				t.Fatalf("got %v, want %v[%d]", y, c.dtype, n)
			}
			v, _ := tensor.AsFloat64(y)
			var s, s2 float64
			for _, x := range v {
				if x < c.lo || x > c.hi {
					t.Fatalf("draw %v outside [%v, %v]", x, c.lo, c.hi)
				}
				s += x
				s2 += x * x
			}
			mean := s / n
			std := gomath.Sqrt(s2/n - mean*mean)
			if se := c.std / gomath.Sqrt(n); gomath.Abs(mean-c.mean) > 6*se {
				t.Errorf("mean %.5f, want %.5f ± %.5f", mean, c.mean, 6*se)
			}
			if gomath.Abs(std-c.std) > 0.02*c.std {
				t.Errorf("std %.5f, want %.5f ± 2%%", std, c.std)
			}
			// the same seed draws the same values in a new kernel
			w, _ := tensor.AsFloat64(run())
			for i := range v {
				if v[i] != w[i] {
					t.Fatalf("seeded draws differ at %d: %v vs %v", i, v[i], w[i])
				}
			}
		})
	}
}

func filled(n int, p float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = p
	}
	return v
}
