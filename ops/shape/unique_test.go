package shape

import (
	"math"
	"reflect"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestUniqueLargeAndNaN: Unique is linear (a 200 000-element input with
// 1000 distinct values), folds -0 into 0 and all NaNs into one value sorted
// last, as numpy.unique (the ONNX reference) does.
func TestUniqueLargeAndNaN(t *testing.T) {
	k, err := ops.New(&ops.Config{OpType: "Unique", Opset: 11, Attrs: graph.Attrs{}})
	if err != nil {
		t.Fatal(err)
	}
	n := 200000
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((i * 7919) % 1000)
	}
	out, err := k.Run([]*tensor.Tensor{tensor.From([]int{n}, v)})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Len() != 1000 || out[0].Float32s()[999] != 999 {
		t.Fatalf("got %v unique values", out[0])
	}
	nan := float32(math.NaN())
	out, err = k.Run([]*tensor.Tensor{tensor.From([]int{6}, []float32{nan, 2, float32(math.Copysign(0, -1)), nan, 0, 2})})
	if err != nil {
		t.Fatal(err)
	}
	y := out[0].Float32s()
	if len(y) != 3 || y[0] != 0 || y[1] != 2 || !math.IsNaN(float64(y[2])) {
		t.Errorf("unique = %v, want [0 2 NaN]", y)
	}
	if c := out[3].Int64s(); !reflect.DeepEqual(c, []int64{2, 2, 2}) {
		t.Errorf("counts = %v, want [2 2 2]", c)
	}
}
