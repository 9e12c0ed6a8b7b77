package shape

import (
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

// arenaCase is one kernel at one input signature for the arena checks.
type arenaCase struct {
	op    string
	opset int
	attrs ops.Attrs
	nOut  int
	in    []*tensor.Tensor
	view  bool // output 0 must share input 0's data
}

func i32s(v ...int32) *tensor.Tensor { return tensor.From([]int{len(v)}, v) }

func i64seq(shape ...int) *tensor.Tensor {
	d := make([]int64, prod(shape))
	for i := range d {
		d[i] = int64(i)
	}
	return tensor.From(shape, d)
}

func bools(shape ...int) *tensor.Tensor {
	d := make([]bool, prod(shape))
	for i := range d {
		d[i] = i%3 == 0
	}
	return tensor.From(shape, d)
}

func arenaCases() []arenaCase {
	ax := func(v int64) ops.Attrs { return ops.Attrs{"axis": intA(v)} }
	return []arenaCase{
		{op: "Reshape", in: []*tensor.Tensor{seq(64, 128), i64(0, -1, 32)}, view: true},
		{op: "Reshape", in: []*tensor.Tensor{i64seq(2, 3, 4), i32s(4, -1)}, view: true},
		{op: "Flatten", attrs: ax(2), in: []*tensor.Tensor{seq(2, 3, 4, 5)}, view: true},
		{op: "Squeeze", in: []*tensor.Tensor{seq(1, 64, 1, 8), i64(0, -2)}, view: true},
		{op: "Squeeze", in: []*tensor.Tensor{bools(1, 3, 1)}, view: true},
		{op: "Unsqueeze", in: []*tensor.Tensor{seq(64, 8), i64(-1, 0)}, view: true},
		{op: "Unsqueeze", opset: 11, attrs: ops.Attrs{"axes": ints(1)}, in: []*tensor.Tensor{i64seq(3)}, view: true},
		{op: "Transpose", in: []*tensor.Tensor{seq(64, 128)}},
		{op: "Transpose", attrs: ops.Attrs{"perm": ints(0, 2, 1, 3)}, in: []*tensor.Tensor{seq(2, 16, 4, 8)}},
		{op: "Transpose", attrs: ops.Attrs{"perm": ints(0, 2, 3, 1)}, in: []*tensor.Tensor{i64seq(2, 3, 4, 5)}},
		{op: "Transpose", attrs: ops.Attrs{"perm": ints(2, 0, 1)}, in: []*tensor.Tensor{bools(3, 1, 4)}},
		// only size-1 axes move: a view (one stream step [B,1,F] → [1,B,F])
		{op: "Transpose", attrs: ops.Attrs{"perm": ints(1, 0, 2)}, in: []*tensor.Tensor{seq(5, 1, 3)}, view: true},
		{op: "Transpose", attrs: ops.Attrs{"perm": ints(2, 1, 0)}, in: []*tensor.Tensor{i64seq(1, 4, 1)}, view: true},
		{op: "Gather", in: []*tensor.Tensor{seq(1000, 64), tensor.From([]int{4, 32}, make([]int64, 128))}},
		{op: "Gather", attrs: ax(1), in: []*tensor.Tensor{seq(64, 128), i32s(0, 5, -1, 7)}},
		{op: "Gather", in: []*tensor.Tensor{i64seq(5), tensor.Scalar(int64(3))}},
		// the only slab of a size-1 axis: a view (Y_h[0] of a forward LSTM)
		{op: "Gather", in: []*tensor.Tensor{seq(1, 3, 4), tensor.Scalar(int64(0))}, view: true},
		{op: "Gather", in: []*tensor.Tensor{seq(1, 3, 4), tensor.From([]int{1}, []int32{-1})}, view: true},
		{op: "GatherElements", attrs: ax(1), in: []*tensor.Tensor{seq(4, 5), tensor.From([]int{4, 2}, []int64{0, 4, 1, 3, 2, 2, -1, 0})}},
		{op: "Concat", attrs: ax(1), in: []*tensor.Tensor{seq(64, 128), seq(64, 32), seq(64, 1)}},
		{op: "Concat", attrs: ax(0), in: []*tensor.Tensor{i64(1, 2), i64(), i64(3)}},
		{op: "Concat", attrs: ax(0), in: []*tensor.Tensor{seq(2, 3), f32([]int{0})}},
		{op: "Concat", attrs: ax(-1), in: []*tensor.Tensor{bools(2, 3), bools(2, 1)}},
		{op: "Slice", in: []*tensor.Tensor{seq(64, 128), i64(0, 10), i64(64, -10)}},
		{op: "Slice", in: []*tensor.Tensor{seq(8, 16, 4), i64(1, 15), i64(7, 0), i64(0, 1), i64(2, -3)}},
		{op: "Slice", in: []*tensor.Tensor{i64seq(10), i32s(2), i32s(1 << 30)}},
		{op: "Slice", opset: 9, attrs: ops.Attrs{"starts": ints(1), "ends": ints(3), "axes": ints(1)}, in: []*tensor.Tensor{seq(4, 5)}},
		{op: "Split", nOut: 3, attrs: ax(1), in: []*tensor.Tensor{seq(64, 96)}},
		{op: "Split", nOut: 2, in: []*tensor.Tensor{i64seq(5, 2), i64(2, 3)}},
		{op: "Split", nOut: 40, attrs: ax(1), in: []*tensor.Tensor{seq(3, 80)}},
		{op: "Split", opset: 18, nOut: 3, attrs: ops.Attrs{"num_outputs": intA(3)}, in: []*tensor.Tensor{seq(7, 2)}},
		{op: "Shape", in: []*tensor.Tensor{seq(64, 128)}},
		{op: "Shape", opset: 15, attrs: ops.Attrs{"start": intA(1), "end": intA(-1)}, in: []*tensor.Tensor{seq(2, 3, 4, 5)}},
		{op: "Size", in: []*tensor.Tensor{seq(3, 4)}},
		{op: "Expand", in: []*tensor.Tensor{seq(64, 1), i64(64, 128)}},
		{op: "Expand", in: []*tensor.Tensor{seq(3), i64(2, 1, 1)}},
		{op: "Expand", in: []*tensor.Tensor{bools(2, 1), i64(2, 3)}},
		{op: "Tile", in: []*tensor.Tensor{seq(2, 3), i64(3, 2)}},
		{op: "Pad", in: []*tensor.Tensor{seq(64, 128), i64(1, 2, 3, 4)}},
		{op: "Pad", in: []*tensor.Tensor{seq(3, 4), i64(0, 2, 0, 1), f32([]int{}, 7)}},
		{op: "Pad", attrs: ops.Attrs{"mode": {Type: ops.AttrString, String: "reflect"}}, in: []*tensor.Tensor{seq(3, 4), i64(1, 2, 1, 2)}},
		{op: "Pad", attrs: ops.Attrs{"mode": {Type: ops.AttrString, String: "edge"}}, in: []*tensor.Tensor{i64seq(3, 4), i64(1, 1), nil, i64(-1)}},
		{op: "Pad", opset: 2, attrs: ops.Attrs{"pads": ints(1, 0, 1, 0), "value": {Type: ops.AttrFloat, Float: 1.5}}, in: []*tensor.Tensor{seq(2, 2)}},
		{op: "ConstantOfShape", in: []*tensor.Tensor{i64(64, 128)}},
		{op: "ConstantOfShape", attrs: ops.Attrs{"value": {Type: ops.AttrTensor, Tensor: tensor.From([]int{1}, []int64{3})}}, in: []*tensor.Tensor{i64(2, 3)}},
		{op: "Constant", attrs: ops.Attrs{"value": {Type: ops.AttrTensor, Tensor: seq(2, 2)}}},
		{op: "Range", in: []*tensor.Tensor{tensor.Scalar(int64(1)), tensor.Scalar(int64(20)), tensor.Scalar(int64(3))}},
		{op: "Range", in: []*tensor.Tensor{tensor.Scalar(float32(0)), tensor.Scalar(float32(1)), tensor.Scalar(float32(0.25))}},
		{op: "CumSum", attrs: ops.Attrs{"exclusive": intA(1)}, in: []*tensor.Tensor{seq(4, 5), tensor.Scalar(int64(1))}},
		{op: "Trilu", opset: 14, in: []*tensor.Tensor{seq(2, 4, 4), tensor.Scalar(int64(-1))}},
		{op: "ReverseSequence", opset: 10, in: []*tensor.Tensor{seq(4, 3, 2), i64(4, 2, 1)}},
	}
}

// kernelCase is c for the shared harness.
func (c arenaCase) kernelCase() opstest.Case {
	return opstest.Case{Op: c.op, Opset: c.opset, Attrs: c.attrs, NOut: c.nOut, In: c.in}
}

// TestArenaRuns runs every kernel twice through RunWith on one reused arena:
// the results must equal Run's (nil arena), views must share the input's
// data, and the steady state must allocate nothing.
func TestArenaRuns(t *testing.T) {
	for _, c := range arenaCases() {
		kc := c.kernelCase()
		t.Run(kc.Name(), func(t *testing.T) {
			var view func(t *testing.T, got []*tensor.Tensor)
			if c.view {
				view = func(t *testing.T, got []*tensor.Tensor) {
					g, _ := rawOf(got[0])
					x, _ := rawOf(c.in[0])
					if !sameData(g, x) {
						t.Fatal("output is not a view of the input")
					}
				}
			}
			opstest.ArenaRuns(t, kc.New(t), c.in, sameTensor, view)
		})
	}
}

// sameData reports whether two raw views start at the same element.
func sameData(a, b raw) bool {
	switch {
	case len(a.b1) > 0 && len(b.b1) > 0:
		return &a.b1[0] == &b.b1[0]
	case len(a.b4) > 0 && len(b.b4) > 0:
		return &a.b4[0] == &b.b4[0]
	case len(a.b8) > 0 && len(b.b8) > 0:
		return &a.b8[0] == &b.b8[0]
	}
	return false
}

// TestArenaConcurrent runs every kernel from several goroutines at once,
// each with its own arena, as executors of one session do (run with -race).
func TestArenaConcurrent(t *testing.T) {
	for _, c := range arenaCases() {
		opstest.ArenaConcurrent(t, c.op, c.kernelCase().New(t), c.in, sameTensor)
	}
}
