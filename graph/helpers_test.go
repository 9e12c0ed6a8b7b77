package graph_test

import (
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// vi declares a value; dims are ints (fixed), strings (symbolic) or nil
// (unknown). With no dims the shape is a scalar.
func vi(name string, dt tensor.DType, dims ...any) graph.ValueInfo {
	v := graph.ValueInfo{Name: name, DType: dt, HasShape: true, Kind: "tensor", Shape: []graph.Dim{}}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			v.Shape = append(v.Shape, graph.Dim{Value: int64(d)})
		case string:
			v.Shape = append(v.Shape, graph.Dim{Param: d})
		default:
			v.Shape = append(v.Shape, graph.Dim{Value: -1})
		}
	}
	return v
}

// nd builds a node; attrs alternate name, value (int or *graph.Graph).
func nd(op, name string, in, out []string, attrs ...any) *graph.Node {
	n := &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: graph.Attrs{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		key := attrs[i].(string)
		switch v := attrs[i+1].(type) {
		case int:
			n.Attrs[key] = graph.Attr{Type: graph.AttrInt, Int: int64(v)}
		case *graph.Graph:
			n.Attrs[key] = graph.Attr{Type: graph.AttrGraph, Graph: v}
		default:
			panic("bad attr")
		}
	}
	return n
}

func f32(shape []int, v ...float32) *tensor.Tensor {
	if v == nil {
		v = []float32{}
	}
	return tensor.From(shape, v)
}

func names(ns []*graph.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
