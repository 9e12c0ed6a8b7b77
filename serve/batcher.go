package serve

import (
	"context"
	"fmt"
	"reflect"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// batchable reports whether every input has a free leading (batch) dim, so
// that requests can be stacked along it.
func batchable(g *graph.Graph) bool {
	feeds := g.FeedInputs()
	if len(feeds) == 0 {
		return false
	}
	for _, v := range feeds {
		if !v.HasShape || len(v.Shape) == 0 || v.Shape[0].Known() {
			return false
		}
	}
	return true
}

// batcher coalesces concurrent requests of one model that share a shape
// class (all dims but the batch dim, dtypes, requested outputs) into one
// session run of up to max rows, waiting at most timeout for company.
type batcher struct {
	m       *Model
	max     int
	timeout time.Duration
	metrics *metrics
	jobs    chan *job
	ready   chan []*job // formed batches, run by the executors
	quit    chan struct{}
	done    sync.WaitGroup
}

type job struct {
	ctx     context.Context
	release func() // frees the request's admission; called once the job stops
	inputs  map[string]*tensor.Tensor
	outputs []string
	key     string
	rows    int
	enq     time.Time
	result  chan jobResult
}

type jobResult struct {
	out map[string]*tensor.Tensor
	err error
}

func newBatcher(m *Model, max int, timeout time.Duration, mt *metrics) *batcher {
	b := &batcher{m: m, max: max, timeout: timeout, metrics: mt, jobs: make(chan *job, 4*max),
		ready: make(chan []*job), quit: make(chan struct{})}
	// one collector forms batches while executors (one per CPU) run them,
	// so the next batch fills up while the previous one computes
	workers := goruntime.GOMAXPROCS(0)
	b.done.Add(1 + workers)
	go b.loop()
	for i := 0; i < workers; i++ {
		go func() {
			defer b.done.Done()
			for batch := range b.ready {
				b.run(batch)
			}
		}()
	}
	return b
}

func (b *batcher) close() {
	close(b.quit)
	b.done.Wait()
}

func shapeKey(inputs map[string]*tensor.Tensor, outputs []string) (string, int) {
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	rows := -1
	for _, k := range names {
		t := inputs[k]
		fmt.Fprintf(&sb, "%s:%v:%v;", k, t.DType, t.Shape[1:])
		if rows < 0 {
			rows = t.Shape[0]
		} else if rows != t.Shape[0] {
			rows = -2 // inconsistent batch: run alone, the session reports it
		}
	}
	sb.WriteString(strings.Join(outputs, ","))
	return sb.String(), rows
}

// submit queues a request and waits for its result or for ctx. release is
// called exactly once, when the job has stopped (finished, failed, or was
// skipped as cancelled), which may be after submit returned ctx.Err().
func (b *batcher) submit(ctx context.Context, inputs map[string]*tensor.Tensor, outputs []string, release func()) (map[string]*tensor.Tensor, error) {
	for _, t := range inputs {
		if t.Rank() == 0 {
			release()
			return nil, badf("input of model %q must have a batch dimension", b.m.Name)
		}
	}
	key, rows := shapeKey(inputs, outputs)
	j := &job{ctx: ctx, release: release, inputs: inputs, outputs: outputs, key: key, rows: rows, enq: time.Now(), result: make(chan jobResult, 1)}
	if rows < 0 || rows > b.max {
		key = "" // not batched with anything
		j.key = fmt.Sprintf("alone:%p", j)
	}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	case <-b.quit:
		release()
		return nil, ErrShuttingDown
	}
	select {
	case r := <-j.result:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *batcher) loop() {
	defer b.done.Done()
	defer close(b.ready)
	var pending []*job
	defer func() {
		// jobs queued when the batcher stops are answered, not dropped
		for {
			select {
			case j := <-b.jobs:
				pending = append(pending, j)
				continue
			default:
			}
			break
		}
		for _, j := range pending {
			j.result <- jobResult{err: ErrShuttingDown}
			j.release()
		}
	}()
	for {
		var first *job
		if len(pending) > 0 {
			first, pending = pending[0], pending[1:]
		} else {
			select {
			case first = <-b.jobs:
			case <-b.quit:
				return
			}
		}
		batch := []*job{first}
		rows := first.rows
		// take waiting jobs of the same class first
		rest := pending[:0]
		for _, j := range pending {
			if j.key == first.key && rows+j.rows <= b.max {
				batch = append(batch, j)
				rows += j.rows
			} else {
				rest = append(rest, j)
			}
		}
		pending = rest
		if rows < b.max && !strings.HasPrefix(first.key, "alone:") {
			timer := time.NewTimer(b.timeout)
		collect:
			for rows < b.max {
				select {
				case j := <-b.jobs:
					if j.key == first.key && rows+j.rows <= b.max {
						batch = append(batch, j)
						rows += j.rows
					} else {
						pending = append(pending, j)
					}
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		b.ready <- batch
	}
}

func (b *batcher) run(batch []*job) {
	now := time.Now()
	live := batch[:0]
	for _, j := range batch {
		b.metrics.waited(b.m, now.Sub(j.enq))
		if j.ctx.Err() != nil {
			j.result <- jobResult{err: j.ctx.Err()}
			j.release()
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	defer func() {
		for _, j := range live {
			j.release()
		}
	}()
	if len(live) == 1 {
		j := live[0]
		start := time.Now()
		out, err := b.m.session.RunContext(j.ctx, j.inputs, j.outputs...)
		b.metrics.executed(b.m, time.Since(start), max(j.rows, 1), err)
		if err != nil {
			err = classifyRunError(err)
		}
		j.result <- jobResult{out, err}
		return
	}
	rows := 0
	for _, j := range live {
		rows += j.rows
	}
	inputs := map[string]*tensor.Tensor{}
	for name := range live[0].inputs {
		parts := make([]*tensor.Tensor, len(live))
		for i, j := range live {
			parts[i] = j.inputs[name]
		}
		inputs[name] = concatRows(parts)
	}
	// the coalesced run stops when every one of its requests is cancelled
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int64
	left.Store(int64(len(live)))
	for _, j := range live {
		stop := context.AfterFunc(j.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	start := time.Now()
	out, err := b.m.session.RunContext(ctx, inputs, live[0].outputs...)
	b.metrics.executed(b.m, time.Since(start), rows, err)
	if err == nil {
		for _, t := range out {
			if t.Rank() == 0 || t.Shape[0] != rows {
				err = fmt.Errorf("output %v is not batched along its first axis", t)
			}
		}
	}
	if err != nil {
		// something in the stacked run failed (or every request gave up):
		// run each alone so every request gets its own answer (or error)
		for _, j := range live {
			o, e := b.m.session.RunContext(j.ctx, j.inputs, j.outputs...)
			if e != nil {
				e = classifyRunError(e)
			}
			j.result <- jobResult{o, e}
		}
		return
	}
	off := 0
	for _, j := range live {
		res := map[string]*tensor.Tensor{}
		for name, t := range out {
			res[name] = sliceRows(t, off, off+j.rows)
		}
		off += j.rows
		j.result <- jobResult{out: res}
	}
}

// concatRows stacks tensors that agree on every dim but the first.
func concatRows(ts []*tensor.Tensor) *tensor.Tensor {
	rows := 0
	for _, t := range ts {
		rows += t.Shape[0]
	}
	shape := append([]int{rows}, ts[0].Shape[1:]...)
	out, _ := tensor.New(ts[0].DType, shape)
	dst := reflect.ValueOf(out.Data)
	off := 0
	for _, t := range ts {
		n := t.Len()
		reflect.Copy(dst.Slice(off, off+n), reflect.ValueOf(t.Data))
		off += n
	}
	return out
}

// sliceRows returns rows [a, b) of t as a view.
func sliceRows(t *tensor.Tensor, a, b int) *tensor.Tensor {
	per := 1
	for _, d := range t.Shape[1:] {
		per *= d
	}
	shape := append([]int{b - a}, t.Shape[1:]...)
	return &tensor.Tensor{DType: t.DType, Shape: shape, Data: reflect.ValueOf(t.Data).Slice(a*per, b*per).Interface()}
}
