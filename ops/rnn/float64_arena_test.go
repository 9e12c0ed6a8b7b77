package rnn

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestFloat64Arena: the float64 path takes its scratch from the arena as
// float64 tensors (not carved out of float32 buffers): RunWith on a reused
// arena equals Run bit for bit and allocates nothing at steady state.
func TestFloat64Arena(t *testing.T) {
	for _, bc := range bigCases {
		t.Run(bc.name, func(t *testing.T) {
			rc := newRandCase(9, bc.op, bc.attrs, 5, 4, 3, 5, []int32{5, 1, 3, 4}, true)
			in64 := make([]*tensor.Tensor, len(rc.inputs))
			for i, x := range rc.inputs {
				if x == nil || x.DType != tensor.Float32 {
					in64[i] = x
					continue
				}
				v, err := tensor.AsFloat64(x)
				if err != nil {
					t.Fatal(err)
				}
				in64[i] = tensor.From(x.Shape, v)
			}
			same := func(got, want *tensor.Tensor) error {
				if got.DType != tensor.Float64 || !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data, want.Data) {
					return fmt.Errorf("got %v, want %v", got, want)
				}
				return nil
			}
			opstest.ArenaRuns(t, rc.build(t), in64, same, nil)
		})
	}
}
