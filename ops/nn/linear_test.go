package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestSgemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 64, 67}
	params := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-2, 0.25}, {0, 3}}
	for _, transA := range []bool{false, true} {
		for _, transB := range []bool{false, true} {
			for pi, m := range sizes {
				for _, n := range sizes {
					k := sizes[(pi*7+n)%len(sizes)]
					for _, pr := range []int{0, 3} { // extra leading-dimension padding
						p := params[(m+n+k+pr)%len(params)]
						lda, ldb, ldc := k+pr, n+pr, n+pr+1
						ar, br := m, k
						if transA {
							lda, ar = m+pr, k
						}
						if transB {
							ldb, br = k+pr, n
						}
						a := randF32(rng, ar*lda).Float32s()
						b := randF32(rng, br*ldb).Float32s()
						c := randF32(rng, m*ldc).Float32s()
						want := append([]float32(nil), c...)
						opstest.NaiveGemm(transA, transB, m, n, k, p.alpha, a, lda, b, ldb, p.beta, want, ldc)
						Sgemm(transA, transB, m, n, k, p.alpha, a, lda, b, ldb, p.beta, c, ldc)
						for i := range c {
							if d := math.Abs(float64(c[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
								t.Fatalf("transA=%v transB=%v m=%d n=%d k=%d pad=%d: c[%d]=%v want %v", transA, transB, m, n, k, pr, i, c[i], want[i])
							}
						}
					}
				}
			}
		}
	}
	// every size from 1 to 67 in each role, against the naive product
	for s := 1; s <= 67; s++ {
		for _, shape := range [][3]int{{s, 13, 9}, {11, s, 5}, {6, 17, s}} {
			m, n, k := shape[0], shape[1], shape[2]
			a, b := randF32(rng, m*k).Float32s(), randF32(rng, n*k).Float32s()
			c, want := make([]float32, m*n), make([]float32, m*n)
			opstest.NaiveGemm(false, true, m, n, k, 1, a, k, b, k, 0, want, n)
			Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%v: c[%d]=%v want %v", shape, i, c[i], want[i])
				}
			}
		}
	}
}

func TestSgemmZeroK(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 0, nil, 2, 2, c, 2)
	for i, v := range []float32{2, 4, 6, 8} {
		if c[i] != v {
			t.Fatalf("k=0: c=%v", c)
		}
	}
}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name           string
		m, n, k        int
		transA, transB bool
		alpha, beta    float32
		cShape         []int // nil: no C
	}{
		{"plain", 3, 4, 5, false, false, 1, 1, nil},
		{"transA", 3, 4, 5, true, false, 1, 1, []int{3, 4}},
		{"transB", 7, 20, 9, false, true, 0.5, 2, []int{20}},
		{"both", 8, 17, 6, true, true, -1, 0.5, []int{8, 1}},
		{"scalarC", 2, 3, 4, false, false, 1, 1, []int{}},
		{"oneC", 2, 3, 4, false, false, 1, 3, []int{1}},
		{"rowC", 6, 5, 3, false, true, 2, 1, []int{1, 5}},
		{"betaZero", 6, 5, 3, false, false, 1, 0, []int{6, 5}},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int64} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, dt), func(t *testing.T) {
				ar, ac := tc.m, tc.k
				if tc.transA {
					ar, ac = ac, ar
				}
				br, bc := tc.k, tc.n
				if tc.transB {
					br, bc = bc, br
				}
				alpha, beta := tc.alpha, tc.beta
				if dt == tensor.Int64 {
					alpha, beta = float32(math.Round(float64(alpha))), float32(math.Round(float64(beta)))
				}
				a, b := randOf(rng, dt, ar, ac), randOf(rng, dt, br, bc)
				in := []*tensor.Tensor{a, b}
				var c *tensor.Tensor
				if tc.cShape != nil {
					c = randOf(rng, dt, tc.cShape...)
					in = append(in, c)
				}
				op := newOp(t, "Gemm", 13, graph.Attrs{"transA": aInt(b2i(tc.transA)), "transB": aInt(b2i(tc.transB)),
					"alpha": aFloat(alpha), "beta": aFloat(beta)}, len(in), 1)
				got := runOp(t, op, in...)[0]
				av, bv := toF64(a), toF64(b)
				want := make([]float64, tc.m*tc.n)
				var cIdx []int
				var cv []float64
				if c != nil {
					cIdx, cv = tensor.BroadcastIndex(c.Shape, []int{tc.m, tc.n}), toF64(c)
				}
				for i := 0; i < tc.m; i++ {
					for j := 0; j < tc.n; j++ {
						var s float64
						for q := 0; q < tc.k; q++ {
							var x, y float64
							if tc.transA {
								x = av[q*ac+i]
							} else {
								x = av[i*ac+q]
							}
							if tc.transB {
								y = bv[j*bc+q]
							} else {
								y = bv[q*bc+j]
							}
							s += x * y
						}
						want[i*tc.n+j] = float64(alpha) * s
						if c != nil {
							want[i*tc.n+j] += float64(beta) * cv[cIdx[i*tc.n+j]]
						}
					}
				}
				near(t, "Gemm", got, []int{tc.m, tc.n}, want, 1e-5)
			})
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// randOf returns a random tensor; integer types get small integers.
func randOf(rng *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	t, _ := tensor.New(dt, shape)
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
	case []float64:
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	case []int64:
		for i := range d {
			d[i] = int64(rng.IntN(7) - 3)
		}
	case []int32:
		for i := range d {
			d[i] = int32(rng.IntN(7) - 3)
		}
	case []uint8:
		for i := range d {
			d[i] = uint8(rng.IntN(200))
		}
	case []int8:
		for i := range d {
			d[i] = int8(rng.IntN(200) - 100)
		}
	}
	return t
}

// refMatMul is NumPy matmul in float64.
func refMatMul(a, b *tensor.Tensor) ([]int, []float64) {
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	batch, _ := tensor.BroadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	nb := prodInts(batch)
	ai, bi := tensor.BroadcastIndex(as[:len(as)-2], batch), tensor.BroadcastIndex(bs[:len(bs)-2], batch)
	av, bv := toF64(a), toF64(b)
	out := make([]float64, nb*m*n)
	for x := 0; x < nb; x++ {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for q := 0; q < k; q++ {
					s += av[ai[x]*m*k+i*k+q] * bv[bi[x]*k*n+q*n+j]
				}
				out[x*m*n+i*n+j] = s
			}
		}
	}
	shape := append([]int{}, batch...)
	if len(a.Shape) > 1 {
		shape = append(shape, m)
	}
	if len(b.Shape) > 1 {
		shape = append(shape, n)
	}
	return shape, out
}

func TestMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []struct{ a, b []int }{
		{[]int{4}, []int{4}},
		{[]int{3}, []int{3, 5}},
		{[]int{5, 3}, []int{3}},
		{[]int{2, 3}, []int{3, 4}},
		{[]int{7, 6, 9}, []int{9, 20}},
		{[]int{2, 1, 3, 4}, []int{5, 4, 2}},
		{[]int{3, 4}, []int{2, 4, 6}},
		{[]int{2, 3, 4}, []int{2, 4, 3}},
		{[]int{1, 33}, []int{33, 65}},
		{[]int{2, 0, 3}, []int{3, 4}},
		{[]int{2, 3, 0}, []int{0, 4}},
	}
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64} {
			t.Run(fmt.Sprintf("%v×%v/%v", tc.a, tc.b, dt), func(t *testing.T) {
				a, b := randOf(rng, dt, tc.a...), randOf(rng, dt, tc.b...)
				op := newOp(t, "MatMul", 13, nil, 2, 1)
				got := runOp(t, op, a, b)[0]
				shape, want := refMatMul(a, b)
				near(t, "MatMul", got, shape, want, 1e-5)
				// the packed weight is cached: a second run must agree
				near(t, "MatMul again", runOp(t, op, a, b)[0], shape, want, 1e-5)
			})
		}
	}
	if _, err := newOp(t, "MatMul", 13, nil, 2, 1).Run([]*tensor.Tensor{randF32(rng, 2, 3), randF32(rng, 4, 2)}); err == nil {
		t.Fatal("mismatched inner dims: no error")
	}
	if _, err := newOp(t, "Gemm", 13, nil, 3, 1).Run([]*tensor.Tensor{randF32(rng, 2, 3), randF32(rng, 3, 2), randF32(rng, 3)}); err == nil {
		t.Fatal("Gemm with C that does not broadcast: no error")
	}
}

func TestEinsum(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	cases := []struct {
		eq     string
		shapes [][]int
		want   []int
	}{
		{"bij,bjk->bik", [][]int{{3, 2, 5}, {3, 5, 4}}, []int{3, 2, 4}},
		{"ij,jk", [][]int{{2, 3}, {3, 4}}, []int{2, 4}},
		{"ij->ji", [][]int{{2, 3}}, []int{3, 2}},
		{"ij->", [][]int{{2, 3}}, []int{}},
		{"i,i", [][]int{{5}, {5}}, []int{}},
		{"...ii->...i", [][]int{{3, 4, 4}}, []int{3, 4}},
		{"bhqd,bhkd->bhqk", [][]int{{2, 3, 4, 5}, {2, 3, 6, 5}}, []int{2, 3, 4, 6}},
		{"ik,kj->ji", [][]int{{4, 3}, {3, 5}}, []int{5, 4}},
		{"i,j->ij", [][]int{{3}, {4}}, []int{3, 4}},
		{"ij,ij->i", [][]int{{3, 4}, {3, 4}}, []int{3}},
		{"ij,jk,kl->il", [][]int{{2, 3}, {3, 4}, {4, 2}}, []int{2, 2}},
		{"...ij,...jk->...ik", [][]int{{2, 3, 4}, {4, 5}}, []int{2, 3, 5}},
	}
	defer func() { einsumFastPath = true }()
	for _, tc := range cases {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
			t.Run(tc.eq+"/"+dt.String(), func(t *testing.T) {
				var in []*tensor.Tensor
				for _, s := range tc.shapes {
					in = append(in, randOf(rng, dt, s...))
				}
				op := newOp(t, "Einsum", 12, graph.Attrs{"equation": aStr(tc.eq)}, len(in), 1)
				einsumFastPath = false
				slow := runOp(t, op, in...)[0]
				einsumFastPath = true
				fast := runOp(t, op, in...)[0]
				near(t, "fast vs general", fast, tc.want, toF64(slow), 1e-5)
				if tc.eq == "ij,jk" {
					shape, want := refMatMul(in[0], in[1])
					near(t, "vs MatMul", fast, shape, want, 1e-5)
				}
			})
		}
	}
	x := tensor.From([]int{2, 2}, []float64{1, 2, 3, 4})
	near(t, "trace", runOp(t, newOp(t, "Einsum", 12, graph.Attrs{"equation": aStr("ii")}, 1, 1), x)[0], []int{}, []float64{5}, 0)
	near(t, "transpose", runOp(t, newOp(t, "Einsum", 12, graph.Attrs{"equation": aStr("ij->ji")}, 1, 1), x)[0], []int{2, 2}, []float64{1, 3, 2, 4}, 0)
}

// Bad inputs return errors instead of panicking.
func TestBadInputs(t *testing.T) {
	f := func(shape ...int) *tensor.Tensor { return tensor.From(shape, make([]float32, prodInts(shape))) }
	cases := []struct {
		op    string
		opset int
		attrs graph.Attrs
		in    []*tensor.Tensor
	}{
		{"Gemm", 13, nil, []*tensor.Tensor{f(1, 3), f(3, 2), f(3, 2)}},
		{"Gemm", 13, nil, []*tensor.Tensor{f(2, 3), f(3, 2), tensor.From([]int{2}, []float64{1, 2})}},
		{"Gemm", 13, nil, []*tensor.Tensor{f(3), f(3, 2)}},
		{"MatMul", 13, nil, []*tensor.Tensor{f(2, 3), tensor.From([]int{3}, []int64{1, 2, 3})}},
		{"MatMul", 13, nil, []*tensor.Tensor{f(2, 2, 3), f(3, 3, 2)}},
		{"ArgMax", 13, nil, []*tensor.Tensor{f()}},
		{"ArgMax", 13, graph.Attrs{"axis": aInt(2)}, []*tensor.Tensor{f(2, 2)}},
		{"Einsum", 12, graph.Attrs{"equation": aStr("...ij->ij")}, []*tensor.Tensor{f(2)}},
		{"Einsum", 12, graph.Attrs{"equation": aStr("ij,jk->ik")}, []*tensor.Tensor{f(2, 3), f(4, 2)}},
		{"Einsum", 12, graph.Attrs{"equation": aStr("i1->i")}, []*tensor.Tensor{f(2, 3)}},
		{"Einsum", 12, graph.Attrs{"equation": aStr("ij->k")}, []*tensor.Tensor{f(2, 3)}},
		{"Softmax", 13, graph.Attrs{"axis": aInt(3)}, []*tensor.Tensor{f(2, 3)}},
		{"Softmax", 13, nil, []*tensor.Tensor{tensor.From([]int{1}, []int32{1})}},
		{"ReduceMean", 18, nil, []*tensor.Tensor{f(2, 3), tensor.From([]int{1}, []int64{-3})}},
		{"LayerNormalization", 17, nil, []*tensor.Tensor{f(2, 3), f(4)}},
		{"BatchNormalization", 15, nil, []*tensor.Tensor{f(2, 3), f(3), f(3), f(3)}},
		{"InstanceNormalization", 6, nil, []*tensor.Tensor{f(2, 3, 4), f(2), f(3)}},
		{"MaxPool", 12, graph.Attrs{"kernel_shape": aInts(2, 2)}, []*tensor.Tensor{f(1, 1, 4)}},
		{"MaxPool", 12, graph.Attrs{"kernel_shape": aInts(5)}, []*tensor.Tensor{f(1, 1, 4)}},
		{"AveragePool", 11, graph.Attrs{"kernel_shape": aInts(2)}, []*tensor.Tensor{f(4, 4)}},
		{"ConvTranspose", 11, nil, []*tensor.Tensor{f(1, 2, 3), f(3, 1, 2)}},
		{"Conv", 11, nil, []*tensor.Tensor{f(1, 2, 3), tensor.From([]int{1, 2, 1}, []float64{1, 2})}},
		{"GlobalAveragePool", 1, nil, []*tensor.Tensor{f(3)}},
	}
	for _, tc := range cases {
		op, err := ops.New(&ops.Config{OpType: tc.op, Opset: tc.opset, Attrs: orEmpty(tc.attrs), NumInputs: len(tc.in), NumOutputs: 1})
		if err != nil {
			continue // rejected at construction: fine
		}
		if _, err := op.Run(tc.in); err == nil {
			t.Errorf("%s %v: no error", tc.op, tc.in)
		}
	}
	for _, bad := range []graph.Attrs{{"group": aInt(0)}, {"auto_pad": aStr("SAME")}, {"pads": aInts(-1, 0)}} {
		if _, err := ops.New(&ops.Config{OpType: "Conv", Opset: 11, Attrs: bad, NumInputs: 2, NumOutputs: 1}); err == nil {
			t.Errorf("Conv %v: no error", bad)
		}
	}
}
