package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// refSoftmax normalises x over [outer, n, inner] in float64.
func refSoftmax(x []float64, outer, n, inner int, log bool) []float64 {
	y := make([]float64, len(x))
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			mx := math.Inf(-1)
			for j := 0; j < n; j++ {
				mx = math.Max(mx, x[(o*n+j)*inner+i])
			}
			var s float64
			for j := 0; j < n; j++ {
				s += math.Exp(x[(o*n+j)*inner+i] - mx)
			}
			for j := 0; j < n; j++ {
				p := (o*n+j)*inner + i
				if log {
					y[p] = x[p] - mx - math.Log(s)
				} else {
					y[p] = math.Exp(x[p]-mx) / s
				}
			}
		}
	}
	return y
}

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	shape := []int{2, 3, 4}
	cases := []struct {
		opset, axis     int
		hasAxis         bool
		outer, n, inner int
	}{
		{13, 0, false, 6, 4, 1},  // default -1
		{13, 1, true, 2, 3, 4},   // single middle axis
		{13, -3, true, 1, 2, 12}, // first axis
		{11, 0, false, 2, 12, 1}, // legacy default 1: flatten [3,4]
		{11, 2, true, 6, 4, 1},
		{11, 0, true, 1, 24, 1},
	}
	for _, tc := range cases {
		for _, log := range []bool{false, true} {
			for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
				name := "Softmax"
				if log {
					name = "LogSoftmax"
				}
				t.Run(fmt.Sprintf("%s/opset%d/axis%d/%v/%v", name, tc.opset, tc.axis, tc.hasAxis, dt), func(t *testing.T) {
					x := randOf(rng, dt, shape...)
					xv := toF64(x)
					for i := range xv { // large values: stability
						xv[i] *= 40
					}
					x = tensor.From(shape, xv)
					if dt == tensor.Float32 {
						f := make([]float32, len(xv))
						for i, v := range xv {
							f[i] = float32(v)
						}
						x = tensor.From(shape, f)
					}
					attrs := graph.Attrs{}
					if tc.hasAxis {
						attrs["axis"] = aInt(int64(tc.axis))
					}
					got := runOp(t, newOp(t, name, tc.opset, attrs, 1, 1), x)[0]
					near(t, name, got, shape, refSoftmax(toF64(x), tc.outer, tc.n, tc.inner, log), 1e-5)
				})
			}
		}
	}
	inf := float32(math.Inf(1))
	got := runOp(t, newOp(t, "Softmax", 13, nil, 1, 1), tensor.From([]int{1, 3}, []float32{-inf, 0, 0}))[0]
	near(t, "with -inf", got, []int{1, 3}, []float64{0, 0.5, 0.5}, 1e-7)
}

func TestReduce(t *testing.T) {
	x := tensor.From([]int{2, 3, 2}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	cases := []struct {
		op    string
		opset int
		axes  []int64 // nil: attribute absent / no input
		input bool    // axes as the second input
		keep  int64
		noop  bool
		shape []int
		want  []float64
	}{
		{"ReduceSum", 11, []int64{1}, false, 1, false, []int{2, 1, 2}, []float64{9, 12, 27, 30}},
		{"ReduceSum", 13, []int64{1}, true, 0, false, []int{2, 2}, []float64{9, 12, 27, 30}},
		{"ReduceSum", 13, nil, true, 0, false, []int{}, []float64{78}},
		{"ReduceSum", 13, nil, true, 1, true, []int{2, 3, 2}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"ReduceSum", 13, []int64{0, 2}, true, 1, false, []int{1, 3, 1}, []float64{18, 26, 34}},
		{"ReduceMean", 13, []int64{-1}, false, 1, false, []int{2, 3, 1}, []float64{1.5, 3.5, 5.5, 7.5, 9.5, 11.5}},
		{"ReduceMean", 18, []int64{0}, true, 0, false, []int{3, 2}, []float64{4, 5, 6, 7, 8, 9}},
		{"ReduceMax", 13, []int64{1, 2}, false, 0, false, []int{2}, []float64{6, 12}},
		{"ReduceMin", 18, []int64{0, 2}, true, 0, false, []int{3}, []float64{1, 3, 5}},
		{"ReduceProd", 13, []int64{0}, false, 0, false, []int{3, 2}, []float64{7, 16, 27, 40, 55, 72}},
		{"ReduceL1", 13, nil, false, 0, false, []int{}, []float64{78}},
		{"ReduceL2", 13, []int64{2}, false, 0, false, []int{2, 3}, []float64{math.Sqrt(5), 5, math.Sqrt(61), math.Sqrt(113), math.Sqrt(181), math.Sqrt(265)}},
		{"ReduceSumSquare", 13, []int64{0}, false, 0, false, []int{3, 2}, []float64{50, 68, 90, 116, 146, 180}},
		{"ReduceLogSumExp", 13, []int64{2}, false, 0, false, []int{2, 3}, []float64{2.3132617, 4.3132617, 6.3132617, 8.3132617, 10.3132617, 12.3132617}},
		{"ReduceLogSum", 13, nil, false, 1, false, []int{1, 1, 1}, []float64{math.Log(78)}},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int64, tensor.Int32} {
			if dt.IsInteger() && (tc.op == "ReduceMean" || tc.op == "ReduceL2" || tc.op == "ReduceLogSumExp" || tc.op == "ReduceLogSum") {
				continue
			}
			t.Run(fmt.Sprintf("%s/%d/%v/%v", tc.op, tc.opset, tc.axes, dt), func(t *testing.T) {
				attrs := graph.Attrs{"keepdims": aInt(tc.keep)}
				if tc.noop {
					attrs["noop_with_empty_axes"] = aInt(1)
				}
				in := []*tensor.Tensor{castTo(x, dt)}
				if tc.input {
					if tc.axes != nil {
						in = append(in, tensor.From([]int{len(tc.axes)}, tc.axes))
					}
				} else if tc.axes != nil {
					attrs["axes"] = aInts(tc.axes...)
				}
				got := runOp(t, newOp(t, tc.op, tc.opset, attrs, len(in), 1), in...)[0]
				if got.DType != dt {
					t.Fatalf("dtype %v, want %v", got.DType, dt)
				}
				near(t, tc.op, got, tc.shape, tc.want, 1e-6)
			})
		}
	}
	u := tensor.From([]int{2, 2}, []uint8{3, 250, 7, 1})
	near(t, "uint8 max", runOp(t, newOp(t, "ReduceMax", 13, graph.Attrs{"axes": aInts(1)}, 1, 1), u)[0], []int{2, 1}, []float64{250, 7}, 0)
	i8 := tensor.From([]int{2, 2}, []int8{3, -100, 7, 1})
	near(t, "int8 min", runOp(t, newOp(t, "ReduceMin", 13, graph.Attrs{"axes": aInts(0), "keepdims": aInt(0)}, 1, 1), i8)[0], []int{2}, []float64{3, -100}, 0)
	if _, err := newOp(t, "ReduceSum", 13, nil, 2, 1).Run([]*tensor.Tensor{x, tensor.From([]int{1}, []int64{3})}); err == nil {
		t.Error("axis out of range: no error")
	}
}

func castTo(x *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	v, err := fromFloat64(dt, x.Shape, toF64(x))
	if err != nil {
		panic(err)
	}
	return v
}

func TestArgMax(t *testing.T) {
	x := tensor.From([]int{2, 3}, []float32{1, 5, 5, 7, 2, 7})
	cases := []struct {
		op         string
		axis, keep int64
		last       bool
		shape      []int
		want       []float64
	}{
		{"ArgMax", 1, 1, false, []int{2, 1}, []float64{1, 0}},
		{"ArgMax", 1, 0, true, []int{2}, []float64{2, 2}},
		{"ArgMax", 0, 1, false, []int{1, 3}, []float64{1, 0, 1}},
		{"ArgMin", -1, 0, false, []int{2}, []float64{0, 1}},
		{"ArgMin", 0, 0, true, []int{3}, []float64{0, 1, 0}},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Int32, tensor.Uint8} {
			attrs := graph.Attrs{"axis": aInt(tc.axis), "keepdims": aInt(tc.keep), "select_last_index": aInt(b2i(tc.last))}
			got := runOp(t, newOp(t, tc.op, 13, attrs, 1, 1), castTo(x, dt))[0]
			if got.DType != tensor.Int64 {
				t.Fatalf("%s: dtype %v", tc.op, got.DType)
			}
			near(t, fmt.Sprintf("%s axis %d last %v %v", tc.op, tc.axis, tc.last, dt), got, tc.shape, tc.want, 0)
		}
	}
}

// The contiguous-block fast path and the general loop agree on random data.
func TestReduceFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	x := randF32(rng, 3, 4, 5, 2)
	for name := range reducers {
		for _, axes := range [][]int64{{0}, {1, 2}, {3}, {0, 1, 2, 3}, {1, 3}} {
			// float16 input takes the general float64 loop
			h := make([]tensor.Float16Bits, x.Len())
			xr := make([]float32, x.Len())
			for i, v := range x.Float32s() {
				h[i] = tensor.Float32ToFloat16(v)
				xr[i] = tensor.Float16ToFloat32(h[i])
			}
			ref := runOp(t, newOp(t, name, 13, graph.Attrs{"axes": aInts(axes...)}, 1, 1), tensor.From(x.Shape, xr))[0]
			slow := runOp(t, newOp(t, name, 13, graph.Attrs{"axes": aInts(axes...)}, 1, 1), tensor.From(x.Shape, h))[0]
			near(t, fmt.Sprintf("%s %v", name, axes), slow, ref.Shape, toF64(ref), 2e-3)
		}
	}
}
