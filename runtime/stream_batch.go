package runtime

import (
	"context"
	"fmt"
	"reflect"

	"github.com/mtlrun/mtlrun/tensor"
)

// StepBatch advances several streams of one model (forks of one stream,
// each with its own sequence) by one chunk each in a single batched run
// of st, a stream used as scratch: the members' inputs and carried states
// are joined along the batch axis, st steps once, and the new states and
// the outputs are split back. This is what a server does with requests of
// different sequences that arrive together. Every member must be fresh
// (no step yet) or every member started; all chunks have the same number
// of steps. Inputs and outputs have their batch axis first (dim 1 when the
// time axis is dim 0). It returns one output map per member (copies the
// caller owns). On error no member changes.
func (st *Stream) StepBatch(members []*Stream, inputs []map[string]*tensor.Tensor) ([]map[string]*tensor.Tensor, error) {
	return st.StepBatchContext(context.Background(), members, inputs)
}

// StepBatchContext is StepBatch that stops early, with an error wrapping
// ctx.Err(), when ctx is done; no member changes then.
func (st *Stream) StepBatchContext(ctx context.Context, members []*Stream, inputs []map[string]*tensor.Tensor) ([]map[string]*tensor.Tensor, error) {
	if len(members) != len(inputs) || len(members) == 0 {
		return nil, fmt.Errorf("runtime: StepBatch: %d streams and %d inputs", len(members), len(inputs))
	}
	started := members[0].started
	k := -1
	rows := make([]int, len(members))
	bax := 0
	if st.plan.TimeAxis == 0 {
		bax = 1
	}
	for i, m := range members {
		if m.fingerprint != st.fingerprint || m.plan != st.plan {
			return nil, fmt.Errorf("runtime: StepBatch: stream %d is not a fork of the batch stream", i)
		}
		if m.started != started {
			return nil, fmt.Errorf("runtime: StepBatch: streams %d and 0 differ in having started", i)
		}
		n, err := m.checkStep(inputs[i])
		if err != nil {
			return nil, err
		}
		if k >= 0 && n != k {
			return nil, fmt.Errorf("runtime: StepBatch: stream %d steps %d time steps, stream 0 %d", i, n, k)
		}
		k = n
		rows[i] = inputs[i][st.feeds[0].Name].Shape[bax]
	}
	joined := make(map[string]*tensor.Tensor, len(st.feeds))
	for _, v := range st.feeds {
		parts := make([]*tensor.Tensor, len(members))
		for i := range members {
			parts[i] = inputs[i][v.Name]
		}
		t, err := concatAxis(parts, bax)
		if err != nil {
			return nil, fmt.Errorf("runtime: StepBatch: input %q: %w", v.Name, err)
		}
		joined[v.Name] = t
	}
	st.Reset()
	if started {
		for j, s := range st.states {
			parts := make([]*tensor.Tensor, len(members))
			for i, m := range members {
				parts[i] = m.states[j].buf
			}
			t, err := concatAxis(parts, s.batch)
			if err != nil {
				return nil, fmt.Errorf("runtime: StepBatch: state %s/%s: %w", s.node, s.what, err)
			}
			s.buf = t
		}
		st.started = true
	}
	res, err := st.StepContext(ctx, joined)
	if err != nil {
		return nil, err
	}
	outs := make([]map[string]*tensor.Tensor, len(members))
	for i := range outs {
		outs[i] = make(map[string]*tensor.Tensor, len(res))
	}
	for _, o := range st.plan.Outputs {
		ax := 0
		if o.PerStep && o.TimeAxis == 0 {
			ax = 1
		}
		parts, err := splitAxis(res[o.Name], ax, rows)
		if err != nil {
			return nil, fmt.Errorf("runtime: StepBatch: output %q: %w", o.Name, err)
		}
		for i := range outs {
			outs[i][o.Name] = parts[i]
		}
	}
	newStates := make([][]*tensor.Tensor, len(st.states))
	for j, s := range st.states {
		parts, err := splitAxis(s.buf, s.batch, rows)
		if err != nil {
			return nil, fmt.Errorf("runtime: StepBatch: state %s/%s: %w", s.node, s.what, err)
		}
		newStates[j] = parts
	}
	for i, m := range members {
		for j, s := range m.states {
			s.buf = newStates[j][i]
		}
		if !m.started {
			m.rest = make([][]int, len(m.feeds))
			for f, v := range m.feeds {
				sh := append([]int(nil), inputs[i][v.Name].Shape...)
				sh[m.plan.TimeAxis] = -1
				m.rest[f] = sh
			}
			m.started = true
		}
		m.steps += int64(k)
	}
	return outs, nil
}

// concatAxis joins tensors of one dtype along axis.
func concatAxis(ts []*tensor.Tensor, axis int) (*tensor.Tensor, error) {
	first := ts[0]
	if axis >= first.Rank() {
		return nil, fmt.Errorf("shape %v has no axis %d", first.Shape, axis)
	}
	shape := append([]int(nil), first.Shape...)
	total := 0
	for _, t := range ts {
		if t.DType != first.DType || t.Rank() != first.Rank() {
			return nil, fmt.Errorf("%v and %v cannot be joined", first, t)
		}
		for d := range shape {
			if d != axis && t.Shape[d] != shape[d] {
				return nil, fmt.Errorf("shapes %v and %v differ outside axis %d", first.Shape, t.Shape, axis)
			}
		}
		total += t.Shape[axis]
	}
	shape[axis] = total
	out, err := tensor.New(first.DType, shape)
	if err != nil {
		return nil, err
	}
	outer := 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	dst := reflect.ValueOf(out.Data)
	off := 0
	for o := 0; o < outer; o++ {
		for _, t := range ts {
			n := t.Len() / max(outer, 1)
			reflect.Copy(dst.Slice(off, off+n), reflect.ValueOf(t.Data).Slice(o*n, (o+1)*n))
			off += n
		}
	}
	return out, nil
}

// splitAxis cuts t along axis into parts of the given sizes (copies).
func splitAxis(t *tensor.Tensor, axis int, sizes []int) ([]*tensor.Tensor, error) {
	if axis >= t.Rank() {
		return nil, fmt.Errorf("shape %v has no batch axis %d", t.Shape, axis)
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if t.Shape[axis] != total {
		return nil, fmt.Errorf("shape %v has %d rows on axis %d, the streams %d", t.Shape, t.Shape[axis], axis, total)
	}
	outer, inner := 1, 1
	for d, n := range t.Shape {
		if d < axis {
			outer *= n
		} else if d > axis {
			inner *= n
		}
	}
	src := reflect.ValueOf(t.Data)
	out := make([]*tensor.Tensor, len(sizes))
	lo := 0
	for i, s := range sizes {
		shape := append([]int(nil), t.Shape...)
		shape[axis] = s
		p, err := tensor.New(t.DType, shape)
		if err != nil {
			return nil, err
		}
		dst := reflect.ValueOf(p.Data)
		for o := 0; o < outer; o++ {
			reflect.Copy(dst.Slice(o*s*inner, (o+1)*s*inner), src.Slice((o*total+lo)*inner, (o*total+lo+s)*inner))
		}
		out[i] = p
		lo += s
	}
	return out, nil
}
