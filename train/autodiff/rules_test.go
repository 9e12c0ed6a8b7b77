package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// gradCases are the hand-written finite-difference checks of the backward
// rules (TestEveryGradientRuleChecked wants one for every rule that is not
// a declared unary derivative).
func gradCases() []gradCase {
	rng := rand.New(rand.NewPCG(1, 2))
	r := func(shape ...int) *tensor.Tensor { return randT(rng, false, shape...) }
	pos := func(shape ...int) *tensor.Tensor { return randT(rng, true, shape...) }
	return []gradCase{
		{name: "add_bcast", op: "Add", inputs: []*tensor.Tensor{r(2, 3, 4), r(4)}},
		{name: "sub_bcast", op: "Sub", inputs: []*tensor.Tensor{r(2, 1, 4), r(3, 1)}},
		{name: "mul_bcast", op: "Mul", inputs: []*tensor.Tensor{r(2, 3), r(1, 3)}},
		{name: "div", op: "Div", inputs: []*tensor.Tensor{r(2, 3), pos(2, 3)}},
		{name: "pow", op: "Pow", inputs: []*tensor.Tensor{pos(2, 3), r(3)}},
		{name: "pow_int", op: "Pow", inputs: []*tensor.Tensor{r(2, 3), i64([]int{}, 2)}},
		{name: "relu", op: "Relu", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "leakyrelu", op: "LeakyRelu", inputs: []*tensor.Tensor{r(3, 4)}, attrs: graph.Attrs{"alpha": attrFloat(0.1)}},
		{name: "elu", op: "Elu", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "selu", op: "Selu", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "sigmoid", op: "Sigmoid", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "tanh", op: "Tanh", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "softplus", op: "Softplus", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "softsign", op: "Softsign", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "exp", op: "Exp", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "log", op: "Log", inputs: []*tensor.Tensor{pos(3, 4)}},
		{name: "sqrt", op: "Sqrt", inputs: []*tensor.Tensor{pos(3, 4)}},
		{name: "neg", op: "Neg", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "abs", op: "Abs", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "reciprocal", op: "Reciprocal", inputs: []*tensor.Tensor{pos(3, 4)}},
		{name: "erf", op: "Erf", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "hardsigmoid", op: "HardSigmoid", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "identity", op: "Identity", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "clip", op: "Clip", inputs: []*tensor.Tensor{r(3, 4), tensor.Scalar(-0.5), tensor.Scalar(0.5)}, constant: map[int]bool{1: true, 2: true}},
		{name: "where", op: "Where", inputs: []*tensor.Tensor{tensor.From([]int{3}, []bool{true, false, true}), r(2, 3), r(3)}},
		{name: "matmul_2d", op: "MatMul", inputs: []*tensor.Tensor{r(3, 4), r(4, 5)}},
		{name: "matmul_batched_bcast", op: "MatMul", inputs: []*tensor.Tensor{r(2, 3, 4), r(4, 2)}},
		{name: "matmul_1d", op: "MatMul", inputs: []*tensor.Tensor{r(4), r(2, 4, 3)}},
		{name: "gemm", op: "Gemm", inputs: []*tensor.Tensor{r(3, 4), r(4, 5), r(5)}},
		{name: "gemm_trans", op: "Gemm", inputs: []*tensor.Tensor{r(4, 3), r(5, 4), r(3, 5)},
			attrs: graph.Attrs{"transA": attrInt(1), "transB": attrInt(1), "alpha": attrFloat(0.7), "beta": attrFloat(1.3)}},
		{name: "softmax13", op: "Softmax", inputs: []*tensor.Tensor{r(2, 3, 4)}, attrs: graph.Attrs{"axis": attrInt(1)}},
		{name: "softmax11", op: "Softmax", opset: 11, inputs: []*tensor.Tensor{r(2, 3, 4)}},
		{name: "logsoftmax", op: "LogSoftmax", inputs: []*tensor.Tensor{r(3, 5)}},
		{name: "reducemean", op: "ReduceMean", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 4)}, attrs: graph.Attrs{"axes": attrInts(1), "keepdims": attrInt(0)}},
		{name: "reducemean18", op: "ReduceMean", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{1}, -1)}},
		{name: "reducesum", op: "ReduceSum", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{2}, 0, 2)}},
		{name: "reducemax", op: "ReduceMax", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 4)}, attrs: graph.Attrs{"axes": attrInts(2)}},
		{name: "reducesumsquare", op: "ReduceSumSquare", opset: 13, inputs: []*tensor.Tensor{r(2, 3)}},
		{name: "globalavgpool", op: "GlobalAveragePool", inputs: []*tensor.Tensor{r(2, 3, 5)}},
		{name: "batchnorm", op: "BatchNormalization", inputs: []*tensor.Tensor{r(2, 3, 4), r(3), r(3), r(3), pos(3)}, constant: map[int]bool{3: true, 4: true}},
		{name: "instancenorm", op: "InstanceNormalization", inputs: []*tensor.Tensor{r(2, 3, 5), r(3), r(3)}},
		{name: "layernorm", op: "LayerNormalization", inputs: []*tensor.Tensor{r(2, 3, 4), r(4), r(4)}},
		{name: "reshape", op: "Reshape", inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{2}, 6, -1)}},
		{name: "flatten", op: "Flatten", inputs: []*tensor.Tensor{r(2, 3, 4)}},
		{name: "squeeze", op: "Squeeze", inputs: []*tensor.Tensor{r(2, 1, 4), i64([]int{1}, 1)}},
		{name: "unsqueeze", op: "Unsqueeze", inputs: []*tensor.Tensor{r(2, 4), i64([]int{1}, 0)}},
		{name: "transpose", op: "Transpose", inputs: []*tensor.Tensor{r(2, 3, 4)}, attrs: graph.Attrs{"perm": attrInts(2, 0, 1)}},
		{name: "slice", op: "Slice", inputs: []*tensor.Tensor{r(4, 5), i64([]int{2}, 1, -1), i64([]int{2}, 3, -6), i64([]int{2}, 0, 1), i64([]int{2}, 1, -2)}},
		{name: "gather_embed", op: "Gather", inputs: []*tensor.Tensor{r(5, 3), i64([]int{2, 3}, 0, 4, 4, 1, 0, 2)}},
		{name: "gather_axis1", op: "Gather", inputs: []*tensor.Tensor{r(2, 5), i64([]int{}, -1)}, attrs: graph.Attrs{"axis": attrInt(1)}},
		{name: "concat", op: "Concat", inputs: []*tensor.Tensor{r(2, 3), r(2, 2)}, attrs: graph.Attrs{"axis": attrInt(1)}},
		{name: "split", op: "Split", inputs: []*tensor.Tensor{r(2, 5), i64([]int{2}, 2, 3)}, attrs: graph.Attrs{"axis": attrInt(1)}, outputs: 2},
		{name: "expand", op: "Expand", inputs: []*tensor.Tensor{r(3, 1), i64([]int{3}, 2, 3, 4)}},
		{name: "conv1d", op: "Conv", inputs: []*tensor.Tensor{r(2, 3, 7), r(4, 3, 3), r(4)}, attrs: graph.Attrs{"pads": attrInts(1, 1)}},
		{name: "conv1d_stride_dil", op: "Conv", inputs: []*tensor.Tensor{r(1, 2, 9), r(2, 2, 2)}, attrs: graph.Attrs{"strides": attrInts(2), "dilations": attrInts(2)}},
		{name: "conv2d_group_same", op: "Conv", inputs: []*tensor.Tensor{r(1, 4, 5, 5), r(4, 2, 3, 3), r(4)}, attrs: graph.Attrs{"group": attrInt(2), "auto_pad": graph.Attr{Type: graph.AttrString, String: "SAME_UPPER"}}},
		{name: "tile", op: "Tile", inputs: []*tensor.Tensor{r(2, 3), i64([]int{2}, 2, 1)}},
		{name: "maxpool2d_pads_strides", op: "MaxPool", inputs: []*tensor.Tensor{r(2, 2, 5, 6)},
			attrs: graph.Attrs{"kernel_shape": attrInts(3, 2), "strides": attrInts(2, 2), "pads": attrInts(1, 0, 1, 1)}},
		{name: "maxpool1d_ceil_dilated", op: "MaxPool", opset: 12, inputs: []*tensor.Tensor{r(1, 3, 9)},
			attrs: graph.Attrs{"kernel_shape": attrInts(2), "strides": attrInts(2), "dilations": attrInts(2), "ceil_mode": attrInt(1)}},
		{name: "maxpool_same", op: "MaxPool", inputs: []*tensor.Tensor{r(1, 2, 5, 5)},
			attrs: graph.Attrs{"kernel_shape": attrInts(2, 2), "auto_pad": graph.Attr{Type: graph.AttrString, String: "SAME_UPPER"}}},
		{name: "avgpool_pads", op: "AveragePool", inputs: []*tensor.Tensor{r(2, 2, 5, 4)},
			attrs: graph.Attrs{"kernel_shape": attrInts(3, 3), "strides": attrInts(2, 1), "pads": attrInts(1, 1, 1, 1)}},
		{name: "avgpool_pads_count_pad", op: "AveragePool", inputs: []*tensor.Tensor{r(1, 2, 5, 4)},
			attrs: graph.Attrs{"kernel_shape": attrInts(3, 2), "pads": attrInts(1, 1, 1, 0), "count_include_pad": attrInt(1)}},
		{name: "avgpool1d", op: "AveragePool", inputs: []*tensor.Tensor{r(2, 3, 7)}, attrs: graph.Attrs{"kernel_shape": attrInts(3)}},
		{name: "globalmaxpool", op: "GlobalMaxPool", inputs: []*tensor.Tensor{r(2, 3, 4, 3)}},
		{name: "max_bcast", op: "Max", inputs: []*tensor.Tensor{r(2, 3), r(3), r(2, 1)}},
		{name: "min", op: "Min", inputs: []*tensor.Tensor{r(2, 3), r(2, 3)}},
		{name: "sum", op: "Sum", inputs: []*tensor.Tensor{r(2, 3), r(3), r(1, 3)}},
		{name: "mean", op: "Mean", inputs: []*tensor.Tensor{r(2, 3), r(2, 1)}},
		{name: "prelu", op: "PRelu", inputs: []*tensor.Tensor{r(2, 3, 4), r(3, 1)}},
		{name: "cumsum", op: "CumSum", inputs: []*tensor.Tensor{r(3, 4), tensor.Scalar(int64(1))}},
		{name: "cumsum_exclusive_reverse", op: "CumSum", inputs: []*tensor.Tensor{r(3, 4), tensor.Scalar(int64(0))},
			attrs: graph.Attrs{"exclusive": attrInt(1), "reverse": attrInt(1)}},
		{name: "einsum_matmul", op: "Einsum", inputs: []*tensor.Tensor{r(2, 3, 4), r(4, 5)},
			attrs: graph.Attrs{"equation": graph.Attr{Type: graph.AttrString, String: "bij,jk->bik"}}},
		{name: "einsum_summed_label", op: "Einsum", inputs: []*tensor.Tensor{r(3, 4), r(4)},
			attrs: graph.Attrs{"equation": graph.Attr{Type: graph.AttrString, String: "ab,b->"}}},
		{name: "einsum_outer_sum", op: "Einsum", inputs: []*tensor.Tensor{r(3, 2), r(4)},
			attrs: graph.Attrs{"equation": graph.Attr{Type: graph.AttrString, String: "ab,c->ca"}}},
		{name: "gelu", op: "Gelu", opset: 20, inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "gelu_tanh", op: "Gelu", opset: 20, inputs: []*tensor.Tensor{r(3, 4)},
			attrs: graph.Attrs{"approximate": graph.Attr{Type: graph.AttrString, String: "tanh"}}},
		{name: "sin", op: "Sin", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "cos", op: "Cos", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "trilu", op: "Trilu", opset: 14, inputs: []*tensor.Tensor{r(2, 4, 4), tensor.Scalar(int64(-1))}},
		{name: "pad", op: "Pad", opset: 13, inputs: []*tensor.Tensor{r(2, 3), i64([]int{4}, 1, 0, 0, 2)}},
		{name: "gatherelements", op: "GatherElements", inputs: []*tensor.Tensor{r(3, 4), i64([]int{2, 4}, 0, 2, 1, 0, 2, 2, 0, 1)}},
		{name: "reversesequence", op: "ReverseSequence", opset: 10, inputs: []*tensor.Tensor{r(4, 2, 3), i64([]int{2}, 3, 1)},
			attrs: graph.Attrs{"batch_axis": attrInt(1), "time_axis": attrInt(0)}},
		{name: "dropout", op: "Dropout", inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "cast", op: "Cast", inputs: []*tensor.Tensor{r(3, 4)}, attrs: graph.Attrs{"to": attrInt(int64(tensor.Float64))}},
		{name: "hardswish", op: "HardSwish", opset: 14, inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "reducemin", op: "ReduceMin", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 4)}, attrs: graph.Attrs{"axes": attrInts(0, 2)}},
		{name: "reducel2", op: "ReduceL2", opset: 13, inputs: []*tensor.Tensor{r(2, 3)}, attrs: graph.Attrs{"axes": attrInts(1)}},
		{name: "depthtospace_dcr", op: "DepthToSpace", inputs: []*tensor.Tensor{r(1, 8, 2, 3)}, attrs: graph.Attrs{"blocksize": attrInt(2)}},
		{name: "depthtospace_crd", op: "DepthToSpace", inputs: []*tensor.Tensor{r(2, 4, 2, 1)}, attrs: graph.Attrs{"blocksize": attrInt(2), "mode": {Type: graph.AttrString, String: "CRD"}}},
		{name: "spacetodepth", op: "SpaceToDepth", inputs: []*tensor.Tensor{r(1, 2, 4, 6)}, attrs: graph.Attrs{"blocksize": attrInt(2)}},
		{name: "gathernd", op: "GatherND", inputs: []*tensor.Tensor{r(3, 4), i64([]int{3, 2}, 0, 1, 2, 3, 0, 1)}},
		{name: "gathernd_batch", op: "GatherND", inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{2, 1}, 2, 0)}, attrs: graph.Attrs{"batch_dims": attrInt(1)}},
		{name: "tensorscatter", op: "TensorScatter", opset: 24, inputs: []*tensor.Tensor{r(2, 4, 3), r(2, 2, 3), i64([]int{2}, 1, 2)}, attrs: graph.Attrs{"axis": attrInt(1)}},
		{name: "maxunpool", op: "MaxUnpool", inputs: []*tensor.Tensor{r(1, 1, 2, 2), i64([]int{1, 1, 2, 2}, 5, 2, 8, 15)},
			attrs: graph.Attrs{"kernel_shape": attrInts(2, 2), "strides": attrInts(2, 2)}},
		{name: "prelu_scalar_slope", op: "PRelu", inputs: []*tensor.Tensor{r(3, 4), r(1)}},
		{name: "compress_axis", op: "Compress", inputs: []*tensor.Tensor{r(3, 4), tensor.From([]int{4}, []bool{true, false, true, true})}, attrs: graph.Attrs{"axis": attrInt(1)}},
	}
}

func TestGradients(t *testing.T) {
	for _, c := range gradCases() {
		t.Run(c.name, func(t *testing.T) {
			if !HasRule(c.op) {
				t.Fatalf("no rule for %s", c.op)
			}
			checkGradients(t, c)
		})
	}
}
