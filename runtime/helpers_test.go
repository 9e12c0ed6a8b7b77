package runtime_test

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/ops/parallel"
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
	ops.Define(ops.Desc{Domain: testDomain, Type: "ChunkPanic", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		threads := c.Threads
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			task := &chunkPanic{started: make(chan struct{})}
			parallel.Run(task, 2, threads)
			return []*tensor.Tensor{in[0]}, nil
		}), nil
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

// chunkPanic is a kernel's parallel task whose chunk 0 panics once chunk 1
// is running: with two threads the caller claims chunk 1 (chunks go from
// the last down) and waits in it, so chunk 0 panics on a pool worker.
type chunkPanic struct{ started chan struct{} }

// chunkPanicsBesideCaller counts chunk-1 runs that saw chunk 0 start
// elsewhere, proving the panic was on a worker goroutine.
var chunkPanicsBesideCaller atomic.Int64

func (t *chunkPanic) Do(i int) {
	if i == 0 {
		close(t.started)
		panic("chunk kaboom")
	}
	select {
	case <-t.started:
		chunkPanicsBesideCaller.Add(1)
	case <-time.After(10 * time.Second): // a guard, not a measurement
	}
}

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

// nd builds a node; attrs alternate name, value (int, []int64, *graph.Graph).
func nd(op, name string, in, out []string, attrs ...any) *graph.Node {
	n := &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: graph.Attrs{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		key := attrs[i].(string)
		switch v := attrs[i+1].(type) {
		case int:
			n.Attrs[key] = graph.Attr{Type: graph.AttrInt, Int: int64(v)}
		case []int64:
			n.Attrs[key] = graph.Attr{Type: graph.AttrInts, Ints: v}
		case *graph.Graph:
			n.Attrs[key] = graph.Attr{Type: graph.AttrGraph, Graph: v}
		case *tensor.Tensor:
			n.Attrs[key] = graph.Attr{Type: graph.AttrTensor, Tensor: v}
		default:
			panic("bad attr")
		}
	}
	return n
}

// testNode is a node in the test domain.
func testNode(op, name string, in, out []string) *graph.Node {
	n := nd(op, name, in, out)
	n.Domain = testDomain
	return n
}

func model(g *graph.Graph, opset int64) *graph.Model {
	if g.Initializers == nil {
		g.Initializers = map[string]*tensor.Tensor{}
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": opset, testDomain: 1}}
}

func f32(shape []int, v ...float32) *tensor.Tensor {
	if v == nil {
		v = []float32{}
	}
	return tensor.From(shape, v)
}
