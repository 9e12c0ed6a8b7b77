package shape

import (
	"math"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestGather(t *testing.T) {
	runCases(t, []opCase{
		{name: "axis0 rows", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), i64(2, 0, 2)},
			want: []*tensor.Tensor{f32([]int{3, 2}, 4, 5, 0, 1, 4, 5)}},
		{name: "negative index", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), i64(-1)},
			want: []*tensor.Tensor{f32([]int{1, 2}, 4, 5)}},
		{name: "int32 2d indices axis1", op: "Gather", opset: 13, attrs: graph.Attrs{"axis": intA(1)},
			in:   []*tensor.Tensor{seq(2, 3), tensor.From([]int{2, 2}, []int32{0, 2, 1, -3})},
			want: []*tensor.Tensor{f32([]int{2, 2, 2}, 0, 2, 1, 0, 3, 5, 4, 3)}},
		{name: "scalar index drops axis", op: "Gather", opset: 13, attrs: graph.Attrs{"axis": intA(-1)},
			in:   []*tensor.Tensor{seq(2, 3), tensor.Scalar(int64(1))},
			want: []*tensor.Tensor{f32([]int{2}, 1, 4)}},
		{name: "strings", op: "Gather", opset: 13, in: []*tensor.Tensor{tensor.From([]int{3}, []string{"a", "b", "c"}), i64(2, 2, 0)},
			want: []*tensor.Tensor{tensor.From([]int{3}, []string{"c", "c", "a"})}},
		{name: "bool", op: "Gather", opset: 13, in: []*tensor.Tensor{tensor.From([]int{2}, []bool{true, false}), i64(1, 0)},
			want: []*tensor.Tensor{tensor.From([]int{2}, []bool{false, true})}},
		{name: "empty indices", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), i64()},
			want: []*tensor.Tensor{f32([]int{0, 2})}},
		{name: "out of range", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), i64(3)}, wantErr: true},
		{name: "too negative", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), i64(-4)}, wantErr: true},
		{name: "bad axis", op: "Gather", opset: 13, attrs: graph.Attrs{"axis": intA(2)}, in: []*tensor.Tensor{seq(3, 2), i64(0)}, wantErr: true},
		{name: "float indices", op: "Gather", opset: 13, in: []*tensor.Tensor{seq(3, 2), f32([]int{1}, 0)}, wantErr: true},
	})
}

func TestGatherElements(t *testing.T) {
	runCases(t, []opCase{
		{name: "axis1", op: "GatherElements", opset: 13, attrs: graph.Attrs{"axis": intA(1)},
			in:   []*tensor.Tensor{f32([]int{2, 2}, 1, 2, 3, 4), tensor.From([]int{2, 2}, []int64{0, 0, 1, 0})},
			want: []*tensor.Tensor{f32([]int{2, 2}, 1, 1, 4, 3)}},
		{name: "axis0 smaller indices", op: "GatherElements", opset: 13,
			in:   []*tensor.Tensor{seq(3, 3), tensor.From([]int{2, 3}, []int32{1, 2, 0, 2, 0, -1})},
			want: []*tensor.Tensor{f32([]int{2, 3}, 3, 7, 2, 6, 1, 8)}},
		{name: "out of range", op: "GatherElements", opset: 13,
			in: []*tensor.Tensor{seq(2, 2), tensor.From([]int{1, 1}, []int64{2})}, wantErr: true},
		{name: "rank mismatch", op: "GatherElements", opset: 13,
			in: []*tensor.Tensor{seq(2, 2), i64(0)}, wantErr: true},
	})
}

func TestConcat(t *testing.T) {
	runCases(t, []opCase{
		{name: "axis1", op: "Concat", opset: 13, attrs: graph.Attrs{"axis": intA(1)},
			in:   []*tensor.Tensor{seq(2, 1), seq(2, 2)},
			want: []*tensor.Tensor{f32([]int{2, 3}, 0, 0, 1, 1, 2, 3)}},
		{name: "axis -2 with empty", op: "Concat", opset: 13, attrs: graph.Attrs{"axis": intA(-2)},
			in:   []*tensor.Tensor{seq(1, 2), f32([]int{0, 2}), seq(2, 2)},
			want: []*tensor.Tensor{f32([]int{3, 2}, 0, 1, 0, 1, 2, 3)}},
		{name: "strings", op: "Concat", opset: 13, attrs: graph.Attrs{"axis": intA(0)},
			in:   []*tensor.Tensor{tensor.From([]int{1}, []string{"x"}), tensor.From([]int{2}, []string{"y", "z"})},
			want: []*tensor.Tensor{tensor.From([]int{3}, []string{"x", "y", "z"})}},
		{name: "shape mismatch", op: "Concat", opset: 13, attrs: graph.Attrs{"axis": intA(0)},
			in: []*tensor.Tensor{seq(1, 2), seq(1, 3)}, wantErr: true},
		{name: "dtype mismatch", op: "Concat", opset: 13, attrs: graph.Attrs{"axis": intA(0)},
			in: []*tensor.Tensor{seq(1), i64(1)}, wantErr: true},
		{name: "missing axis", op: "Concat", opset: 13, in: []*tensor.Tensor{seq(1)}, wantErr: true},
	})
}

func TestSplit(t *testing.T) {
	x := seq(7)
	runCases(t, []opCase{
		{name: "equal parts", op: "Split", opset: 13, in: []*tensor.Tensor{seq(2, 4)}, attrs: graph.Attrs{"axis": intA(1)},
			want: []*tensor.Tensor{f32([]int{2, 2}, 0, 1, 4, 5), f32([]int{2, 2}, 2, 3, 6, 7)}},
		{name: "attr split opset 11", op: "Split", opset: 11, attrs: graph.Attrs{"split": ints(1, 3)}, in: []*tensor.Tensor{seq(4)},
			want: []*tensor.Tensor{f32([]int{1}, 0), f32([]int{3}, 1, 2, 3)}},
		{name: "input split opset 13", op: "Split", opset: 13, in: []*tensor.Tensor{seq(4), i64(3, 1)},
			want: []*tensor.Tensor{f32([]int{3}, 0, 1, 2), f32([]int{1}, 3)}},
		{name: "zero size splits", op: "Split", opset: 13, in: []*tensor.Tensor{seq(3), i64(0, 3, 0)},
			want: []*tensor.Tensor{f32([]int{0}), f32([]int{3}, 0, 1, 2), f32([]int{0})}},
		{name: "num_outputs uneven", op: "Split", opset: 18, attrs: graph.Attrs{"num_outputs": intA(4)}, in: []*tensor.Tensor{x},
			want: []*tensor.Tensor{f32([]int{2}, 0, 1), f32([]int{2}, 2, 3), f32([]int{2}, 4, 5), f32([]int{1}, 6)}},
		{name: "uneven without num_outputs", op: "Split", opset: 13, nout: 2, in: []*tensor.Tensor{x}, wantErr: true},
		{name: "bad sum", op: "Split", opset: 13, nout: 2, in: []*tensor.Tensor{x, i64(3, 3)}, wantErr: true},
		{name: "negative split", op: "Split", opset: 13, nout: 2, in: []*tensor.Tensor{x, i64(8, -1)}, wantErr: true},
	})
}

func TestSlice(t *testing.T) {
	x := seq(3, 4)
	maxI, minI := int64(math.MaxInt64), int64(math.MinInt64)
	runCases(t, []opCase{
		{name: "opset1 attrs", op: "Slice", opset: 1, attrs: graph.Attrs{"starts": ints(1, 0), "ends": ints(2, 3)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32([]int{1, 3}, 4, 5, 6)}},
		{name: "opset1 axes", op: "Slice", opset: 1, attrs: graph.Attrs{"starts": ints(1), "ends": ints(1000), "axes": ints(1)},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32([]int{3, 3}, 1, 2, 3, 5, 6, 7, 9, 10, 11)}},
		{name: "inputs default axes", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0, 1), i64(2, 3)},
			want: []*tensor.Tensor{f32([]int{2, 2}, 1, 2, 5, 6)}},
		{name: "negative steps", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(-1, maxI), i64(minI, minI), i64(0, 1), i64(-2, -3)},
			want: []*tensor.Tensor{f32([]int{2, 2}, 11, 8, 3, 0)}},
		{name: "out of bounds", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(-100, 10), i64(100, 1000), i64(0, 1)},
			want: []*tensor.Tensor{f32([]int{3, 0})}},
		{name: "strided inner", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(1), i64(maxI), i64(-1), i64(2)},
			want: []*tensor.Tensor{f32([]int{3, 2}, 1, 3, 5, 7, 9, 11)}},
		{name: "int32 inputs strided outer", op: "Slice", opset: 13, in: []*tensor.Tensor{x, tensor.From([]int{1}, []int32{0}), tensor.From([]int{1}, []int32{3}), tensor.From([]int{1}, []int32{0}), tensor.From([]int{1}, []int32{2})},
			want: []*tensor.Tensor{f32([]int{2, 4}, 0, 1, 2, 3, 8, 9, 10, 11)}},
		{name: "full copy", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0), i64(maxI)},
			want: []*tensor.Tensor{x}},
		{name: "step zero", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0), i64(1), i64(0), i64(0)}, wantErr: true},
		{name: "repeated axes", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0, 0), i64(1, 1), i64(0, -2)}, wantErr: true},
		{name: "axis out of range", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0), i64(1), i64(2)}, wantErr: true},
		{name: "length mismatch", op: "Slice", opset: 13, in: []*tensor.Tensor{x, i64(0), i64(1, 2)}, wantErr: true},
	})
}

func TestReshapeFamily(t *testing.T) {
	x := seq(2, 3, 4)
	r := func(s ...int) *tensor.Tensor { v, _ := x.Reshaped(s); return v }
	runCases(t, []opCase{
		{name: "reshape zero copies", op: "Reshape", opset: 13, in: []*tensor.Tensor{x, i64(0, -1)}, want: []*tensor.Tensor{r(2, 12)}},
		{name: "reshape infer", op: "Reshape", opset: 13, in: []*tensor.Tensor{x, i64(-1, 2, 2)}, want: []*tensor.Tensor{r(6, 2, 2)}},
		{name: "reshape allowzero", op: "Reshape", opset: 14, attrs: graph.Attrs{"allowzero": intA(1)},
			in: []*tensor.Tensor{f32([]int{0, 3}), i64(3, 0)}, want: []*tensor.Tensor{f32([]int{3, 0})}},
		{name: "reshape zero without allowzero copies", op: "Reshape", opset: 14,
			in: []*tensor.Tensor{f32([]int{0, 3}), i64(3, 0)}, wantErr: true},
		{name: "reshape not multiple", op: "Reshape", opset: 13, in: []*tensor.Tensor{x, i64(5, -1)}, wantErr: true},
		{name: "reshape count", op: "Reshape", opset: 13, in: []*tensor.Tensor{x, i64(5, 5)}, wantErr: true},
		{name: "reshape two -1", op: "Reshape", opset: 13, in: []*tensor.Tensor{x, i64(-1, -1)}, wantErr: true},
		{name: "reshape opset1 attr", op: "Reshape", opset: 1, attrs: graph.Attrs{"shape": ints(4, 6)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{r(4, 6)}},
		{name: "flatten default", op: "Flatten", opset: 13, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{r(2, 12)}},
		{name: "flatten 0", op: "Flatten", opset: 13, attrs: graph.Attrs{"axis": intA(0)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{r(1, 24)}},
		{name: "flatten -1", op: "Flatten", opset: 13, attrs: graph.Attrs{"axis": intA(-1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{r(6, 4)}},
		{name: "flatten 3", op: "Flatten", opset: 13, attrs: graph.Attrs{"axis": intA(3)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{r(24, 1)}},
		{name: "flatten bad", op: "Flatten", opset: 13, attrs: graph.Attrs{"axis": intA(4)}, in: []*tensor.Tensor{x}, wantErr: true},
		{name: "squeeze all", op: "Squeeze", opset: 13, in: []*tensor.Tensor{seq(1, 3, 1)}, want: []*tensor.Tensor{seq(3)}},
		{name: "squeeze attr", op: "Squeeze", opset: 11, attrs: graph.Attrs{"axes": ints(-1)}, in: []*tensor.Tensor{seq(1, 3, 1)}, want: []*tensor.Tensor{seq(1, 3)}},
		{name: "squeeze input", op: "Squeeze", opset: 13, in: []*tensor.Tensor{seq(1, 3, 1), i64(2, 0)}, want: []*tensor.Tensor{seq(3)}},
		{name: "squeeze not one", op: "Squeeze", opset: 13, in: []*tensor.Tensor{seq(1, 3, 1), i64(1)}, wantErr: true},
		{name: "unsqueeze attr", op: "Unsqueeze", opset: 11, attrs: graph.Attrs{"axes": ints(0, 3)}, in: []*tensor.Tensor{seq(2, 3)}, want: []*tensor.Tensor{seq(1, 2, 3, 1)}},
		{name: "unsqueeze unsorted negative", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{seq(2, 3), i64(-1, 1, 0)}, want: []*tensor.Tensor{seq(1, 1, 2, 3, 1)}},
		{name: "unsqueeze scalar", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{tensor.Scalar(float32(0)), i64(0)}, want: []*tensor.Tensor{seq(1)}},
		{name: "unsqueeze dup", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{seq(2), i64(0, -3)}, wantErr: true},
		{name: "unsqueeze range", op: "Unsqueeze", opset: 13, in: []*tensor.Tensor{seq(2), i64(2)}, wantErr: true},
	})
}

func TestViewsShareData(t *testing.T) {
	x := seq(2, 3)
	out, err := call("Reshape", 13, nil, 1, x, i64(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	if &out[0].Float32s()[0] != &x.Float32s()[0] {
		t.Error("Reshape should share data")
	}
	out, err = call("Slice", 13, nil, 1, x, i64(0), i64(2))
	if err != nil {
		t.Fatal(err)
	}
	if &out[0].Float32s()[0] == &x.Float32s()[0] {
		t.Error("Slice must write fresh output")
	}
}

// naiveTranspose is the reference: out[i...] = in[perm-mapped i...].
func naiveTranspose(x *tensor.Tensor, perm []int) *tensor.Tensor {
	r := x.Rank()
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	out, _ := tensor.New(x.DType, shape)
	src, dst := x.Float32s(), out.Float32s()
	ist := tensor.Strides(x.Shape)
	ost := tensor.Strides(shape)
	for o := range dst {
		s, rem := 0, o
		for i := 0; i < r; i++ {
			c := rem / ost[i]
			rem %= ost[i]
			s += c * ist[perm[i]]
		}
		dst[o] = src[s]
	}
	return out
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestTransposeAllPerms(t *testing.T) {
	for _, shape := range [][]int{{2, 3, 4, 5}, {1, 3, 1, 5}, {2, 1, 40, 33}, {37, 1, 2, 70}, {0, 2, 3, 1}} {
		x := seq(shape...)
		for _, p := range permutations(4) {
			perm := make([]int64, 4)
			for i, v := range p {
				perm[i] = int64(v)
			}
			got, err := call("Transpose", 13, graph.Attrs{"perm": ints(perm...)}, 1, x)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameTensor(got[0], naiveTranspose(x, p)); err != nil {
				t.Errorf("shape %v perm %v: %v", shape, p, err)
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	runCases(t, []opCase{
		{name: "default reverses", op: "Transpose", opset: 13, in: []*tensor.Tensor{seq(2, 3)},
			want: []*tensor.Tensor{f32([]int{3, 2}, 0, 3, 1, 4, 2, 5)}},
		{name: "strings", op: "Transpose", opset: 13, in: []*tensor.Tensor{tensor.From([]int{2, 1}, []string{"a", "b"})},
			want: []*tensor.Tensor{tensor.From([]int{1, 2}, []string{"a", "b"})}},
		{name: "int64 batched 2d", op: "Transpose", opset: 13, attrs: graph.Attrs{"perm": ints(0, 2, 1)},
			in:   []*tensor.Tensor{tensor.From([]int{2, 1, 2}, []int64{1, 2, 3, 4})},
			want: []*tensor.Tensor{tensor.From([]int{2, 2, 1}, []int64{1, 2, 3, 4})}},
		{name: "scalar", op: "Transpose", opset: 13, in: []*tensor.Tensor{tensor.Scalar(float32(3))},
			want: []*tensor.Tensor{tensor.Scalar(float32(3))}},
		{name: "perm rank mismatch", op: "Transpose", opset: 13, attrs: graph.Attrs{"perm": ints(1, 0)}, in: []*tensor.Tensor{seq(2, 3, 4)}, wantErr: true},
		{name: "bad perm", op: "Transpose", opset: 13, attrs: graph.Attrs{"perm": ints(0, 0)}, in: []*tensor.Tensor{seq(2, 3)}, wantErr: true},
	})
}

func TestShapeSizeConstants(t *testing.T) {
	x := seq(2, 3, 4)
	strT := func(v ...string) *tensor.Tensor { return tensor.From([]int{len(v)}, v) }
	runCases(t, []opCase{
		{name: "shape", op: "Shape", opset: 13, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{i64(2, 3, 4)}},
		{name: "shape start end", op: "Shape", opset: 15, attrs: graph.Attrs{"start": intA(-2), "end": intA(-1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{i64(3)}},
		{name: "shape clipped", op: "Shape", opset: 15, attrs: graph.Attrs{"start": intA(-10), "end": intA(10)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{i64(2, 3, 4)}},
		{name: "shape empty", op: "Shape", opset: 15, attrs: graph.Attrs{"start": intA(2), "end": intA(1)}, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{i64()}},
		{name: "shape of string scalar", op: "Shape", opset: 13, in: []*tensor.Tensor{tensor.Scalar("s")}, want: []*tensor.Tensor{i64()}},
		{name: "size", op: "Size", opset: 13, in: []*tensor.Tensor{x}, want: []*tensor.Tensor{tensor.Scalar(int64(24))}},
		{name: "constantofshape default", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{i64(2)}, want: []*tensor.Tensor{f32([]int{2}, 0, 0)}},
		{name: "constantofshape int64", op: "ConstantOfShape", opset: 9, attrs: graph.Attrs{"value": {Type: graph.AttrTensor, Tensor: i64(7)}},
			in: []*tensor.Tensor{i64(1, 2)}, want: []*tensor.Tensor{tensor.From([]int{1, 2}, []int64{7, 7})}},
		{name: "constantofshape zero dim", op: "ConstantOfShape", opset: 9, attrs: graph.Attrs{"value": {Type: graph.AttrTensor, Tensor: tensor.From([]int{1}, []int32{0})}},
			in: []*tensor.Tensor{i64(0)}, want: []*tensor.Tensor{tensor.From([]int{0}, []int32{})}},
		{name: "constantofshape scalar", op: "ConstantOfShape", opset: 9, attrs: graph.Attrs{"value": {Type: graph.AttrTensor, Tensor: tensor.From([]int{1}, []float32{1.5})}},
			in: []*tensor.Tensor{i64()}, want: []*tensor.Tensor{tensor.Scalar(float32(1.5))}},
		{name: "constantofshape negative", op: "ConstantOfShape", opset: 9, in: []*tensor.Tensor{i64(-1)}, wantErr: true},
		{name: "constant value", op: "Constant", opset: 13, attrs: graph.Attrs{"value": {Type: graph.AttrTensor, Tensor: seq(2)}}, want: []*tensor.Tensor{seq(2)}},
		{name: "constant value_float", op: "Constant", opset: 13, attrs: graph.Attrs{"value_float": {Type: graph.AttrFloat, Float: 2}}, want: []*tensor.Tensor{tensor.Scalar(float32(2))}},
		{name: "constant value_floats", op: "Constant", opset: 13, attrs: graph.Attrs{"value_floats": {Type: graph.AttrFloats, Floats: []float32{1, 2}}}, want: []*tensor.Tensor{f32([]int{2}, 1, 2)}},
		{name: "constant value_int", op: "Constant", opset: 13, attrs: graph.Attrs{"value_int": intA(5)}, want: []*tensor.Tensor{tensor.Scalar(int64(5))}},
		{name: "constant value_ints", op: "Constant", opset: 13, attrs: graph.Attrs{"value_ints": ints(5, 6)}, want: []*tensor.Tensor{i64(5, 6)}},
		{name: "constant value_ints empty", op: "Constant", opset: 13, attrs: graph.Attrs{"value_ints": ints()}, want: []*tensor.Tensor{i64()}},
		{name: "constant value_string", op: "Constant", opset: 13, attrs: graph.Attrs{"value_string": {Type: graph.AttrString, String: "hi"}}, want: []*tensor.Tensor{tensor.Scalar("hi")}},
		{name: "constant value_strings", op: "Constant", opset: 13, attrs: graph.Attrs{"value_strings": {Type: graph.AttrStrings, Strings: []string{"a", "b"}}}, want: []*tensor.Tensor{strT("a", "b")}},
		{name: "constant none", op: "Constant", opset: 13, wantErr: true},
		{name: "constant two", op: "Constant", opset: 13, attrs: graph.Attrs{"value_int": intA(5), "value_ints": ints(1)}, wantErr: true},
	})
}

func TestExpandTile(t *testing.T) {
	runCases(t, []opCase{
		{name: "expand bidirectional", op: "Expand", opset: 13, in: []*tensor.Tensor{f32([]int{3, 1}, 1, 2, 3), i64(2, 1, 2)},
			want: []*tensor.Tensor{f32([]int{2, 3, 2}, 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3)}},
		{name: "expand smaller shape", op: "Expand", opset: 13, in: []*tensor.Tensor{f32([]int{1, 3}, 1, 2, 3), i64(2, 1)},
			want: []*tensor.Tensor{f32([]int{2, 3}, 1, 2, 3, 1, 2, 3)}},
		{name: "expand scalar", op: "Expand", opset: 13, in: []*tensor.Tensor{tensor.Scalar("x"), i64(2)},
			want: []*tensor.Tensor{tensor.From([]int{2}, []string{"x", "x"})}},
		{name: "expand incompatible", op: "Expand", opset: 13, in: []*tensor.Tensor{seq(3), i64(2)}, wantErr: true},
		{name: "tile", op: "Tile", opset: 13, in: []*tensor.Tensor{f32([]int{2, 2}, 1, 2, 3, 4), i64(2, 2)},
			want: []*tensor.Tensor{f32([]int{4, 4}, 1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4)}},
		{name: "tile zero", op: "Tile", opset: 13, in: []*tensor.Tensor{seq(2), i64(0)}, want: []*tensor.Tensor{f32([]int{0})}},
		{name: "tile bad repeats", op: "Tile", opset: 13, in: []*tensor.Tensor{seq(2), i64(1, 1)}, wantErr: true},
	})
}

func TestPad(t *testing.T) {
	x := f32([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	runCases(t, []opCase{
		{name: "constant attrs opset2", op: "Pad", opset: 2, attrs: graph.Attrs{"pads": ints(0, 1, 0, 1), "value": {Type: graph.AttrFloat, Float: 9}},
			in: []*tensor.Tensor{x}, want: []*tensor.Tensor{f32([]int{2, 5}, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9)}},
		{name: "constant input", op: "Pad", opset: 13, in: []*tensor.Tensor{x, i64(1, 0, 0, 0), f32([]int{}, -1)},
			want: []*tensor.Tensor{f32([]int{3, 3}, -1, -1, -1, 1, 2, 3, 4, 5, 6)}},
		{name: "reflect", op: "Pad", opset: 13, attrs: graph.Attrs{"mode": {Type: graph.AttrString, String: "reflect"}}, in: []*tensor.Tensor{x, i64(0, 2, 0, 2)},
			want: []*tensor.Tensor{f32([]int{2, 7}, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4)}},
		{name: "edge", op: "Pad", opset: 13, attrs: graph.Attrs{"mode": {Type: graph.AttrString, String: "edge"}}, in: []*tensor.Tensor{x, i64(1, 1, 0, 0)},
			want: []*tensor.Tensor{f32([]int{3, 4}, 1, 1, 2, 3, 1, 1, 2, 3, 4, 4, 5, 6)}},
		{name: "wrap", op: "Pad", opset: 19, attrs: graph.Attrs{"mode": {Type: graph.AttrString, String: "wrap"}}, in: []*tensor.Tensor{x, i64(0, 1, 0, 1)},
			want: []*tensor.Tensor{f32([]int{2, 5}, 3, 1, 2, 3, 1, 6, 4, 5, 6, 4)}},
		{name: "axes opset18", op: "Pad", opset: 18, in: []*tensor.Tensor{x, i64(1, 0), nil, i64(-1)},
			want: []*tensor.Tensor{f32([]int{2, 4}, 0, 1, 2, 3, 0, 4, 5, 6)}},
		{name: "negative pads crop", op: "Pad", opset: 13, in: []*tensor.Tensor{x, i64(0, -1, 0, 1)},
			want: []*tensor.Tensor{f32([]int{2, 3}, 2, 3, 0, 5, 6, 0)}},
		{name: "int64 data", op: "Pad", opset: 13, in: []*tensor.Tensor{i64(1, 2), i64(1, 0), tensor.Scalar(int64(7))},
			want: []*tensor.Tensor{i64(7, 1, 2)}},
		{name: "bad pads length", op: "Pad", opset: 13, in: []*tensor.Tensor{x, i64(1, 0)}, wantErr: true},
		{name: "pads too negative", op: "Pad", opset: 13, in: []*tensor.Tensor{x, i64(0, -4, 0, 0)}, wantErr: true},
	})
}

func TestRangeCumSumTriluReverse(t *testing.T) {
	x := f32([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	runCases(t, []opCase{
		{name: "range float", op: "Range", opset: 11, in: []*tensor.Tensor{tensor.Scalar(float32(1)), tensor.Scalar(float32(5)), tensor.Scalar(float32(2))},
			want: []*tensor.Tensor{f32([]int{2}, 1, 3)}},
		{name: "range int32 negative", op: "Range", opset: 11, in: []*tensor.Tensor{tensor.Scalar(int32(10)), tensor.Scalar(int32(6)), tensor.Scalar(int32(-3))},
			want: []*tensor.Tensor{tensor.From([]int{2}, []int32{10, 7})}},
		{name: "range int8 wide span", op: "Range", opset: 11, in: []*tensor.Tensor{tensor.Scalar(int8(-100)), tensor.Scalar(int8(100)), tensor.Scalar(int8(100))},
			want: []*tensor.Tensor{tensor.From([]int{2}, []int8{-100, 0})}},
		{name: "range empty", op: "Range", opset: 11, in: []*tensor.Tensor{tensor.Scalar(int64(5)), tensor.Scalar(int64(1)), tensor.Scalar(int64(1))},
			want: []*tensor.Tensor{i64()}},
		{name: "range zero delta", op: "Range", opset: 11, in: []*tensor.Tensor{tensor.Scalar(int64(5)), tensor.Scalar(int64(1)), tensor.Scalar(int64(0))}, wantErr: true},
		{name: "cumsum axis1", op: "CumSum", opset: 14, in: []*tensor.Tensor{x, tensor.Scalar(int32(1))},
			want: []*tensor.Tensor{f32([]int{2, 3}, 1, 3, 6, 4, 9, 15)}},
		{name: "cumsum exclusive reverse axis0", op: "CumSum", opset: 14, attrs: graph.Attrs{"exclusive": intA(1), "reverse": intA(1)},
			in: []*tensor.Tensor{x, i64(0)}, want: []*tensor.Tensor{f32([]int{2, 3}, 4, 5, 6, 0, 0, 0)}},
		{name: "cumsum exclusive int64", op: "CumSum", opset: 14, attrs: graph.Attrs{"exclusive": intA(1)},
			in: []*tensor.Tensor{i64(1, 2, 3), i64(-1)}, want: []*tensor.Tensor{i64(0, 1, 3)}},
		{name: "cumsum reverse", op: "CumSum", opset: 14, attrs: graph.Attrs{"reverse": intA(1)},
			in: []*tensor.Tensor{i64(1, 2, 3), i64(0)}, want: []*tensor.Tensor{i64(6, 5, 3)}},
		{name: "cumsum bad axis", op: "CumSum", opset: 14, in: []*tensor.Tensor{x, i64(2)}, wantErr: true},
		{name: "trilu upper", op: "Trilu", opset: 14, in: []*tensor.Tensor{seq(3, 3)},
			want: []*tensor.Tensor{f32([]int{3, 3}, 0, 1, 2, 0, 4, 5, 0, 0, 8)}},
		{name: "trilu lower k=-1", op: "Trilu", opset: 14, attrs: graph.Attrs{"upper": intA(0)}, in: []*tensor.Tensor{seq(3, 3), tensor.Scalar(int64(-1))},
			want: []*tensor.Tensor{f32([]int{3, 3}, 0, 0, 0, 3, 0, 0, 6, 7, 0)}},
		{name: "trilu upper k=2 batched", op: "Trilu", opset: 14, in: []*tensor.Tensor{seq(2, 2, 3), tensor.Scalar(int64(2))},
			want: []*tensor.Tensor{f32([]int{2, 2, 3}, 0, 0, 2, 0, 0, 0, 0, 0, 8, 0, 0, 0)}},
		{name: "reversesequence time major", op: "ReverseSequence", opset: 10,
			in:   []*tensor.Tensor{seq(3, 2), i64(3, 2)},
			want: []*tensor.Tensor{f32([]int{3, 2}, 4, 3, 2, 1, 0, 5)}},
		{name: "reversesequence batch major", op: "ReverseSequence", opset: 10, attrs: graph.Attrs{"batch_axis": intA(0), "time_axis": intA(1)},
			in:   []*tensor.Tensor{seq(2, 3), i64(1, 3)},
			want: []*tensor.Tensor{f32([]int{2, 3}, 0, 1, 2, 5, 4, 3)}},
		{name: "reversesequence bad len", op: "ReverseSequence", opset: 10, in: []*tensor.Tensor{seq(3, 2), i64(4, 1)}, wantErr: true},
	})
}

func TestErrorsNeverPanic(t *testing.T) {
	// Garbage inputs across all ops: must return errors, not panic.
	bad := []*tensor.Tensor{seq(2, 3), i64(99, -99, 5), f32([]int{1}, 3), tensor.Scalar("x"), i64()}
	for _, op := range []string{"Gather", "GatherElements", "Concat", "Split", "Slice", "Reshape", "Flatten", "Transpose",
		"Squeeze", "Unsqueeze", "Shape", "Size", "ConstantOfShape", "Expand", "Tile", "Pad", "Range", "CumSum", "Trilu", "ReverseSequence"} {
		for i := range bad {
			for j := range bad {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s(%v, %v) panicked: %v", op, bad[i], bad[j], r)
						}
					}()
					_, _ = call(op, 13, graph.Attrs{"axis": intA(0)}, 2, bad[i], bad[j])
					_, _ = call(op, 18, graph.Attrs{"axis": intA(0)}, 2, bad[i], bad[j], bad[j])
				}()
			}
		}
	}
}
