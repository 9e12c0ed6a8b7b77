package runtime_test

import (
	"errors"
	"sync/atomic"

	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// testDomain holds fake ops the runtime tests register.
const testDomain = "test.mtlrun"

// counted counts runs of the test.mtlrun Count op (an identity).
var counted atomic.Int64

var errDeliberate = errors.New("deliberate failure")

func init() {
	ops.Define(ops.Desc{Domain: testDomain, Type: "Fail", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		return ops.OpFunc(func([]*tensor.Tensor) ([]*tensor.Tensor, error) { return nil, errDeliberate }), nil
	}})
	ops.Define(ops.Desc{Domain: testDomain, Type: "Panic", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		return ops.OpFunc(func([]*tensor.Tensor) ([]*tensor.Tensor, error) { panic("kaboom") }), nil
	}})
	ops.Define(ops.Desc{Domain: testDomain, Type: "Count", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			counted.Add(1)
			return []*tensor.Tensor{in[0]}, nil
		}), nil
	}})
	ops.Define(ops.Desc{Domain: testDomain, Type: "Nothing", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		return ops.OpFunc(func([]*tensor.Tensor) ([]*tensor.Tensor, error) { return nil, nil }), nil
	}})
}

// vi declares a value; dims are ints (fixed), strings (symbolic) or nil
// (unknown). With no dims the shape is a scalar.
func vi(name string, dt tensor.DType, dims ...any) runtime.ValueInfo {
	v := runtime.ValueInfo{Name: name, DType: dt, HasShape: true, Kind: "tensor", Shape: []runtime.Dim{}}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			v.Shape = append(v.Shape, runtime.Dim{Value: int64(d)})
		case string:
			v.Shape = append(v.Shape, runtime.Dim{Param: d})
		default:
			v.Shape = append(v.Shape, runtime.Dim{Value: -1})
		}
	}
	return v
}

// nd builds a node; attrs alternate name, value (int, []int64, *runtime.Graph).
func nd(op, name string, in, out []string, attrs ...any) *runtime.Node {
	n := &runtime.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: ops.Attrs{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		key := attrs[i].(string)
		switch v := attrs[i+1].(type) {
		case int:
			n.Attrs[key] = ops.Attr{Type: ops.AttrInt, Int: int64(v)}
		case []int64:
			n.Attrs[key] = ops.Attr{Type: ops.AttrInts, Ints: v}
		case *runtime.Graph:
			n.Attrs[key] = ops.Attr{Type: ops.AttrGraph, Graph: v}
		case *tensor.Tensor:
			n.Attrs[key] = ops.Attr{Type: ops.AttrTensor, Tensor: v}
		default:
			panic("bad attr")
		}
	}
	return n
}

// testNode is a node in the test domain.
func testNode(op, name string, in, out []string) *runtime.Node {
	n := nd(op, name, in, out)
	n.Domain = testDomain
	return n
}

func model(g *runtime.Graph, opset int64) *runtime.Model {
	if g.Initializers == nil {
		g.Initializers = map[string]*tensor.Tensor{}
	}
	return &runtime.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": opset, testDomain: 1}}
}

func f32(shape []int, v ...float32) *tensor.Tensor {
	if v == nil {
		v = []float32{}
	}
	return tensor.From(shape, v)
}

func names(ns []*runtime.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
