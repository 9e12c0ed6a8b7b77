package ops

import (
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestArenaReusesBuffersInRequestOrder(t *testing.T) {
	a := &Arena{}
	run := func() (*tensor.Tensor, *tensor.Tensor, []float32, []*tensor.Tensor) {
		a.Reset()
		x, err := a.New(tensor.Float32, []int{2, 3})
		if err != nil {
			t.Fatal(err)
		}
		v, err := a.View(x, []int{6})
		if err != nil {
			t.Fatal(err)
		}
		s := a.Float32s(5)
		return x, v, s, a.Outputs(x, v)
	}
	x1, v1, s1, l1 := run()
	x1.Float32s()[0], s1[0] = 7, 7
	x2, v2, s2, l2 := run()
	if x1 != x2 || v1 != v2 || &s1[0] != &s2[0] || &l1[0] != &l2[0] {
		t.Fatal("second run did not get the first run's buffers back")
	}
	if x2.Float32s()[0] != 0 || s2[0] != 0 {
		t.Fatal("New and Float32s must hand out zeroed memory")
	}
	if &v2.Float32s()[0] != &x2.Float32s()[0] || !tensor.SameShape(v2.Shape, []int{6}) {
		t.Fatal("View must share data under the new shape")
	}
	if n := testing.AllocsPerRun(100, func() { run() }); n != 0 {
		t.Fatalf("steady-state arena run allocates %v times", n)
	}
}

func TestArenaGrowsAndChangesDType(t *testing.T) {
	a := &Arena{}
	x, _ := a.Empty(tensor.Float32, []int{2})
	a.Reset()
	y, _ := a.Empty(tensor.Float32, []int{4, 4})
	if y != x || len(y.Float32s()) != 16 {
		t.Fatalf("grown slot: same header %v, len %d", y == x, len(y.Float32s()))
	}
	a.Reset()
	z, _ := a.Empty(tensor.Int64, []int{3})
	if z.DType != tensor.Int64 || len(z.Int64s()) != 3 {
		t.Fatalf("dtype change: got %v", z)
	}
	a.Reset()
	w, _ := a.Empty(tensor.Int64, []int{2})
	if len(w.Int64s()) != 2 {
		t.Fatalf("shrunk slot has %d elements", len(w.Int64s()))
	}
	if _, err := a.View(w, []int{5}); err == nil {
		t.Fatal("View with a different element count must fail")
	}
}

func TestNilArenaAllocatesFresh(t *testing.T) {
	var a *Arena
	x, _ := a.New(tensor.Float32, []int{3})
	y, _ := a.New(tensor.Float32, []int{3})
	if x == y || &x.Float32s()[0] == &y.Float32s()[0] {
		t.Fatal("nil arena must allocate fresh tensors")
	}
	if l := a.Outputs(x); len(l) != 1 || l[0] != x {
		t.Fatal("nil arena Outputs")
	}
	a.Reset()
}
