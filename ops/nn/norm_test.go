package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestBatchNormalization(t *testing.T) {
	x := tensor.From([]int{2, 2, 2}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	scale := tensor.From([]int{2}, []float32{1, 2})
	bias := tensor.From([]int{2}, []float32{0, 1})
	mean := tensor.From([]int{2}, []float32{3, 5})
	vr := tensor.From([]int{2}, []float32{4, 1})
	eps := float32(1e-5)
	op := newOp(t, "BatchNormalization", 15, graph.Attrs{"epsilon": aFloat(eps)}, 5, 1)
	want := make([]float64, 8)
	xv := toF64(x)
	for i := range want {
		c := (i / 2) % 2
		m, v, s, b := []float64{3, 5}[c], []float64{4, 1}[c], []float64{1, 2}[c], []float64{0, 1}[c]
		want[i] = (xv[i]-m)/math.Sqrt(v+float64(eps))*s + b
	}
	near(t, "inference", runOp(t, op, x, scale, bias, mean, vr)[0], x.Shape, want, 1e-6)
	near(t, "inference float64", runOp(t, op, toTensor64(x), toTensor64(scale), toTensor64(bias), toTensor64(mean), toTensor64(vr))[0], x.Shape, want, 1e-9)

	// training mode: batch statistics, updated running statistics
	op = newOp(t, "BatchNormalization", 15, graph.Attrs{"epsilon": aFloat(eps), "momentum": aFloat(0.8), "training_mode": aInt(1)}, 5, 3)
	out := runOp(t, op, x, scale, bias, mean, vr)
	if len(out) != 3 {
		t.Fatalf("%d outputs", len(out))
	}
	// channel 0 holds 1,2,5,6 (mean 3.5, var 4.25); channel 1 holds 3,4,7,8 (mean 5.5, var 4.25)
	near(t, "running mean", out[1], []int{2}, []float64{3*0.8 + 3.5*0.2, 5*0.8 + 5.5*0.2}, 1e-6)
	near(t, "running var", out[2], []int{2}, []float64{4*0.8 + 4.25*0.2, 1*0.8 + 4.25*0.2}, 1e-6)
	for i := range want {
		c := (i / 2) % 2
		want[i] = (xv[i]-[]float64{3.5, 5.5}[c])/math.Sqrt(4.25+float64(eps))*[]float64{1, 2}[c] + []float64{0, 1}[c]
	}
	near(t, "training Y", out[0], x.Shape, want, 1e-6)
	if _, err := op.Run([]*tensor.Tensor{x, scale, bias, tensor.From([]int{3}, []float32{1, 2, 3}), vr}); err == nil {
		t.Error("mean of the wrong length: no error")
	}
}

func TestLayerNormalization(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []struct {
		axis  int64
		shape []int
		bias  bool
	}{{-1, []int{3, 8}, true}, {1, []int{2, 3, 4}, false}, {0, []int{2, 5}, true}, {-2, []int{2, 3, 4}, true}} {
		x := randF32(rng, tc.shape...)
		ax, _ := ops.NormAxis(int(tc.axis), len(tc.shape))
		norm := tc.shape[ax:]
		scale := randF32(rng, norm...)
		in := []*tensor.Tensor{x, scale}
		var bias *tensor.Tensor
		if tc.bias {
			bias = randF32(rng, norm[len(norm)-1]) // broadcast over the normalised shape
			in = append(in, bias)
		}
		out := runOp(t, newOp(t, "LayerNormalization", 17, graph.Attrs{"axis": aInt(tc.axis)}, len(in), 3), in...)
		rows, n := prodInts(tc.shape[:ax]), prodInts(norm)
		xv, sv := toF64(x), toF64(scale)
		want, means, invs := make([]float64, len(xv)), make([]float64, rows), make([]float64, rows)
		for r := 0; r < rows; r++ {
			var m, v float64
			for j := 0; j < n; j++ {
				m += xv[r*n+j]
			}
			m /= float64(n)
			for j := 0; j < n; j++ {
				v += (xv[r*n+j] - m) * (xv[r*n+j] - m)
			}
			inv := 1 / math.Sqrt(v/float64(n)+1e-5)
			means[r], invs[r] = m, inv
			for j := 0; j < n; j++ {
				want[r*n+j] = (xv[r*n+j] - m) * inv * sv[j]
				if bias != nil {
					want[r*n+j] += toF64(bias)[j%norm[len(norm)-1]]
				}
			}
		}
		statShape := append([]int{}, tc.shape[:ax]...)
		for range norm {
			statShape = append(statShape, 1)
		}
		near(t, "Y", out[0], tc.shape, want, 1e-5)
		near(t, "Mean", out[1], statShape, means, 1e-5)
		near(t, "InvStdDev", out[2], statShape, invs, 1e-5)
	}
}

func TestInstanceNormalization(t *testing.T) {
	x := tensor.From([]int{1, 2, 3}, []float32{1, 2, 3, 2, 4, 6})
	scale := tensor.From([]int{2}, []float32{1, 2})
	bias := tensor.From([]int{2}, []float32{0, 1})
	got := runOp(t, newOp(t, "InstanceNormalization", 6, graph.Attrs{"epsilon": aFloat(0)}, 3, 1), x, scale, bias)[0]
	s := math.Sqrt(1.5)
	near(t, "Y", got, x.Shape, []float64{-s, 0, s, 1 - 2*s, 1, 1 + 2*s}, 1e-6)
}

func TestMeanVarianceNormalization(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	x := randF32(rng, 2, 3, 2, 2)
	got := runOp(t, newOp(t, "MeanVarianceNormalization", 13, nil, 1, 1), x)[0]
	// default axes [0,2,3]: every channel has mean 0 and variance 1 afterwards
	g := toF64(got)
	for c := 0; c < 3; c++ {
		var s, s2 float64
		for n := 0; n < 2; n++ {
			for i := 0; i < 4; i++ {
				v := g[(n*3+c)*4+i]
				s += v
				s2 += v * v
			}
		}
		if math.Abs(s/8) > 1e-5 || math.Abs(s2/8-1) > 1e-4 {
			t.Fatalf("channel %d: mean %v, E[x²] %v", c, s/8, s2/8)
		}
	}
}

func TestLRN(t *testing.T) {
	x := tensor.From([]int{1, 3, 1, 1}, []float32{1, 2, 3})
	got := runOp(t, newOp(t, "LRN", 13, graph.Attrs{"size": aInt(3), "alpha": aFloat(0.3), "beta": aFloat(0.5), "bias": aFloat(2)}, 1, 1), x)[0]
	want := []float64{1 / math.Sqrt(2+0.1*5), 2 / math.Sqrt(2+0.1*14), 3 / math.Sqrt(2+0.1*13)}
	near(t, "LRN", got, x.Shape, want, 1e-6)
}
