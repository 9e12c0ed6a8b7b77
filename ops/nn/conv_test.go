package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// refConv is a direct N-d convolution in float64 over a resolved geometry.
func refConv(x, w, b []float64, N, C, M, grp int, g *geometry) []float64 {
	nd := len(g.in)
	cg, mg := C/grp, M/grp
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	inStr := tensor.Strides(g.in)
	y := make([]float64, N*M*oSize)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			gi := m / mg
			o := 0
			forEachIndex(g.out, func(oidx []int) {
				s := 0.0
				if b != nil {
					s = b[m]
				}
				for c := 0; c < cg; c++ {
					ki := 0
					forEachIndex(g.k, func(kidx []int) {
						off, ok := 0, true
						for a := 0; a < nd; a++ {
							p := oidx[a]*g.s[a] - g.pb[a] + kidx[a]*g.d[a]
							if p < 0 || p >= g.in[a] {
								ok = false
							}
							off += p * inStr[a]
						}
						if ok {
							s += x[(n*C+gi*cg+c)*inSize+off] * w[(m*cg+c)*kSize+ki]
						}
						ki++
					})
				}
				y[(n*M+m)*oSize+o] = s
				o++
			})
		}
	}
	return y
}

func TestConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		x, w  []int
		attrs graph.Attrs
		bias  bool
	}{
		{[]int{1, 1, 5, 5}, []int{1, 1, 3, 3}, graph.Attrs{"pads": aInts(1, 1, 1, 1)}, false},
		{[]int{2, 3, 7}, []int{8, 3, 3}, graph.Attrs{"pads": aInts(1, 2)}, true},
		{[]int{2, 4, 9}, []int{8, 2, 2}, graph.Attrs{"group": aInt(2), "dilations": aInts(3), "strides": aInts(2)}, true},
		{[]int{1, 3, 7, 6}, []int{16, 3, 3, 2}, graph.Attrs{"strides": aInts(2, 1), "pads": aInts(1, 0, 2, 1)}, true},
		{[]int{1, 4, 6, 6}, []int{8, 4, 1, 1}, nil, true},
		{[]int{1, 4, 6, 6}, []int{8, 4, 1, 1}, graph.Attrs{"strides": aInts(2, 2)}, false},
		{[]int{1, 8, 6, 5}, []int{8, 1, 3, 3}, graph.Attrs{"group": aInt(8), "auto_pad": aStr("SAME_UPPER")}, true},
		{[]int{1, 2, 5, 6}, []int{6, 2, 3, 3}, graph.Attrs{"auto_pad": aStr("SAME_LOWER"), "strides": aInts(2, 2)}, true},
		{[]int{1, 2, 5, 6}, []int{6, 2, 2, 4}, graph.Attrs{"auto_pad": aStr("VALID"), "dilations": aInts(2, 1)}, false},
		{[]int{2, 2, 4, 5, 3}, []int{6, 2, 2, 3, 2}, graph.Attrs{"pads": aInts(1, 0, 1, 0, 2, 1)}, true},
		{[]int{1, 2, 3, 3, 3, 3}, []int{4, 2, 2, 2, 1, 2}, graph.Attrs{"pads": aInts(0, 1, 0, 1, 1, 0, 1, 0)}, true},
		{[]int{1, 3, 7, 8}, []int{6, 1, 3, 2}, graph.Attrs{"group": aInt(3), "strides": aInts(2, 3), "dilations": aInts(2, 1), "pads": aInts(1, 0, 2, 1)}, true},
		{[]int{2, 4, 11}, []int{4, 1, 3}, graph.Attrs{"group": aInt(4), "strides": aInts(2), "pads": aInts(2, 0)}, false},
		{[]int{1, 2, 3, 4, 5}, []int{2, 1, 2, 2, 3}, graph.Attrs{"group": aInt(2), "pads": aInts(1, 1, 1, 0, 0, 2)}, true},
		{[]int{1, 6, 8, 8}, []int{12, 2, 3, 3}, graph.Attrs{"group": aInt(3), "pads": aInts(1, 1, 1, 1), "strides": aInts(3, 2)}, true},
	}
	for i, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
			t.Run(fmt.Sprintf("%d/%v", i, dt), func(t *testing.T) {
				x, w := randOf(rng, dt, tc.x...), randOf(rng, dt, tc.w...)
				in := []*tensor.Tensor{x, w}
				var bv []float64
				if tc.bias {
					b := randOf(rng, dt, tc.w[0])
					in, bv = append(in, b), toF64(b)
				}
				op := newOp(t, "Conv", 11, tc.attrs, len(in), 1)
				got := runOp(t, op, in...)[0]
				win, _ := parseWindow(&ops.Config{Attrs: orEmpty(tc.attrs)})
				g, err := win.resolve(tc.x[2:], tc.w[2:])
				if err != nil {
					t.Fatal(err)
				}
				grp := win.group
				want := refConv(toF64(x), toF64(w), bv, tc.x[0], tc.x[1], tc.w[0], grp, g)
				near(t, "Conv", got, append([]int{tc.x[0], tc.w[0]}, g.out...), want, 1e-4)
				near(t, "Conv rerun", runOp(t, op, in...)[0], append([]int{tc.x[0], tc.w[0]}, g.out...), want, 1e-4)
			})
		}
	}
	op := newOp(t, "Conv", 11, nil, 3, 1)
	if _, err := op.Run([]*tensor.Tensor{randF32(rng, 1, 3, 5, 5), randF32(rng, 4, 2, 3, 3)}); err == nil {
		t.Error("channel mismatch: no error")
	}
	if _, err := op.Run([]*tensor.Tensor{randF32(rng, 1, 3, 5, 5), randF32(rng, 4, 3, 3, 3), randOf(rng, tensor.Float64, 4)}); err == nil {
		t.Error("float64 bias on float32 conv: no error")
	}
	if _, err := op.Run([]*tensor.Tensor{randF32(rng, 1, 3, 2, 2), randF32(rng, 4, 3, 3, 3)}); err == nil {
		t.Error("kernel larger than input: no error")
	}
}

func orEmpty(a graph.Attrs) graph.Attrs {
	if a == nil {
		return graph.Attrs{}
	}
	return a
}

func TestConvTranspose(t *testing.T) {
	// ONNX spec example (convtranspose_1d)
	x := tensor.From([]int{1, 1, 3}, []float32{0, 1, 2})
	w := tensor.From([]int{1, 2, 3}, []float32{1, 1, 1, 1, 1, 1})
	got := runOp(t, newOp(t, "ConvTranspose", 11, nil, 2, 1), x, w)[0]
	near(t, "1d", got, []int{1, 2, 5}, []float64{0, 1, 3, 3, 2, 0, 1, 3, 3, 2}, 0)

	rng := rand.New(rand.NewPCG(13, 14))
	cases := []struct {
		x, w  []int
		attrs graph.Attrs
		want  []int
	}{
		{[]int{1, 2, 3, 3}, []int{2, 3, 3, 3}, graph.Attrs{"strides": aInts(3, 2), "output_padding": aInts(1, 1)}, []int{1, 3, 10, 8}},
		{[]int{1, 2, 3, 3}, []int{2, 3, 3, 3}, graph.Attrs{"strides": aInts(3, 2), "output_shape": aInts(10, 8)}, []int{1, 3, 10, 8}},
		{[]int{2, 4, 4, 3}, []int{4, 2, 2, 2}, graph.Attrs{"group": aInt(2), "pads": aInts(1, 0, 0, 1), "dilations": aInts(2, 2)}, nil},
		{[]int{1, 1, 3, 3}, []int{1, 2, 3, 3}, graph.Attrs{"auto_pad": aStr("SAME_UPPER"), "strides": aInts(2, 2)}, []int{1, 2, 6, 6}},
		{[]int{1, 2, 3, 4, 2}, []int{2, 2, 2, 3, 2}, graph.Attrs{"strides": aInts(1, 2, 2)}, nil},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			x := randOf(rng, tensor.Float32, tc.x...)
			w := randOf(rng, tensor.Float32, tc.w...)
			b := randOf(rng, tensor.Float32, tc.w[1]*int(orEmpty(tc.attrs).Int("group", 1)))
			op := newOp(t, "ConvTranspose", 11, tc.attrs, 3, 1)
			fast := runOp(t, op, x, w, b)[0]
			if tc.want != nil && !tensor.SameShape(fast.Shape, tc.want) {
				t.Fatalf("shape %v, want %v", fast.Shape, tc.want)
			}
			// the float64 path is the general scatter loop
			x64, w64, b64 := toTensor64(x), toTensor64(w), toTensor64(b)
			slow := runOp(t, op, x64, w64, b64)[0]
			near(t, "gemm vs scatter", fast, slow.Shape, toF64(slow), 1e-4)
		})
	}
}

func toTensor64(t *tensor.Tensor) *tensor.Tensor { return tensor.From(t.Shape, toF64(t)) }

func TestMaxPool(t *testing.T) {
	x := tensor.From([]int{1, 1, 4, 4}, []float32{
		1, 2, 3, 4,
		5, 6, 7, 8,
		9, 10, 11, 12,
		13, 14, 15, 16})
	op := newOp(t, "MaxPool", 12, graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}, 1, 2)
	out := runOp(t, op, x)
	near(t, "Y", out[0], []int{1, 1, 2, 2}, []float64{6, 8, 14, 16}, 0)
	near(t, "Indices", out[1], []int{1, 1, 2, 2}, []float64{5, 7, 13, 15}, 0)
	op = newOp(t, "MaxPool", 12, graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2), "storage_order": aInt(1)}, 1, 2)
	near(t, "Indices col-major", runOp(t, op, x)[1], []int{1, 1, 2, 2}, []float64{5, 13, 7, 15}, 0)
	op = newOp(t, "MaxPool", 12, graph.Attrs{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "ceil_mode": aInt(1)}, 1, 1)
	near(t, "ceil", runOp(t, op, x)[0], []int{1, 1, 2, 2}, []float64{11, 12, 15, 16}, 0)
	u := tensor.From([]int{1, 1, 5}, []uint8{3, 200, 7, 9, 1})
	op = newOp(t, "MaxPool", 12, graph.Attrs{"kernel_shape": aInts(2), "pads": aInts(1, 1)}, 1, 1)
	near(t, "uint8", runOp(t, op, u)[0], []int{1, 1, 6}, []float64{3, 200, 200, 9, 9, 1}, 0)

	// the typed 3-D loops agree with the general loop
	rng := rand.New(rand.NewPCG(15, 16))
	for i, attrs := range []graph.Attrs{
		{"kernel_shape": aInts(3, 2), "pads": aInts(1, 0, 1, 1), "strides": aInts(2, 1)},
		{"kernel_shape": aInts(2, 2), "dilations": aInts(2, 2), "ceil_mode": aInt(1), "strides": aInts(2, 2)},
		{"kernel_shape": aInts(3, 3), "auto_pad": aStr("SAME_LOWER")},
		{"kernel_shape": aInts(3, 3), "pads": aInts(1, 1, 1, 1), "count_include_pad": aInt(1)},
		{"kernel_shape": aInts(3, 3), "pads": aInts(2, 1, 2, 1), "ceil_mode": aInt(1), "strides": aInts(2, 3)},
	} {
		for _, isMax := range []bool{true, false} {
			name := "AveragePool"
			if isMax {
				name = "MaxPool"
			}
			t.Run(fmt.Sprintf("%s%d", name, i), func(t *testing.T) {
				x := randF32(rng, 2, 3, 9, 8)
				p := newOp(t, name, 12, attrs, 1, 2).(*pool)
				got := runOp(t, p, x)
				k := []int{int(p.kernel[0]), int(p.kernel[1])}
				g, err := p.resolve(x.Shape[2:], k)
				if err != nil {
					t.Fatal(err)
				}
				idx := make([]int64, got[0].Len())
				want, err := p.general(x, g, idx)
				if err != nil {
					t.Fatal(err)
				}
				near(t, "Y", got[0], got[0].Shape, want, 1e-6)
				if isMax {
					for j, v := range idx {
						if got[1].Int64s()[j] != v {
							t.Fatalf("Indices[%d] = %d, want %d", j, got[1].Int64s()[j], v)
						}
					}
				}
			})
		}
	}
}

func TestAveragePool(t *testing.T) {
	x := tensor.From([]int{1, 1, 3, 3}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9})
	op := newOp(t, "AveragePool", 11, graph.Attrs{"kernel_shape": aInts(2, 2), "pads": aInts(1, 1, 0, 0)}, 1, 1)
	near(t, "exclude pad", runOp(t, op, x)[0], []int{1, 1, 3, 3}, []float64{1, 1.5, 2.5, 2.5, 3, 4, 5.5, 6, 7}, 1e-6)
	op = newOp(t, "AveragePool", 11, graph.Attrs{"kernel_shape": aInts(2, 2), "pads": aInts(1, 1, 0, 0), "count_include_pad": aInt(1)}, 1, 1)
	near(t, "include pad", runOp(t, op, x)[0], []int{1, 1, 3, 3}, []float64{0.25, 0.75, 1.25, 1.25, 3, 4, 2.75, 6, 7}, 1e-6)
	g := runOp(t, newOp(t, "GlobalAveragePool", 1, nil, 1, 1), x)[0]
	near(t, "global avg", g, []int{1, 1, 1, 1}, []float64{5}, 1e-6)
	g = runOp(t, newOp(t, "GlobalMaxPool", 1, nil, 1, 1), toTensor64(x))[0]
	near(t, "global max", g, []int{1, 1, 1, 1}, []float64{9}, 0)
}

// One kernel instance serves concurrent runs (the packed-weight caches and
// scratch pools are shared).
func TestConcurrentRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	x, w, b := randF32(rng, 2, 4, 9, 9), randF32(rng, 8, 4, 3, 3), randF32(rng, 8)
	conv := newOp(t, "Conv", 11, graph.Attrs{"pads": aInts(1, 1, 1, 1)}, 3, 1)
	mm := newOp(t, "MatMul", 13, nil, 2, 1)
	a, m := randF32(rng, 5, 7), randF32(rng, 7, 6)
	wantC := runOp(t, conv, x, w, b)[0]
	wantM := runOp(t, mm, a, m)[0]
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				c, err := conv.Run([]*tensor.Tensor{x, w, b})
				if err != nil {
					done <- err
					return
				}
				r, err := mm.Run([]*tensor.Tensor{a, m})
				if err != nil {
					done <- err
					return
				}
				for j, v := range c[0].Float32s() {
					if v != wantC.Float32s()[j] {
						done <- fmt.Errorf("conv differs at %d", j)
						return
					}
				}
				for j, v := range r[0].Float32s() {
					if v != wantM.Float32s()[j] {
						done <- fmt.Errorf("matmul differs at %d", j)
						return
					}
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
