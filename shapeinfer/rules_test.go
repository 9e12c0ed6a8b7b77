package shapeinfer

import (
	"math"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// vi declares a value: dims are ints (fixed), strings (symbolic) or -1.
func vi(name string, dt tensor.DType, dims ...any) graph.ValueInfo {
	v := graph.ValueInfo{Name: name, DType: dt, HasShape: true, Kind: "tensor"}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			v.Shape = append(v.Shape, graph.Dim{Value: int64(d)})
		case string:
			v.Shape = append(v.Shape, graph.Dim{Param: d})
		}
	}
	return v
}

func nd(op string, ins, outs string, attrs graph.Attrs) *graph.Node {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	return &graph.Node{Name: op + "_" + outs, OpType: op, Inputs: split(ins), Outputs: split(outs), Attrs: attrs}
}

func aInt(v int64) graph.Attr          { return graph.Attr{Type: graph.AttrInt, Int: v} }
func aInts(v ...int64) graph.Attr      { return graph.Attr{Type: graph.AttrInts, Ints: v} }
func aStr(s string) graph.Attr         { return graph.Attr{Type: graph.AttrString, String: s} }
func aGraph(g *graph.Graph) graph.Attr { return graph.Attr{Type: graph.AttrGraph, Graph: g} }

func i64(v ...int64) *tensor.Tensor { return tensor.From([]int{len(v)}, v) }

func model(opset int, inputs []graph.ValueInfo, inits map[string]*tensor.Tensor, nodes ...*graph.Node) *graph.Model {
	g := &graph.Graph{Name: "g", Inputs: inputs, Nodes: nodes}
	for k, v := range inits {
		g.AddInitializer(k, v)
	}
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": int64(opset)}}
}

func TestRules(t *testing.T) {
	x3 := vi("x", tensor.Float32, "batch", "time", 64)
	cases := []struct {
		name    string
		m       *graph.Model
		want    map[string]string // value → "dtype[shape]"
		problem string            // substring of a reported problem; "" = none
	}{
		{"constant of shape chain", model(17, []graph.ValueInfo{x3},
			map[string]*tensor.Tensor{"zero": tensor.Scalar[int64](0), "ax": i64(0), "one": i64(1), "h": i64(64)},
			nd("Shape", "x", "s", nil),
			nd("Gather", "s,zero", "b", graph.Attrs{"axis": aInt(0)}),
			nd("Unsqueeze", "b,ax", "bu", nil),
			nd("Concat", "one,bu,h", "shp", graph.Attrs{"axis": aInt(0)}),
			nd("ConstantOfShape", "shp", "h0", nil)),
			map[string]string{"s": "int64[3]", "b": "int64[]", "shp": "int64[3]", "h0": "float32[1 batch 64]"}, ""},
		{"matmul inner dims", model(17, []graph.ValueInfo{vi("a", tensor.Float32, "batch", 64), vi("w", tensor.Float32, 32, 10)}, nil,
			nd("MatMul", "a,w", "y", nil)),
			map[string]string{"y": "float32[batch 10]"}, "inner dims 64 vs 32"},
		{"matmul batched and vector", model(17, []graph.ValueInfo{vi("a", tensor.Float32, "batch", "time", 64), vi("v", tensor.Float32, 64)}, nil,
			nd("MatMul", "a,v", "y", nil)),
			map[string]string{"y": "float32[batch time]"}, ""},
		{"concat rank mismatch", model(17, []graph.ValueInfo{vi("a", tensor.Float32, 2, 3), vi("b", tensor.Float32, 2, 3, 1)}, nil,
			nd("Concat", "a,b", "y", graph.Attrs{"axis": aInt(0)})),
			map[string]string{"y": "float32[?]"}, "rank mismatch"},
		{"concat symbolic sum", model(17, []graph.ValueInfo{vi("a", tensor.Float32, "batch", "time"), vi("b", tensor.Float32, "batch", 3)}, nil,
			nd("Concat", "a,b", "y", graph.Attrs{"axis": aInt(-1)})),
			map[string]string{"y": "float32[batch time+3]"}, ""},
		{"gemm bias", model(17, []graph.ValueInfo{vi("a", tensor.Float32, 4, 8), vi("b", tensor.Float32, 3, 8), vi("c", tensor.Float32, 5)}, nil,
			nd("Gemm", "a,b,c", "y", graph.Attrs{"transB": aInt(1)})),
			map[string]string{"y": "float32[4 3]"}, "not broadcastable"},
		{"reshape -1 and 0", model(17, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"s1": i64(-1, 64), "s2": i64(0, 0, 8, 8)},
			nd("Reshape", "x,s1", "y1", nil), nd("Reshape", "x,s2", "y2", nil)),
			map[string]string{"y1": "float32[batch*time 64]", "y2": "float32[batch time 8 8]"}, ""},
		{"reshape bad count", model(17, []graph.ValueInfo{vi("x", tensor.Float32, 2, 3)}, map[string]*tensor.Tensor{"s": i64(4, -1)},
			nd("Reshape", "x,s", "y", nil)),
			map[string]string{}, "cannot reshape"},
		{"slice last step and unknown ends", model(17, []graph.ValueInfo{x3, vi("e", tensor.Int64, 1)},
			map[string]*tensor.Tensor{"st": i64(-1), "en": i64(math.MaxInt64), "ax": i64(1), "z": i64(0)},
			nd("Slice", "x,st,en,ax", "last", nil), nd("Slice", "x,z,e,ax", "head", nil)),
			map[string]string{"last": "float32[batch 1 64]", "head": "float32[batch unk_Slice_2_0 64]"}, ""},
		{"slice opset 9 attrs", model(9, []graph.ValueInfo{vi("x", tensor.Float32, 10, 20)}, nil,
			nd("Slice", "x", "y", graph.Attrs{"starts": aInts(2, -5), "ends": aInts(8, 1000), "axes": aInts(0, 1)})),
			map[string]string{"y": "float32[6 5]"}, ""},
		{"lstm layout 1 bidirectional", model(14, []graph.ValueInfo{vi("x", tensor.Float32, "batch", "time", 3),
			vi("w", tensor.Float32, 2, 20, 3), vi("r", tensor.Float32, 2, 20, 5)}, nil,
			nd("LSTM", "x,w,r", "y,yh,yc", graph.Attrs{"hidden_size": aInt(5), "layout": aInt(1), "direction": aStr("bidirectional")})),
			map[string]string{"y": "float32[batch time 2 5]", "yh": "float32[batch 2 5]", "yc": "float32[batch 2 5]"}, ""},
		{"gru wrong weight rows", model(14, []graph.ValueInfo{vi("x", tensor.Float32, "time", "batch", 3),
			vi("w", tensor.Float32, 1, 16, 3), vi("r", tensor.Float32, 1, 15, 5)}, nil,
			nd("GRU", "x,w,r", "y,yh", graph.Attrs{"hidden_size": aInt(5)})),
			map[string]string{"y": "float32[time 1 batch 5]", "yh": "float32[1 batch 5]"}, "15 rows expected"},
		{"conv and pool", model(17, []graph.ValueInfo{vi("x", tensor.Float32, "N", 3, 32, 32), vi("w", tensor.Float32, 16, 3, 3, 3),
			vi("s", tensor.Float32, "N", 4, "time"), vi("k", tensor.Float32, 8, 4, 3)}, nil,
			nd("Conv", "x,w", "y", graph.Attrs{"pads": aInts(1, 1, 1, 1), "strides": aInts(2, 2)}),
			nd("MaxPool", "y", "p", graph.Attrs{"kernel_shape": aInts(3, 3), "strides": aInts(2, 2), "ceil_mode": aInt(1)}),
			nd("GlobalAveragePool", "p", "gp", nil),
			nd("Conv", "s,k", "c1", nil),
			nd("Conv", "s,k", "c2", graph.Attrs{"auto_pad": aStr("SAME_UPPER"), "strides": aInts(2)})),
			map[string]string{"y": "float32[N 16 16 16]", "p": "float32[N 16 8 8]", "gp": "float32[N 16 1 1]",
				"c1": "float32[N 8 time-2]", "c2": "float32[N 8 ceil((time)/2)]"}, ""},
		{"conv channels", model(17, []graph.ValueInfo{vi("x", tensor.Float32, 1, 4, 8), vi("w", tensor.Float32, 2, 3, 3)}, nil,
			nd("Conv", "x,w", "y", nil)),
			map[string]string{"y": "float32[1 2 6]"}, "input channels"},
		{"squeeze unsqueeze attr form", model(11, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 1, 64)}, nil,
			nd("Squeeze", "x", "s", graph.Attrs{"axes": aInts(1)}), nd("Unsqueeze", "s", "u", graph.Attrs{"axes": aInts(0, -1)})),
			map[string]string{"s": "float32[batch 64]", "u": "float32[1 batch 64 1]"}, ""},
		{"squeeze input form", model(13, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 1, 64)}, map[string]*tensor.Tensor{"a": i64(1)},
			nd("Squeeze", "x,a", "s", nil), nd("Squeeze", "x", "all", nil)),
			map[string]string{"s": "float32[batch 64]", "all": "float32[?]"}, ""},
		{"reduce attr and input axes", model(13, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"a": i64(1)},
			nd("ReduceMean", "x", "m", graph.Attrs{"axes": aInts(1), "keepdims": aInt(0)}),
			nd("ReduceSum", "x,a", "s", nil),
			nd("ArgMax", "x", "am", graph.Attrs{"axis": aInt(-1), "keepdims": aInt(0)})),
			map[string]string{"m": "float32[batch 64]", "s": "float32[batch 1 64]", "am": "int64[batch time]"}, ""},
		{"reduce opset 18 input axes", model(18, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"a": i64(-1)},
			nd("ReduceMax", "x,a", "m", graph.Attrs{"keepdims": aInt(0)})),
			map[string]string{"m": "float32[batch time]"}, ""},
		{"split equal and sized", model(13, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 64)}, map[string]*tensor.Tensor{"sz": i64(16, 48)},
			nd("Split", "x", "a,b", graph.Attrs{"axis": aInt(1)}), nd("Split", "x,sz", "c,d", graph.Attrs{"axis": aInt(-1)})),
			map[string]string{"a": "float32[batch 32]", "b": "float32[batch 32]", "c": "float32[batch 16]", "d": "float32[batch 48]"}, ""},
		{"split opset 18 uneven", model(18, []graph.ValueInfo{vi("x", tensor.Float32, 10)}, nil,
			nd("Split", "x", "a,b,c", graph.Attrs{"num_outputs": aInt(3)})),
			map[string]string{"a": "float32[4]", "b": "float32[4]", "c": "float32[2]"}, ""},
		{"range and expand from shape", model(17, []graph.ValueInfo{x3, vi("bias", tensor.Float32, 1, 64)},
			map[string]*tensor.Tensor{"z": tensor.Scalar[int64](0), "o": tensor.Scalar[int64](1), "ax": i64(0), "h": i64(64)},
			nd("Shape", "x", "s", nil), nd("Gather", "s,o", "t", nil), nd("Range", "z,t,o", "r", nil),
			nd("Gather", "s,z", "b", nil), nd("Unsqueeze", "b,ax", "bu", nil), nd("Concat", "bu,h", "es", graph.Attrs{"axis": aInt(0)}),
			nd("Expand", "bias,es", "e", nil)),
			map[string]string{"r": "int64[time]", "e": "float32[batch 64]"}, ""},
		{"shape start end, size, tile", model(15, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"rep": i64(1, 2, 1)},
			nd("Shape", "x", "s", graph.Attrs{"start": aInt(1), "end": aInt(-1)}), nd("Size", "x", "n", nil),
			nd("ConstantOfShape", "s", "c", nil), nd("Tile", "x,rep", "tl", nil)),
			map[string]string{"s": "int64[1]", "n": "int64[]", "c": "float32[time]", "tl": "float32[batch 2*time 64]"}, ""},
		{"comparison where clip cast", model(17, []graph.ValueInfo{x3, vi("y", tensor.Float32, 64)}, nil,
			nd("Less", "x,y", "lt", nil), nd("Where", "lt,x,y", "w", nil), nd("Clip", "w", "cl", nil),
			nd("Cast", "lt", "f", graph.Attrs{"to": aInt(int64(tensor.Float64))}), nd("Dropout", "x", "d,mask", nil)),
			map[string]string{"lt": "bool[batch time 64]", "w": "float32[batch time 64]", "cl": "float32[batch time 64]",
				"f": "float64[batch time 64]", "d": "float32[batch time 64]", "mask": "bool[batch time 64]"}, ""},
		{"broadcast conflict", model(17, []graph.ValueInfo{vi("a", tensor.Float32, 3, 4), vi("b", tensor.Float32, 5)}, nil,
			nd("Add", "a,b", "y", nil)),
			map[string]string{}, "not broadcast-compatible"},
		{"einsum, flatten, transpose", model(17, []graph.ValueInfo{x3, vi("w", tensor.Float32, "batch", 64, 8)}, nil,
			nd("Einsum", "x,w", "e", graph.Attrs{"equation": aStr("bij,bjk->bik")}),
			nd("Einsum", "x", "tr", graph.Attrs{"equation": aStr("bij")}),
			nd("Flatten", "x", "f", nil), nd("Transpose", "x", "t", graph.Attrs{"perm": aInts(1, 0, 2)})),
			map[string]string{"e": "float32[batch time 8]", "tr": "float32[batch time 64]", "f": "float32[batch 64*time]", "t": "float32[time batch 64]"}, ""},
		{"pad with input pads", model(17, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"p": i64(0, 1, 0, 0, 1, 0)},
			nd("Pad", "x,p", "y", nil)),
			map[string]string{"y": "float32[batch time+2 64]"}, ""},
		{"layer and batch norm", model(17, []graph.ValueInfo{x3, vi("g", tensor.Float32, 64), vi("c", tensor.Float32, "batch", 8, 5), vi("s", tensor.Float32, 8)}, nil,
			nd("LayerNormalization", "x,g", "ln,mean,inv", nil), nd("BatchNormalization", "c,s,s,s,s", "bn", nil),
			nd("Softmax", "x", "sm", graph.Attrs{"axis": aInt(1)})),
			map[string]string{"ln": "float32[batch time 64]", "mean": "float32[batch time 1]", "bn": "float32[batch 8 5]", "sm": "float32[batch time 64]"}, ""},
		{"if with constant condition", model(17, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"c": tensor.From([]int{}, []bool{false})},
			&graph.Node{Name: "if", OpType: "If", Inputs: []string{"c"}, Outputs: []string{"y"}, Attrs: graph.Attrs{
				"then_branch": aGraph(&graph.Graph{Name: "then", Outputs: []graph.ValueInfo{{Name: "t1"}},
					Nodes: []*graph.Node{nd("Transpose", "x", "t1", nil)}}),
				"else_branch": aGraph(&graph.Graph{Name: "else", Outputs: []graph.ValueInfo{{Name: "e1"}},
					Nodes: []*graph.Node{nd("Relu", "x", "e1", nil)}}),
			}}),
			map[string]string{"y": "float32[batch time 64]", "t1": "float32[64 time batch]"}, ""},
		{"loop with trip count from shape", model(17, []graph.ValueInfo{x3},
			map[string]*tensor.Tensor{"one": tensor.Scalar[int64](1), "init": tensor.Scalar[float32](0)},
			nd("Shape", "x", "s", nil), nd("Gather", "s,one", "t", nil),
			&graph.Node{Name: "loop", OpType: "Loop", Inputs: []string{"t", "", "init"}, Outputs: []string{"acc", "scan"}, Attrs: graph.Attrs{
				"body": aGraph(&graph.Graph{Name: "body",
					Inputs:  []graph.ValueInfo{vi("i", tensor.Int64), vi("cin", tensor.Bool), vi("a", tensor.Float32)},
					Outputs: []graph.ValueInfo{{Name: "cout"}, {Name: "a2"}, {Name: "row"}},
					Nodes: []*graph.Node{nd("Identity", "cin", "cout", nil), nd("Gather", "x,i", "row", graph.Attrs{"axis": aInt(1)}),
						nd("ReduceSum", "row", "rs", graph.Attrs{"keepdims": aInt(0)}), nd("Add", "a,rs", "a2", nil)}}),
			}}),
			map[string]string{"acc": "float32[]", "scan": "float32[time batch 64]", "row": "float32[batch 64]"}, ""},
		{"while loop trip count by simulation", model(13, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 8)},
			map[string]*tensor.Tensor{"maxit": tensor.Scalar[int64](math.MaxInt32), "t": tensor.From([]int{}, []bool{true}),
				"i0": tensor.Scalar[int32](0), "n": tensor.Scalar[int32](6), "inc": tensor.Scalar[int32](1)},
			&graph.Node{Name: "while", OpType: "Loop", Inputs: []string{"maxit", "t", "i0"}, Outputs: []string{"iend", "ys"}, Attrs: graph.Attrs{
				"body": aGraph(&graph.Graph{Name: "body",
					Inputs:  []graph.ValueInfo{vi("k", tensor.Int64), vi("c", tensor.Bool), vi("i", tensor.Int32)},
					Outputs: []graph.ValueInfo{{Name: "more"}, {Name: "i1"}, {Name: "y"}},
					Nodes: []*graph.Node{nd("Add", "i,inc", "i1", nil), nd("Less", "i1,n", "more", nil),
						nd("Relu", "x", "y", nil)}}),
			}}),
			map[string]string{"iend": "int32[]", "ys": "float32[6 batch 8]"}, ""},
		{"scan", model(11, []graph.ValueInfo{vi("s0", tensor.Float32, 4), vi("xs", tensor.Float32, "time", 4)}, nil,
			&graph.Node{Name: "scan", OpType: "Scan", Inputs: []string{"s0", "xs"}, Outputs: []string{"sN", "ys"}, Attrs: graph.Attrs{
				"num_scan_inputs": aInt(1), "scan_output_axes": aInts(1),
				"body": aGraph(&graph.Graph{Name: "body",
					Inputs:  []graph.ValueInfo{vi("s", tensor.Float32, 4), vi("x", tensor.Float32, 4)},
					Outputs: []graph.ValueInfo{{Name: "s1"}, {Name: "y"}},
					Nodes:   []*graph.Node{nd("Add", "s,x", "s1", nil), nd("Unsqueeze", "s1", "y", graph.Attrs{"axes": aInts(0)})}}),
			}}),
			map[string]string{"sN": "float32[4]", "ys": "float32[1 time 4]"}, ""},
		{"conv transpose", model(17, []graph.ValueInfo{vi("x", tensor.Float32, "N", 8, 10, "w"), vi("k", tensor.Float32, 8, 4, 3, 3)}, nil,
			nd("ConvTranspose", "x,k", "y", graph.Attrs{"strides": aInts(2, 1), "pads": aInts(1, 1, 1, 1), "output_padding": aInts(1, 0)})),
			map[string]string{"y": "float32[N 4 20 w]"}, ""},
		{"random", model(17, []graph.ValueInfo{x3}, nil,
			nd("RandomNormal", "", "n", graph.Attrs{"shape": aInts(2, 3), "dtype": aInt(int64(tensor.Float64))}),
			nd("RandomUniform", "", "u", graph.Attrs{"shape": aInts(4)}),
			nd("RandomUniformLike", "x", "ul", nil),
			nd("RandomNormalLike", "x", "nl", graph.Attrs{"dtype": aInt(int64(tensor.Float16))})),
			map[string]string{"n": "float64[2 3]", "u": "float32[4]", "ul": "float32[batch time 64]", "nl": "float16[batch time 64]"}, ""},
		{"qlinear", model(21, []graph.ValueInfo{vi("a", tensor.Uint8, "batch", 4), vi("b", tensor.Uint8, 4, 5),
			vi("x", tensor.Uint8, 1, 2, 5, "w"), vi("k", tensor.Uint8, 3, 2, 3, 3),
			vi("s", tensor.Float32), vi("z", tensor.Uint8), vi("yz", tensor.Int8)}, nil,
			nd("QLinearMatMul", "a,s,z,b,s,z,s,yz", "mm", nil),
			nd("QLinearConv", "x,s,z,k,s,z,s,z", "conv", graph.Attrs{"pads": aInts(1, 1, 1, 1)})),
			map[string]string{"mm": "int8[batch 5]", "conv": "uint8[1 3 5 w]"}, ""},
		{"window and bitcast", model(26, []graph.ValueInfo{x3}, map[string]*tensor.Tensor{"n": tensor.Scalar(int64(8))},
			nd("HannWindow", "n", "hann", nil),
			nd("BlackmanWindow", "n", "black", graph.Attrs{"output_datatype": aInt(int64(tensor.Float64))}),
			nd("BitCast", "x", "bits", graph.Attrs{"to": aInt(int64(tensor.Int32))})),
			map[string]string{"hann": "float32[8]", "black": "float64[8]", "bits": "int32[batch time 64]"}, ""},
		{"dft and stft", model(20, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 16, 1), vi("c", tensor.Float32, "batch", 9, 2),
			vi("sig", tensor.Float32, 2, 64, 1), vi("win", tensor.Float32, 16)},
			map[string]*tensor.Tensor{"step": tensor.Scalar(int64(8)), "len": tensor.Scalar(int64(10))},
			nd("DFT", "x", "half", graph.Attrs{"onesided": aInt(1)}),
			nd("DFT", "x,len", "padded", nil),
			nd("DFT", "c", "back", graph.Attrs{"onesided": aInt(1), "inverse": aInt(1)}),
			nd("STFT", "sig,step,win", "spec", nil)),
			map[string]string{"half": "float32[batch 9 2]", "padded": "float32[batch 10 2]", "back": "float32[batch 16 1]", "spec": "float32[2 7 9 2]"}, ""},
		{"attention", model(23, []graph.ValueInfo{
			vi("q4", tensor.Float32, "B", 8, "S", 16), vi("k4", tensor.Float32, "B", 2, "T", 16), vi("v4", tensor.Float32, "B", 2, "T", 32),
			vi("pk", tensor.Float32, "B", 2, "P", 16), vi("pv", tensor.Float32, "B", 2, "P", 32),
			vi("q3", tensor.Float32, "B", "S", 64), vi("k3", tensor.Float32, "B", "T", 32), vi("v3", tensor.Float32, "B", "T", 48)}, nil,
			nd("Attention", "q4,k4,v4,,pk,pv", "y4,pres_k,pres_v,qk", nil),
			nd("Attention", "q3,k3,v3", "y3", graph.Attrs{"q_num_heads": aInt(4), "kv_num_heads": aInt(2)})),
			map[string]string{"y4": "float32[B 8 S 32]", "pres_k": "float32[B 2 P+T 16]", "pres_v": "float32[B 2 P+T 32]",
				"qk": "float32[B 8 S P+T]", "y3": "float32[B S 96]"}, ""},
		{"state-carrying ops", model(27, []graph.ValueInfo{
			vi("x", tensor.Float32, "B", 8, "L"), vi("w", tensor.Float32, 8, 1, 4),
			vi("q", tensor.Float32, "B", "T", 32), vi("k", tensor.Float32, "B", "T", 16), vi("v", tensor.Float32, "B", "T", 24), vi("past", tensor.Float64, "B", 2, 8, 12)}, nil,
			nd("CausalConvWithState", "x,w", "y,state", nil),
			nd("LinearAttention", "q,k,v,past", "o,present", graph.Attrs{"q_num_heads": aInt(4), "kv_num_heads": aInt(2)})),
			map[string]string{"y": "float32[B 8 L]", "state": "float32[B 8 3]", "o": "float32[B T 48]", "present": "float64[B 2 8 12]"}, ""},
		{"unpool and col2im", model(18, []graph.ValueInfo{
			vi("x", tensor.Float32, "N", 3, 2, 2), vi("i", tensor.Int64, "N", 3, 2, 2), vi("cols", tensor.Float32, "N", 12, 20)},
			map[string]*tensor.Tensor{"os": i64(1, 3, 5, 5), "img": i64(5, 6), "blk": i64(2, 2)},
			nd("MaxUnpool", "x,i", "up", graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}),
			nd("MaxUnpool", "x,i,os", "up_shape", graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}),
			nd("Col2Im", "cols,img,blk", "im", nil)),
			map[string]string{"up": "float32[N 3 4 4]", "up_shape": "float32[1 3 5 5]", "im": "float32[N 3 5 6]"}, ""},
		{"tfidf and mel", model(17, []graph.ValueInfo{vi("tok", tensor.Int64, "N", 12)},
			map[string]*tensor.Tensor{"bins": tensor.Scalar(int64(8)), "len": tensor.Scalar(int64(16)), "rate": tensor.Scalar(int64(8000)),
				"lo": tensor.Scalar(float32(0)), "hi": tensor.Scalar(float32(4000))},
			nd("TfIdfVectorizer", "tok", "tf", graph.Attrs{"ngram_indexes": aInts(0, 1, 4, 2)}),
			nd("MelWeightMatrix", "bins,len,rate,lo,hi", "mel", nil)),
			map[string]string{"tf": "float32[N 5]", "mel": "float32[9 8]"}, ""},
		{"declared shape contradicts", func() *graph.Model {
			m := model(17, []graph.ValueInfo{vi("x", tensor.Float32, "batch", 8)}, nil, nd("Relu", "x", "y", nil))
			m.Graph.Outputs = []graph.ValueInfo{vi("y", tensor.Float32, "batch", 9)}
			return m
		}(), map[string]string{"y": "float32[batch 8]"}, "declared shape [batch 9]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			infos, problems, err := Infer(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				vi, ok := infos[name]
				if !ok {
					t.Errorf("%s: not inferred", name)
					continue
				}
				if got := vi.DType.String() + vi.ShapeString(); got != want {
					t.Errorf("%s: got %s, want %s", name, got, want)
				}
			}
			var found bool
			for _, p := range problems {
				if tc.problem != "" && strings.Contains(p.Reason, tc.problem) {
					found = true
				} else if tc.problem == "" {
					t.Errorf("unexpected problem: %s", p)
				}
			}
			if tc.problem != "" && !found {
				t.Errorf("no problem mentioning %q; got %v", tc.problem, problems)
			}
		})
	}
}

func TestExpr(t *testing.T) {
	b, tm := Sym("batch"), Sym("time")
	cases := []struct {
		got  Expr
		want string
	}{
		{b.Mul(tm), "batch*time"},
		{tm.Add(Const(2)), "time+2"},
		{Const(2).Sub(tm), "-time+2"},
		{tm.Sub(tm), "0"},
		{b.Mul(tm).Mul(Const(64)).FloorDiv(64), "batch*time"},
		{tm.CeilDiv(2), "ceil((time)/2)"},
		{Const(7).CeilDiv(2), "4"},
		{Const(-7).FloorDiv(2), "-4"},
		{Unknown().Add(b), "?"},
		{Unknown().Mul(Const(0)), "0"},
	}
	for _, tc := range cases {
		if s := tc.got.String(); s != tc.want {
			t.Errorf("got %s, want %s", s, tc.want)
		}
	}
	if q, ok := b.Mul(tm).Mul(Const(6)).DivExact(tm.Mul(Const(3))); !ok || q.String() != "2*batch" {
		t.Errorf("DivExact: %v %v", q, ok)
	}
	if _, ok := b.Add(tm).DivExact(tm); ok {
		t.Error("batch+time divided by time")
	}
	if v, ok := b.Mul(tm).Add(Const(1)).Eval(map[string]int64{"batch": 3, "time": 5}); !ok || v != 16 {
		t.Errorf("Eval: %d %v", v, ok)
	}
}
