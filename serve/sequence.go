package serve

import (
	"container/list"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

// Stateful sequences (Triton's sequence extension): a request carrying a
// sequence_id (uint64 or string; correlation_id is accepted as an alias)
// belongs to that sequence. sequence_start: true starts it (or restarts
// it), sequence_end: true ends it after answering. The server keeps one
// runtime.Stream per live sequence, so each request feeds only its new
// time steps ([1, k, features]) and gets the outputs for the whole
// sequence so far, as a full run over every step sent would give.
//
// A sequence is bound to the model version it was started on (the
// version the request names, else the latest): its later requests must go
// to that version. Reloading or unloading the model ends its sequences;
// their next request gets a 400 saying so.
//
// Sequence requests go through the same admission control as others
// (413 over --max-request-memory, 503 when the model's queue or the memory
// budget is full, checked before the sequence changes), run with the
// request's context (a cancelled or timed-out step stops and leaves the
// sequence's state as before it) and are counted in the same metrics.
//
// At most Options.MaxSequences sequences live per model version; starting
// one more evicts the least recently used. A sequence idle longer than
// Options.SequenceIdleTimeout is dropped. A request for an evicted,
// expired, ended or never started sequence gets a 400 (InvalidArgument)
// saying which. State lives in memory unless Options.StateDir is set.

// Defaults of the sequence options.
const (
	defaultMaxSequences = 1024
	defaultSequenceIdle = 5 * time.Minute
)

// ErrUnknownSequence is wrapped by the error for a request of a sequence
// the server does not hold (evicted, expired, ended or never started).
var ErrUnknownSequence = errors.New("unknown sequence")

// sequenceError is a client error wrapping ErrUnknownSequence.
type sequenceError struct{ msg string }

func (e *sequenceError) Error() string { return e.msg }
func (e *sequenceError) Unwrap() error { return ErrUnknownSequence }

// As makes the error a *BadRequest too (HTTP 400, gRPC InvalidArgument).
func (e *sequenceError) As(target any) bool {
	if br, ok := target.(**BadRequest); ok {
		*br = &BadRequest{e.msg}
		return true
	}
	return false
}

// sequences holds every model version's sequence table and the metrics.
type sequences struct {
	once    sync.Once
	mu      sync.Mutex
	tables  map[*Model]*seqTable // per served model version
	gone    map[string]*goneSet  // per model name
	live    *prometheus.GaugeVec
	ended   *prometheus.CounterVec
	maxSeqs int
	idle    time.Duration
	dir     string           // Options.StateDir
	now     func() time.Time // a clock tests can move
}

// goneSet remembers why recent sequences of a model are gone (bounded),
// across its versions and reloads, for a precise error.
type goneSet struct {
	mu    sync.Mutex
	why   map[string]string
	order []string
}

func (g *goneSet) get(id string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	why, ok := g.why[id]
	return why, ok
}

func (g *goneSet) forget(id string) {
	g.mu.Lock()
	delete(g.why, id)
	g.mu.Unlock()
}

func (g *goneSet) put(id, why string, limit int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := g.why[id]; !dup {
		g.order = append(g.order, id)
	}
	g.why[id] = why
	for len(g.order) > limit {
		delete(g.why, g.order[0])
		g.order = g.order[1:]
	}
}

func (q *sequences) init(s *Server) {
	q.once.Do(func() {
		q.tables = map[*Model]*seqTable{}
		q.gone = map[string]*goneSet{}
		q.maxSeqs, q.idle, q.dir = s.opts.MaxSequences, s.opts.SequenceIdleTimeout, s.opts.StateDir
		if q.maxSeqs <= 0 {
			q.maxSeqs = defaultMaxSequences
		}
		if q.idle <= 0 {
			q.idle = defaultSequenceIdle
		}
		if q.now == nil {
			q.now = time.Now
		}
		q.live = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mtlrun_sequences_live", Help: "Stateful sequences held in memory.",
		}, []string{"model"})
		q.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtlrun_sequences_ended_total", Help: "Sequences dropped, by reason: end (sequence_end), evicted (least recently used past --max-sequences), idle (--sequence-idle-timeout) or unloaded (the model version was reloaded or unloaded).",
		}, []string{"model", "reason"})
		s.opts.Registry.MustRegister(q.live, q.ended)
	})
}

// table returns the model version's sequence table.
func (q *sequences) table(m *Model) *seqTable {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tables[m]
	if t == nil {
		if m.seqClosed {
			// a request that found the version just before it was
			// reloaded or unloaded: a closed table, not kept
			return &seqTable{q: q, model: m, closed: true}
		}
		g := q.gone[m.Name]
		if g == nil {
			g = &goneSet{why: map[string]string{}}
			q.gone[m.Name] = g
		}
		t = &seqTable{q: q, model: m, lru: list.New(), byID: map[string]*list.Element{}, gone: g, protos: map[string]*runtime.Stream{}}
		q.tables[m] = t
		q.live.WithLabelValues(m.Name).Add(0)
	}
	return t
}

// boundElsewhere names the other version of m's model that holds sequence
// id, if any.
func (q *sequences) boundElsewhere(m *Model, id string) (string, bool) {
	q.mu.Lock()
	var others []*seqTable
	for om, t := range q.tables {
		if om != m && om.Name == m.Name {
			others = append(others, t)
		}
	}
	q.mu.Unlock()
	for _, t := range others {
		t.mu.Lock()
		_, ok := t.byID[id]
		t.mu.Unlock()
		if ok {
			return t.model.Version, true
		}
	}
	return "", false
}

// endSet ends the sequences of every version of a model set that stops
// being served (reloaded or unloaded), saying so to their next request.
// Steps already running finish; their state is not persisted.
func (q *sequences) endSet(set *modelSet, why string) {
	if set == nil {
		return
	}
	q.mu.Lock()
	var ts []*seqTable
	for _, m := range set.versions {
		m.seqClosed = true
		if t := q.tables[m]; t != nil {
			ts = append(ts, t)
			delete(q.tables, m)
		}
	}
	q.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		for el := t.lru.Back(); el != nil; el = t.lru.Back() {
			t.dropWhy(el.Value.(*seqEntry), "unloaded", fmt.Sprintf("ended because model %q version %s was %s; start it again with sequence_start: true", t.model.Name, t.model.Version, why))
		}
		t.closed = true
		t.mu.Unlock()
	}
}

// seqTable is one model version's live sequences, most recently used first.
type seqTable struct {
	q     *sequences
	model *Model
	mu    sync.Mutex
	lru   *list.List // of *seqEntry
	byID  map[string]*list.Element
	gone  *goneSet // the model's, shared by its versions
	// the model version was reloaded or unloaded: no new sequences
	closed bool
	// one compiled stream per requested-output set; sequences fork it
	protos map[string]*runtime.Stream
	batch  *seqBatcher
}

// batcher returns the table's sequence batcher.
func (t *seqTable) batcher(s *Server) *seqBatcher {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.batch == nil {
		t.batch = &seqBatcher{t: t, s: s, full: make(chan struct{}, 1), scratch: map[string][]*runtime.Stream{}}
	}
	return t.batch
}

type seqEntry struct {
	id       string
	outputs  string   // the output set its stream computes, as a key
	outNames []string // the same, as names
	// lock serializes the sequence's requests (a channel, so that waiting
	// for it honours the request's context)
	lock chan struct{}
	st   *runtime.Stream
	last time.Time
}

func newSeqEntry(id, key string, outputs []string, st *runtime.Stream) *seqEntry {
	return &seqEntry{id: id, outputs: key, outNames: outputs, st: st, lock: make(chan struct{}, 1)}
}

func (e *seqEntry) unlock() { <-e.lock }

// acquire returns the sequence's entry, locked for the caller; start
// creates or restarts it. Waiting for another request of the same
// sequence ends with ctx.
func (t *seqTable) acquire(ctx context.Context, id string, start bool, outputs []string) (*seqEntry, error) {
	key := strings.Join(outputs, "\x00")
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, &sequenceError{fmt.Sprintf("sequence %s: model %q version %s is no longer served", quoteID(id), t.model.Name, t.model.Version)}
	}
	now := t.q.now()
	t.expire(now)
	el, ok := t.byID[id]
	var e *seqEntry
	switch {
	case ok:
		e = el.Value.(*seqEntry)
		t.lru.MoveToFront(el)
		if start && e.outputs != key {
			// restarted with other outputs: a stream for those
			st, err := t.fork(outputs, key)
			if err != nil {
				t.mu.Unlock()
				return nil, err
			}
			e = newSeqEntry(id, key, outputs, st)
			el.Value = e
		}
	case start:
		st, err := t.fork(outputs, key)
		if err != nil {
			t.mu.Unlock()
			return nil, err
		}
		e = newSeqEntry(id, key, outputs, st)
		t.byID[id] = t.lru.PushFront(e)
		t.q.live.WithLabelValues(t.model.Name).Inc()
		t.gone.forget(id)
		for t.lru.Len() > t.q.maxSeqs {
			t.drop(t.lru.Back().Value.(*seqEntry), "evicted")
		}
	default:
		why, known := t.gone.get(id)
		if !known && t.q.dir != "" {
			restored, err := t.load(id)
			if err != nil {
				t.mu.Unlock()
				return nil, err
			}
			if restored != nil {
				e = restored
				t.byID[id] = t.lru.PushFront(e)
				t.q.live.WithLabelValues(t.model.Name).Inc()
				for t.lru.Len() > t.q.maxSeqs {
					t.drop(t.lru.Back().Value.(*seqEntry), "evicted")
				}
				break
			}
		}
		t.mu.Unlock()
		if !known {
			if v, ok := t.q.boundElsewhere(t.model, id); ok {
				return nil, &sequenceError{fmt.Sprintf("sequence %s of model %q is bound to version %s, not %s: send its requests to that version (/v2/models/%s/versions/%s)", quoteID(id), t.model.Name, v, t.model.Version, t.model.Name, v)}
			}
			why = "was never started (send sequence_start: true first)"
		}
		return nil, &sequenceError{fmt.Sprintf("sequence %s of model %q is unknown: it %s", quoteID(id), t.model.Name, why)}
	}
	e.last = now
	t.mu.Unlock()
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if start {
		e.st.Reset()
	}
	return e, nil
}

// fork makes a stream for a new sequence from the output set's prototype.
func (t *seqTable) fork(outputs []string, key string) (*runtime.Stream, error) {
	p := t.protos[key]
	if p == nil {
		var err error
		p, err = t.model.session.NewStream(outputs...)
		if err != nil {
			return nil, badf("model %q cannot serve sequences: %v", t.model.Name, err)
		}
		t.protos[key] = p
	}
	return p.Fork()
}

// expire drops the sequences idle past the timeout (oldest at the back).
func (t *seqTable) expire(now time.Time) {
	for el := t.lru.Back(); el != nil; el = t.lru.Back() {
		e := el.Value.(*seqEntry)
		if now.Sub(e.last) <= t.q.idle {
			return
		}
		t.drop(e, "idle")
	}
}

// drop removes a sequence, remembering why for later requests; the caller
// holds t.mu.
func (t *seqTable) drop(e *seqEntry, reason string) {
	var why string
	switch reason {
	case "evicted":
		why = fmt.Sprintf("was evicted: least recently used of more than %d live sequences (--max-sequences)", t.q.maxSeqs)
	case "idle":
		why = fmt.Sprintf("expired after %v without requests (--sequence-idle-timeout)", t.q.idle)
	default:
		why = "ended (sequence_end); start it again with sequence_start: true"
	}
	t.dropWhy(e, reason, why)
}

func (t *seqTable) dropWhy(e *seqEntry, reason, why string) {
	el, ok := t.byID[e.id]
	if !ok || el.Value.(*seqEntry) != e {
		return
	}
	t.lru.Remove(el)
	delete(t.byID, e.id)
	t.gone.put(e.id, why, 4*t.q.maxSeqs)
	t.q.ended.WithLabelValues(t.model.Name, reason).Inc()
	if t.q.dir != "" {
		os.Remove(t.statePath(e.id))
	}
	t.q.live.WithLabelValues(t.model.Name).Dec()
}

// end drops the sequence after its last request.
func (t *seqTable) end(e *seqEntry) {
	t.mu.Lock()
	t.drop(e, "end")
	t.mu.Unlock()
}

// quoteID prints a sequence id as the client sent it.
func quoteID(id string) string {
	if n, ok := strings.CutPrefix(id, "#"); ok {
		return n
	}
	return strconv.Quote(id[1:])
}

// sequenceID reads sequence_id (or correlation_id): "#N" for a number, "$S"
// for a string, "" when the request is not part of a sequence (absent, 0
// or "").
func sequenceID(p map[string]any) (string, error) {
	for _, key := range []string{"sequence_id", "correlation_id"} {
		v, ok := p[key]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case string:
			if x == "" {
				return "", nil
			}
			return "$" + x, nil
		case json.Number:
			n, err := strconv.ParseUint(string(x), 10, 64)
			if err != nil {
				return "", badf("%s must be a uint64 or a string, got %s", key, x)
			}
			if n == 0 {
				return "", nil
			}
			return "#" + strconv.FormatUint(n, 10), nil
		case float64:
			if x < 0 || x != math.Trunc(x) || x >= 1<<64 {
				return "", badf("%s must be a uint64 or a string, got %v", key, x)
			}
			if x == 0 {
				return "", nil
			}
			return "#" + strconv.FormatUint(uint64(x), 10), nil
		case uint64:
			if x == 0 {
				return "", nil
			}
			return "#" + strconv.FormatUint(x, 10), nil
		case int64:
			if x < 0 {
				return "", badf("%s must be a uint64 or a string, got %d", key, x)
			}
			if x == 0 {
				return "", nil
			}
			return "#" + strconv.FormatInt(x, 10), nil
		default:
			return "", badf("%s must be a uint64 or a string, got %T", key, v)
		}
	}
	return "", nil
}

// grpcParams turns gRPC request parameters into the JSON form.
func grpcParams(p map[string]*pb.InferParameter) map[string]any {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]any, len(p))
	for k, v := range p {
		switch c := v.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = c.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = c.Int64Param
		case *pb.InferParameter_Uint64Param:
			out[k] = c.Uint64Param
		case *pb.InferParameter_StringParam:
			out[k] = c.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = c.DoubleParam
		}
	}
	return out
}

// InferParams is Infer with the request's parameters: a request with a
// sequence_id runs on that sequence's stream, after the same admission
// control as Infer; others go to Infer.
func (s *Server) InferParams(ctx context.Context, m *Model, params map[string]any, inputs map[string]*tensor.Tensor, outputs []string) (map[string]*tensor.Tensor, error) {
	id, err := sequenceID(params)
	if err != nil {
		return nil, err
	}
	start, end := paramBool(params, "sequence_start"), paramBool(params, "sequence_end")
	if id == "" {
		if start || end {
			return nil, badf("sequence_start and sequence_end need a non-zero sequence_id")
		}
		return s.Infer(ctx, m, inputs, outputs)
	}
	// admission, before the sequence changes: a step runs the model on
	// the new steps, so the model's estimate for them bounds its memory
	streamed, release, err := s.admit(ctx, m, inputs, outputs)
	if err != nil {
		return nil, err
	}
	defer release()
	t := s.seq.table(m)
	e, err := t.acquire(ctx, id, start, streamed)
	if err != nil {
		return nil, classifyRunError(err)
	}
	defer e.unlock()
	if len(outputs) == 0 {
		outputs = e.outNames
	}
	var out map[string]*tensor.Tensor
	owned := false
	if s.opts.MaxBatch > 1 {
		out, err = t.batcher(s).step(ctx, e, inputs)
		owned = true
	} else {
		began := time.Now()
		out, err = e.st.StepContext(ctx, inputs)
		s.metrics.executed(m, time.Since(began), batchRows(inputs), err)
	}
	if err != nil {
		var se *ops.InputError
		if errors.As(err, &se) {
			return nil, &BadRequest{fmt.Sprintf("sequence %s: %v", quoteID(id), err)}
		}
		return nil, classifyRunError(err)
	}
	result := make(map[string]*tensor.Tensor, len(outputs))
	for _, o := range outputs {
		t, ok := out[o]
		if !ok {
			return nil, badf("sequence %s streams outputs %s; %q was not among them at sequence_start", quoteID(id), strings.Join(e.outNames, ", "), o)
		}
		if !owned {
			t = t.Clone()
		}
		result[o] = t
	}
	if end {
		t.end(e)
	} else if s.seq.dir != "" {
		if err := t.save(e); err != nil {
			return nil, fmt.Errorf("sequence %s: persisting its state: %w", quoteID(id), err)
		}
	}
	return result, nil
}

// seqBatcher runs the steps of different sequences that arrive together
// as one batched run (runtime.Stream.StepBatch): the first request of a
// batch waits up to Options.BatchTimeout (or until Options.MaxBatch
// requests are pending) and runs them all, grouped by output set, start
// state and input shape.
type seqBatcher struct {
	t       *seqTable
	s       *Server
	mu      sync.Mutex
	pending []*seqJob
	full    chan struct{}
	// idle scratch streams per output set (a batched run needs its own)
	scratch map[string][]*runtime.Stream
	batched atomic.Int64 // runs that batched more than one sequence
}

type seqJob struct {
	ctx  context.Context
	e    *seqEntry
	in   map[string]*tensor.Tensor
	enq  time.Time
	out  map[string]*tensor.Tensor
	err  error
	done chan struct{}
}

// step runs one sequence's step, batched with others when they come
// together; the result belongs to the caller. It returns when the job
// has stopped (a cancelled request's job stops within a bounded time), so
// that the sequence is never stepped by two requests at once.
func (b *seqBatcher) step(ctx context.Context, e *seqEntry, in map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	j := &seqJob{ctx: ctx, e: e, in: in, enq: time.Now(), done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, j)
	leader := len(b.pending) == 1
	if !leader && len(b.pending) >= b.s.opts.MaxBatch {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	if !leader {
		<-j.done
		return j.out, j.err
	}
	timer := time.NewTimer(b.s.opts.BatchTimeout)
	select {
	case <-timer.C:
	case <-b.full:
		timer.Stop()
	}
	b.mu.Lock()
	jobs := b.pending
	b.pending = nil
	select { // a signal for this batch must not cut the next one short
	case <-b.full:
	default:
	}
	b.mu.Unlock()
	b.run(jobs)
	return j.out, j.err
}

// run executes pending jobs in groups that can share a batched run.
func (b *seqBatcher) run(jobs []*seqJob) {
	groups := map[string][]*seqJob{}
	var order []string
	for _, j := range jobs {
		key := groupKey(j)
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], j)
	}
	for _, key := range order {
		g := groups[key]
		for len(g) > 0 {
			n := min(len(g), b.s.opts.MaxBatch)
			b.runGroup(g[:n])
			g = g[n:]
		}
	}
}

// groupKey says which jobs may run together: same output set, all fresh
// or all started, same input shapes apart from the batch rows.
func groupKey(j *seqJob) string {
	var sb strings.Builder
	sb.WriteString(j.e.outputs)
	fmt.Fprintf(&sb, "|%v", j.e.st.Started())
	names := make([]string, 0, len(j.in))
	for name := range j.in {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := j.in[name]
		fmt.Fprintf(&sb, "|%s:%v", name, t.DType)
		for d, n := range t.Shape {
			if d == 0 {
				n = -1
			}
			fmt.Fprintf(&sb, ",%d", n)
		}
	}
	return sb.String()
}

func (b *seqBatcher) runGroup(g []*seqJob) {
	m := b.t.model
	now := time.Now()
	live := g[:0:0]
	for _, j := range g {
		b.s.metrics.waited(m, now.Sub(j.enq))
		if err := j.ctx.Err(); err != nil {
			j.err = err
			close(j.done)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	defer func() {
		for _, j := range live {
			close(j.done)
		}
	}()
	one := func(j *seqJob) {
		began := time.Now()
		res, err := j.e.st.StepContext(j.ctx, j.in)
		b.s.metrics.executed(m, time.Since(began), batchRows(j.in), err)
		if err != nil {
			j.err = err
			return
		}
		j.out = make(map[string]*tensor.Tensor, len(res))
		for k, v := range res {
			j.out[k] = v.Clone()
		}
	}
	if len(live) == 1 {
		one(live[0])
		return
	}
	key := live[0].e.outputs
	sc, err := b.takeScratch(key, live[0].e.st)
	if err == nil {
		members := make([]*runtime.Stream, len(live))
		ins := make([]map[string]*tensor.Tensor, len(live))
		rows := 0
		for i, j := range live {
			members[i], ins[i] = j.e.st, j.in
			rows += batchRows(j.in)
		}
		// the batched step stops when every one of its requests is cancelled
		ctx, cancel := context.WithCancel(context.Background())
		var left atomic.Int64
		left.Store(int64(len(live)))
		var stops []func() bool
		for _, j := range live {
			stops = append(stops, context.AfterFunc(j.ctx, func() {
				if left.Add(-1) == 0 {
					cancel()
				}
			}))
		}
		began := time.Now()
		var outs []map[string]*tensor.Tensor
		outs, err = sc.StepBatchContext(ctx, members, ins)
		b.s.metrics.executed(m, time.Since(began), rows, err)
		for _, stop := range stops {
			stop()
		}
		cancel()
		b.putScratch(key, sc)
		if err == nil {
			b.batched.Add(1)
			for i, j := range live {
				j.out = outs[i]
			}
			return
		}
	}
	// a batch that fails (one bad request, or every request gave up) is
	// answered one by one, so each request gets its own result or error
	for _, j := range live {
		one(j)
	}
}

func (b *seqBatcher) takeScratch(key string, like *runtime.Stream) (*runtime.Stream, error) {
	b.mu.Lock()
	if free := b.scratch[key]; len(free) > 0 {
		sc := free[len(free)-1]
		b.scratch[key] = free[:len(free)-1]
		b.mu.Unlock()
		return sc, nil
	}
	b.mu.Unlock()
	return like.Fork()
}

func (b *seqBatcher) putScratch(key string, sc *runtime.Stream) {
	b.mu.Lock()
	b.scratch[key] = append(b.scratch[key], sc)
	b.mu.Unlock()
}

// State files (Options.StateDir): DIR/MODEL/VERSION/HEX(ID).state holds
// the output set (uint32 length, names joined by NUL) and the stream's
// State bytes. A file is replaced atomically (written beside, then
// renamed) after every step, removed when the sequence ends, is evicted,
// expires or its model version is reloaded or unloaded, and read back when
// a request names a sequence this process does not hold (after a
// restart). The rename makes each write atomic; it is not synced to disk
// before the answer goes out.

func (t *seqTable) statePath(id string) string {
	return filepath.Join(t.q.dir, t.model.Name, t.model.Version, hex.EncodeToString([]byte(id))+".state")
}

// save writes the sequence's state file.
func (t *seqTable) save(e *seqEntry) error {
	state, err := e.st.State()
	if err != nil {
		return err
	}
	path := t.statePath(e.id)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	var head [4]byte
	binary.LittleEndian.PutUint32(head[:], uint32(len(e.outputs)))
	_, err = f.Write(append(append(head[:], e.outputs...), state...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// a sequence dropped while it stepped (evicted, or its model
		// unloaded) must not come back from its file: the rename is done
		// under the table lock, only while the sequence is live
		t.mu.Lock()
		if el, ok := t.byID[e.id]; ok && el.Value.(*seqEntry) == e {
			err = os.Rename(f.Name(), path)
		} else {
			os.Remove(f.Name())
		}
		t.mu.Unlock()
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// load restores a sequence from its state file: nil when there is none.
func (t *seqTable) load(id string) (*seqEntry, error) {
	data, err := os.ReadFile(t.statePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	bad := func(why string) error {
		return badf("sequence %s of model %q: state file %s %s", quoteID(id), t.model.Name, t.statePath(id), why)
	}
	if len(data) < 4 || int(binary.LittleEndian.Uint32(data)) > len(data)-4 {
		return nil, bad("is damaged")
	}
	n := int(binary.LittleEndian.Uint32(data))
	key := string(data[4 : 4+n])
	outputs := strings.Split(key, "\x00")
	for _, o := range outputs {
		if _, ok := t.model.model.Graph.Output(o); !ok {
			return nil, bad(fmt.Sprintf("names output %q, which model %q lacks", o, t.model.Name))
		}
	}
	st, err := t.fork(outputs, key)
	if err != nil {
		return nil, err
	}
	if err := st.Restore(data[4+n:]); err != nil {
		return nil, bad(fmt.Sprintf("cannot be restored: %v", err))
	}
	return newSeqEntry(id, key, outputs, st), nil
}
