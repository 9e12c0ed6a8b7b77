package shape

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// call builds op at opset with attrs and runs it on in.
func call(op string, opset int, attrs graph.Attrs, nout int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	if attrs == nil {
		attrs = graph.Attrs{}
	}
	k, err := ops.New(&ops.Config{OpType: op, Opset: opset, Attrs: attrs, NumInputs: len(in), NumOutputs: nout})
	if err != nil {
		return nil, err
	}
	return k.Run(in)
}

func ints(v ...int64) graph.Attr    { return graph.Attr{Type: graph.AttrInts, Ints: v} }
func intA(v int64) graph.Attr       { return graph.Attr{Type: graph.AttrInt, Int: v} }
func i64(v ...int64) *tensor.Tensor { return tensor.From([]int{len(v)}, v) }
func f32(shape []int, v ...float32) *tensor.Tensor {
	return tensor.From(shape, v)
}

// seq returns float32 0..n-1 in shape.
func seq(shape ...int) *tensor.Tensor {
	n := prod(shape)
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i)
	}
	return tensor.From(shape, d)
}

// opCase is one table row: run Op and expect outputs or an error.
type opCase struct {
	name    string
	op      string
	opset   int
	attrs   graph.Attrs
	in      []*tensor.Tensor
	nout    int
	want    []*tensor.Tensor
	wantErr bool
}

func runCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nout := c.nout
			if nout == 0 {
				nout = max(1, len(c.want))
			}
			got, err := call(c.op, c.opset, c.attrs, nout, c.in...)
			if c.wantErr {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				t.Logf("error (expected): %v", err)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got) < len(c.want) {
				t.Fatalf("got %d outputs, want %d", len(got), len(c.want))
			}
			for i, w := range c.want {
				if err := sameTensor(got[i], w); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}

func sameTensor(got, want *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("nil output")
	}
	if err := got.Validate(); err != nil {
		return err
	}
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	if got.Len() == 0 && want.Len() == 0 {
		return nil
	}
	if !reflect.DeepEqual(got.Data, want.Data) {
		return fmt.Errorf("got data %v, want %v", got.Data, want.Data)
	}
	return nil
}
