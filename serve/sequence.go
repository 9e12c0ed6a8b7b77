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
// At most Options.MaxSequences sequences live per model; starting one more
// evicts the least recently used. A sequence idle longer than
// Options.SequenceIdleTimeout is dropped. A request for an evicted,
// expired, ended or never started sequence gets a 400 (InvalidArgument)
// saying which. State lives in memory only.

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

// sequences holds every model's sequence table and the metrics.
type sequences struct {
	once    sync.Once
	mu      sync.Mutex
	tables  map[string]*seqTable
	live    *prometheus.GaugeVec
	ended   *prometheus.CounterVec
	maxSeqs int
	idle    time.Duration
	dir     string           // Options.StateDir
	now     func() time.Time // a clock tests can move
}

func (q *sequences) init(s *Server) {
	q.once.Do(func() {
		q.tables = map[string]*seqTable{}
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
			Name: "mtlrun_sequences_ended_total", Help: "Sequences dropped, by reason: end (sequence_end), evicted (least recently used past --max-sequences) or idle (--sequence-idle-timeout).",
		}, []string{"model", "reason"})
		s.opts.Registry.MustRegister(q.live, q.ended)
	})
}

// table returns the model's sequence table.
func (q *sequences) table(m *Model) *seqTable {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tables[m.Name]
	if t == nil {
		t = &seqTable{q: q, model: m, lru: list.New(), byID: map[string]*list.Element{}, gone: map[string]string{}, protos: map[string]*runtime.Stream{}}
		q.tables[m.Name] = t
		q.live.WithLabelValues(m.Name).Set(0)
	}
	return t
}

// seqTable is one model's live sequences, most recently used first.
type seqTable struct {
	q     *sequences
	model *Model
	mu    sync.Mutex
	lru   *list.List // of *seqEntry
	byID  map[string]*list.Element
	// why recent sequences are gone (bounded), for a precise error
	gone      map[string]string
	goneOrder []string
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
	mu       sync.Mutex
	st       *runtime.Stream
	last     time.Time
}

// acquire returns the sequence's entry, locked for the caller; start
// creates or restarts it.
func (t *seqTable) acquire(id string, start bool, outputs []string) (*seqEntry, error) {
	key := strings.Join(outputs, "\x00")
	t.mu.Lock()
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
			e = &seqEntry{id: id, outputs: key, outNames: outputs, st: st}
			el.Value = e
		}
	case start:
		st, err := t.fork(outputs, key)
		if err != nil {
			t.mu.Unlock()
			return nil, err
		}
		e = &seqEntry{id: id, outputs: key, outNames: outputs, st: st}
		t.byID[id] = t.lru.PushFront(e)
		delete(t.gone, id)
		for t.lru.Len() > t.q.maxSeqs {
			t.drop(t.lru.Back().Value.(*seqEntry), "evicted")
		}
	default:
		why, known := t.gone[id]
		if !known && t.q.dir != "" {
			restored, err := t.load(id)
			if err != nil {
				t.mu.Unlock()
				return nil, err
			}
			if restored != nil {
				e = restored
				t.byID[id] = t.lru.PushFront(e)
				for t.lru.Len() > t.q.maxSeqs {
					t.drop(t.lru.Back().Value.(*seqEntry), "evicted")
				}
				break
			}
		}
		t.mu.Unlock()
		if !known {
			why = "was never started (send sequence_start: true first)"
		}
		return nil, &sequenceError{fmt.Sprintf("sequence %s of model %q is unknown: it %s", quoteID(id), t.model.Name, why)}
	}
	e.last = now
	t.q.live.WithLabelValues(t.model.Name).Set(float64(t.lru.Len()))
	t.mu.Unlock()
	e.mu.Lock()
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

// drop removes a sequence, remembering why for later requests.
func (t *seqTable) drop(e *seqEntry, reason string) {
	el, ok := t.byID[e.id]
	if !ok || el.Value.(*seqEntry) != e {
		return
	}
	t.lru.Remove(el)
	delete(t.byID, e.id)
	var why string
	switch reason {
	case "evicted":
		why = fmt.Sprintf("was evicted: least recently used of more than %d live sequences (--max-sequences)", t.q.maxSeqs)
	case "idle":
		why = fmt.Sprintf("expired after %v without requests (--sequence-idle-timeout)", t.q.idle)
	default:
		why = "ended (sequence_end); start it again with sequence_start: true"
	}
	if _, dup := t.gone[e.id]; !dup {
		t.goneOrder = append(t.goneOrder, e.id)
	}
	t.gone[e.id] = why
	for len(t.goneOrder) > 4*t.q.maxSeqs {
		delete(t.gone, t.goneOrder[0])
		t.goneOrder = t.goneOrder[1:]
	}
	t.q.ended.WithLabelValues(t.model.Name, reason).Inc()
	if t.q.dir != "" {
		os.Remove(t.statePath(e.id))
	}
	t.q.live.WithLabelValues(t.model.Name).Set(float64(t.lru.Len()))
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
// sequence_id runs on that sequence's stream; others go to Infer.
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
	for _, o := range outputs {
		if _, ok := m.model.Graph.Output(o); !ok {
			return nil, badf("model %q has no output %q (outputs: %s)", m.Name, o, strings.Join(m.meta.outputNames(), ", "))
		}
	}
	streamed := outputs
	if len(streamed) == 0 {
		streamed = m.meta.outputNames()
	}
	if err := m.checkInputs(inputs); err != nil {
		return nil, err
	}
	s.seq.init(s)
	t := s.seq.table(m)
	e, err := t.acquire(id, start, streamed)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	if len(outputs) == 0 {
		outputs = e.outNames
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case m.queue <- struct{}{}:
	default:
		return nil, ErrOverloaded
	}
	s.metrics.queueDepth.WithLabelValues(m.Name).Inc()
	defer func() {
		<-m.queue
		s.metrics.queueDepth.WithLabelValues(m.Name).Dec()
	}()
	var res map[string]*tensor.Tensor
	owned := false
	if s.opts.MaxBatch > 1 {
		res, err = t.batcher(s).step(e, inputs)
		owned = true
	} else {
		began := time.Now()
		res, err = e.st.Step(inputs)
		s.metrics.compute.WithLabelValues(m.Name).Observe(time.Since(began).Seconds())
		s.metrics.batchSize.WithLabelValues(m.Name).Observe(float64(batchRows(inputs)))
	}
	if err != nil {
		var se *runtime.StepError
		if errors.As(err, &se) {
			return nil, &BadRequest{fmt.Sprintf("sequence %s: %v", quoteID(id), err)}
		}
		return nil, classifyRunError(err)
	}
	out := make(map[string]*tensor.Tensor, len(outputs))
	for _, o := range outputs {
		t, ok := res[o]
		if !ok {
			return nil, badf("sequence %s streams outputs %s; %q was not among them at sequence_start", quoteID(id), strings.Join(e.outNames, ", "), o)
		}
		if !owned {
			t = t.Clone()
		}
		out[o] = t
	}
	if end {
		t.end(e)
	} else if s.seq.dir != "" {
		if err := t.save(e); err != nil {
			return nil, fmt.Errorf("sequence %s: persisting its state: %w", quoteID(id), err)
		}
	}
	return out, nil
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
	e    *seqEntry
	in   map[string]*tensor.Tensor
	out  map[string]*tensor.Tensor
	err  error
	done chan struct{}
}

// step runs one sequence's step, batched with others when they come
// together; the result belongs to the caller.
func (b *seqBatcher) step(e *seqEntry, in map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	j := &seqJob{e: e, in: in, done: make(chan struct{})}
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
	began := time.Now()
	defer func() {
		b.s.metrics.compute.WithLabelValues(m.Name).Observe(time.Since(began).Seconds())
		rows := 0
		for _, j := range g {
			rows += batchRows(j.in)
			close(j.done)
		}
		b.s.metrics.batchSize.WithLabelValues(m.Name).Observe(float64(rows))
	}()
	if len(g) == 1 {
		j := g[0]
		res, err := j.e.st.Step(j.in)
		if err != nil {
			j.err = err
			return
		}
		j.out = make(map[string]*tensor.Tensor, len(res))
		for k, v := range res {
			j.out[k] = v.Clone()
		}
		return
	}
	key := g[0].e.outputs
	sc, err := b.takeScratch(key, g[0].e.st)
	if err == nil {
		members := make([]*runtime.Stream, len(g))
		ins := make([]map[string]*tensor.Tensor, len(g))
		for i, j := range g {
			members[i], ins[i] = j.e.st, j.in
		}
		var outs []map[string]*tensor.Tensor
		outs, err = sc.StepBatch(members, ins)
		b.putScratch(key, sc)
		if err == nil {
			b.batched.Add(1)
			for i, j := range g {
				j.out = outs[i]
			}
			return
		}
	}
	// a batch that fails (one bad request) is answered one by one, so
	// each request gets its own error
	for _, j := range g {
		res, err := j.e.st.Step(j.in)
		if err != nil {
			j.err = err
			continue
		}
		j.out = make(map[string]*tensor.Tensor, len(res))
		for k, v := range res {
			j.out[k] = v.Clone()
		}
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

// State files (Options.StateDir): DIR/MODEL/HEX(ID).state holds the output
// set (uint32 length, names joined by NUL) and the stream's State bytes.
// A file is replaced atomically (written beside, then renamed) after every
// step, removed when the sequence ends, is evicted or expires, and read
// back when a request names a sequence this process does not hold (after
// a restart). The rename makes each write atomic; it is not synced to disk
// before the answer goes out.

func (t *seqTable) statePath(id string) string {
	return filepath.Join(t.q.dir, t.model.Name, hex.EncodeToString([]byte(id))+".state")
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
		err = os.Rename(f.Name(), path)
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
	return &seqEntry{id: id, outputs: key, outNames: outputs, st: st}, nil
}
