package ops

import (
	"context"
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// ArenaOp is implemented by kernels that take their outputs and scratch
// memory from an Arena instead of allocating them. The runtime calls RunWith
// when a kernel has it; Run is then simply RunWith(nil, inputs).
type ArenaOp interface {
	Op
	RunWith(a *Arena, inputs []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// Arena hands kernels their output tensors and scratch buffers. The runtime
// gives each executor one arena and resets it before every run. A kernel
// asks for the same buffers in the same order whenever its input shapes are
// the same, so the k-th request of a run gets back the k-th buffer of the
// previous run: a steady-state run allocates nothing.
//
// A nil *Arena is valid and allocates fresh memory on every call, so a
// kernel has one code path for both. Buffers handed out stay valid until the
// next Reset, which is why an arena's results must not be kept across runs
// and why a kernel may not cache anything keyed by the address of an input
// unless Config.InputIsConst says so. An Arena is not safe for concurrent
// use: a kernel that fans out over goroutines takes its buffers first.
type Arena struct {
	tensors []arenaTensor
	nextT   int
	f32     [][]float32
	nextF   int
	ints    [][]int
	nextI   int
	lists   [][]*tensor.Tensor
	nextL   int
	ctx     context.Context // the run's, for Err (see cancel.go)
}

type arenaTensor struct {
	t    *tensor.Tensor
	full any // the whole backing slice; t.Data is full[:n]
	n    int
}

// Reset makes every buffer available again. Tensors handed out before are
// overwritten by later requests.
func (a *Arena) Reset() {
	if a != nil {
		a.nextT, a.nextF, a.nextI, a.nextL = 0, 0, 0, 0
	}
}

// New returns a zeroed tensor of the given dtype and shape (shape is copied).
func (a *Arena) New(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	t, err := a.Empty(dt, shape)
	if err == nil && a != nil {
		clearData(t.Data)
	}
	return t, err
}

// Empty is New without the zeroing: the contents are whatever the buffer
// held before. For kernels that write every element of their output.
func (a *Arena) Empty(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	if a == nil {
		return tensor.New(dt, shape)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, err
	}
	if a.nextT == len(a.tensors) {
		a.tensors = append(a.tensors, arenaTensor{t: &tensor.Tensor{}})
	}
	s := &a.tensors[a.nextT]
	a.nextT++
	if s.full == nil || s.t.DType != dt || tensor.DataLen(s.full) < n {
		full, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return nil, err
		}
		s.full, s.n = full, n
		s.t.DType, s.t.Data = dt, full
	} else if s.n != n || s.t.Data == nil {
		s.t.Data, s.n = resliceData(s.full, n), n
	}
	s.t.Shape = append(s.t.Shape[:0], shape...)
	return s.t, nil
}

// View returns a tensor header sharing src's data under another shape with
// the same number of elements (Reshape, Squeeze, Flatten and the like).
func (a *Arena) View(src *tensor.Tensor, shape []int) (*tensor.Tensor, error) {
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, err
	}
	if l := tensor.DataLen(src.Data); n != l {
		return nil, fmt.Errorf("cannot view %s (%d elements) as %s", tensor.ShapeString(src.Shape), l, tensor.ShapeString(shape))
	}
	if a == nil {
		return &tensor.Tensor{DType: src.DType, Shape: append([]int{}, shape...), Data: src.Data}, nil
	}
	if a.nextT == len(a.tensors) {
		a.tensors = append(a.tensors, arenaTensor{t: &tensor.Tensor{}})
	}
	s := &a.tensors[a.nextT]
	a.nextT++
	// the slot now describes someone else's memory: forget its own buffer
	// so that a later Empty on it allocates rather than writes into src
	s.full, s.n = nil, 0
	s.t.DType, s.t.Data = src.DType, src.Data
	s.t.Shape = append(s.t.Shape[:0], shape...)
	return s.t, nil
}

// Float32s returns a zeroed scratch slice of n float32s.
func (a *Arena) Float32s(n int) []float32 {
	if a == nil {
		return make([]float32, n)
	}
	return takeScratch(&a.f32, &a.nextF, n)
}

// EmptyFloat32s is Float32s without the zeroing: the contents are whatever
// the buffer held before. For scratch a kernel writes in full before it
// reads it (a product's output, a packing buffer); clearing megabytes that
// are overwritten anyway cost 8 % of a batch-64 GRU(128) run.
func (a *Arena) EmptyFloat32s(n int) []float32 {
	if a == nil {
		return make([]float32, n)
	}
	return nextScratch(&a.f32, &a.nextF, n)
}

// Ints returns a zeroed scratch slice of n ints (indices, strides, shapes).
func (a *Arena) Ints(n int) []int {
	if a == nil {
		return make([]int, n)
	}
	return takeScratch(&a.ints, &a.nextI, n)
}

// takeScratch hands out the next slot of bufs, grown to n if needed, zeroed.
func takeScratch[T any](bufs *[][]T, next *int, n int) []T {
	b := nextScratch(bufs, next, n)
	clear(b)
	return b
}

// nextScratch is takeScratch without the clearing.
func nextScratch[T any](bufs *[][]T, next *int, n int) []T {
	if *next == len(*bufs) {
		*bufs = append(*bufs, nil)
	}
	b := (*bufs)[*next]
	*next++
	if cap(b) < n {
		b = make([]T, n)
		(*bufs)[*next-1] = b
	}
	return b[:n]
}

// Outputs returns the kernel's result list holding ts, without allocating
// in steady state.
func (a *Arena) Outputs(ts ...*tensor.Tensor) []*tensor.Tensor {
	if a == nil {
		return append([]*tensor.Tensor(nil), ts...)
	}
	if a.nextL == len(a.lists) {
		a.lists = append(a.lists, nil)
	}
	l := append(a.lists[a.nextL][:0], ts...)
	a.lists[a.nextL] = l
	a.nextL++
	return l
}

func clearData(d any) {
	switch d := d.(type) {
	case []float32:
		clear(d)
	case []float64:
		clear(d)
	case []int8:
		clear(d)
	case []int16:
		clear(d)
	case []int32:
		clear(d)
	case []int64:
		clear(d)
	case []uint8:
		clear(d)
	case []uint16:
		clear(d)
	case []uint32:
		clear(d)
	case []uint64:
		clear(d)
	case []bool:
		clear(d)
	case []string:
		clear(d)
	case []tensor.Float16Bits:
		clear(d)
	case []tensor.BFloat16Bits:
		clear(d)
	}
}

func resliceData(d any, n int) any {
	switch d := d.(type) {
	case []float32:
		return d[:n]
	case []float64:
		return d[:n]
	case []int8:
		return d[:n]
	case []int16:
		return d[:n]
	case []int32:
		return d[:n]
	case []int64:
		return d[:n]
	case []uint8:
		return d[:n]
	case []uint16:
		return d[:n]
	case []uint32:
		return d[:n]
	case []uint64:
		return d[:n]
	case []bool:
		return d[:n]
	case []string:
		return d[:n]
	case []tensor.Float16Bits:
		return d[:n]
	case []tensor.BFloat16Bits:
		return d[:n]
	}
	panic(fmt.Sprintf("ops: arena holds %T", d))
}
