// Package serve is mtlrun's inference server: the Open Inference Protocol
// (KServe v2) over REST, with the binary tensor data extension, and over
// gRPC, for one or more multi-task models, with dynamic batching, bounded
// queues, Prometheus metrics and structured logs.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/health"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/version"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Options configure a Server. Zero values take the defaults in brackets.
type Options struct {
	Threads      int           // intra-op threads per session [1]
	MaxBatch     int           // rows per coalesced batch; ≤ 1 disables dynamic batching
	BatchTimeout time.Duration // how long a batch waits for more requests [2ms]
	MaxBody      int64         // request body limit in bytes, also after decompression [64 MiB]
	Timeout      time.Duration // per-request deadline, computation included [30s]
	MaxQueue     int           // requests waiting or running per model before 503 [256]
	// MemoryBudget bounds the bytes all in-flight requests may hold at
	// once: bodies being read and decompressed, then each admitted
	// request's estimated working set [half the machine's or cgroup's
	// memory; 4 GiB when unknown].
	MemoryBudget int64
	// MaxRequestMemory refuses (413) a request whose estimated peak
	// working set exceeds it [MemoryBudget/4].
	MaxRequestMemory int64
	// HTTP connection timeouts: the request headers, the whole request
	// (body included), and an idle keep-alive connection [10s, 60s, 120s].
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// DrainTimeout bounds the graceful shutdown: in-flight requests still
	// running then are cancelled and slow connections closed [30s].
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Registry     *prometheus.Registry // metrics registry [a new one]
	// stateful sequences (sequence.go): live sequences per model version
	// before the least recently used is evicted [1024], and how long one
	// may stay idle [5m]
	MaxSequences        int
	SequenceIdleTimeout time.Duration
	// StateDir, when set, keeps every live sequence's state in a file
	// there (DIR/MODEL/VERSION/), so that sequences survive a restart
	// (sequence.go)
	StateDir string
}

func (o *Options) defaults() {
	if o.Threads < 1 {
		o.Threads = 1
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = 2 * time.Millisecond
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 256
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = machineMemory() / 2
		if o.MemoryBudget <= 0 {
			o.MemoryBudget = 4 << 30
		}
	}
	if o.MaxRequestMemory <= 0 {
		o.MaxRequestMemory = o.MemoryBudget / 4
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
}

// Server serves a fixed set of models.
type Server struct {
	opts     Options
	mu       sync.RWMutex
	models   map[string]*modelSet // guarded by mu
	retiring sync.WaitGroup       // replaced or unloaded sets still in use
	repo     string               // the model repository (LoadRepository), if any
	repoMu   sync.Mutex           // serializes repository loads and unloads
	metrics  *metrics
	ready    atomic.Bool
	// accepted counts inference requests whose handler started; answered
	// those that received a complete response (graceful-shutdown checks).
	accepted, answered atomic.Int64
	mem                budget
	seq                sequences
	// base is the parent of every request's context; abort cancels it
	// when a shutdown's drain time is over.
	base     context.Context
	abort    context.CancelFunc
	inflight sync.WaitGroup // inference handlers running
	healthMu sync.Mutex
	health   []*health.Server // gRPC health services, following readiness
}

// Counts returns how many inference requests were accepted and answered.
func (s *Server) Counts() (accepted, answered int64) { return s.accepted.Load(), s.answered.Load() }

// Model is one served model.
type Model struct {
	Name    string
	Version string
	Path    string
	model   *graph.Model
	session *runtime.Session
	queue   chan struct{} // admission tokens (bounded queue)
	batcher *batcher
	meta    ModelMetadata
	mem     *memoryModel
	stats   *modelStats
	users   sync.WaitGroup // requests using this version (see Server.use)
	// seqClosed: the version was reloaded or unloaded, its sequences
	// ended; no new ones start on it (guarded by Server.seq.mu)
	seqClosed bool
}

// Errors a caller may branch on.
var (
	ErrUnknownModel = errors.New("unknown model")
	ErrOverloaded   = errors.New("server overloaded: too many requests queued for this model, retry later")
	ErrShuttingDown = errors.New("server shutting down")
	ErrMemoryBusy   = errors.New("server overloaded: its memory budget is held by other requests, retry later")
)

// TooLargeError refuses a request whose estimated working set is over the
// per-request limit (HTTP 413).
type TooLargeError struct {
	Estimate, Limit uint64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("request needs an estimated %s (inputs, intermediate values, outputs and kernel scratch), over the %s per-request limit (--max-request-memory)",
		humanBytes(e.Estimate), humanBytes(e.Limit))
}

// New makes a server with no models.
func New(opts Options) *Server {
	opts.defaults()
	s := &Server{opts: opts, models: map[string]*modelSet{}, metrics: newMetrics(opts.Registry)}
	s.mem.limit = sat(opts.MemoryBudget)
	s.base, s.abort = context.WithCancel(context.Background())
	s.metrics.memoryBudget.Set(float64(opts.MemoryBudget))
	s.seq.init(s)
	return s
}

// AddModel loads a model file and serves it under name (the file's base
// name without extension when name is empty), as version 1.
func (s *Server) AddModel(name, path string) error {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if name == "model" {
			name = filepath.Base(filepath.Dir(path))
		}
	}
	if _, err := s.Model(name); err == nil {
		return fmt.Errorf("serve: two models named %q (use NAME=PATH)", name)
	}
	m, err := importer.Load(path)
	if err != nil {
		return err
	}
	return s.AddLoaded(name, path, m)
}

// AddLoaded serves an already-loaded model as version 1 of name.
func (s *Server) AddLoaded(name, path string, m *graph.Model) error {
	sm, err := s.newModel(name, "1", path, m)
	if err != nil {
		return err
	}
	old := s.install(name, newModelSet(sm))
	s.seq.endSet(old, "replaced")
	s.retire(old)
	return nil
}

// newModel compiles one version of a model for serving.
func (s *Server) newModel(name, version, path string, m *graph.Model) (*Model, error) {
	sess, err := runtime.NewSession(m, runtime.Options{Threads: s.opts.Threads})
	if err != nil {
		return nil, fmt.Errorf("serve: model %q: %w", name, err)
	}
	mem, err := newMemoryModel(m)
	if err != nil {
		return nil, fmt.Errorf("serve: model %q: %w", name, err)
	}
	sm := &Model{Name: name, Version: version, Path: path, model: m, session: sess,
		queue: make(chan struct{}, s.opts.MaxQueue), mem: mem, stats: newModelStats()}
	sm.meta = metadataOf(name, m)
	if s.opts.MaxBatch > 1 && batchable(m.Graph) {
		sm.batcher = newBatcher(sm, s.opts.MaxBatch, s.opts.BatchTimeout, s.metrics)
	}
	// export the model's series from the start, not only after traffic
	s.metrics.queueDepth.WithLabelValues(name).Set(0)
	s.metrics.nvSuccess.WithLabelValues(name, "1").Add(0)
	s.opts.Logger.Info("model loaded", "model", name, "version", version, "path", path, "inputs", len(sm.meta.Inputs),
		"outputs", len(sm.meta.Outputs), "dynamic_batching", sm.batcher != nil)
	return sm, nil
}

// modelSet is the served versions of one model name.
type modelSet struct {
	versions map[string]*Model
	latest   *Model // the highest version, what unversioned requests get
}

func newModelSet(ms ...*Model) *modelSet {
	set := &modelSet{versions: map[string]*Model{}}
	var names []string
	for _, m := range ms {
		set.versions[m.Version] = m
		names = append(names, m.Version)
	}
	sort.Slice(names, func(i, j int) bool { return versionLess(names[i], names[j]) })
	for _, m := range ms {
		m.meta.Versions = names
	}
	if len(names) > 0 {
		set.latest = set.versions[names[len(names)-1]]
	}
	return set
}

// versionLess orders numeric versions numerically, others after, by name.
func versionLess(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return x < y
	case errA == nil:
		return true
	case errB == nil:
		return false
	}
	return a < b
}

// install serves set under name (nil: stop serving name) and returns what
// was served before, which the caller retires.
func (s *Server) install(name string, set *modelSet) *modelSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.models[name]
	if set == nil {
		delete(s.models, name)
	} else {
		s.models[name] = set
	}
	return old
}

// retire stops a replaced or unloaded set once the requests using it are
// done: a reload or unload drops no request.
func (s *Server) retire(set *modelSet) {
	if set == nil {
		return
	}
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		for _, m := range set.versions {
			m.users.Wait()
			if m.batcher != nil {
				m.batcher.close()
			}
		}
	}()
}

// use finds a model version ("" for the latest) and counts the caller as
// its user until done is called, so that it is not retired under it.
func (s *Server) use(name, version string) (m *Model, done func(), err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err = s.lookup(name, version)
	if err != nil {
		return nil, nil, err
	}
	m.users.Add(1)
	return m, m.users.Done, nil
}

// lookup finds a model version; the caller holds s.mu.
func (s *Server) lookup(name, version string) (*Model, error) {
	set, ok := s.models[name]
	if !ok {
		names := make([]string, 0, len(s.models))
		for k := range s.models {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w %q (served: %s)", ErrUnknownModel, name, strings.Join(names, ", "))
	}
	if version == "" {
		return set.latest, nil
	}
	m, ok := set.versions[version]
	if !ok {
		return nil, fmt.Errorf("%w %q version %q (versions: %s)", ErrUnknownModel, name, version, strings.Join(set.latest.meta.Versions, ", "))
	}
	return m, nil
}

// SetReady marks the server ready (after all models loaded) or not (while
// shutting down), on REST and on the gRPC health service.
func (s *Server) SetReady(v bool) {
	s.ready.Store(v)
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	for _, h := range s.health {
		s.setHealth(h, v)
	}
}

// Ready reports readiness.
func (s *Server) Ready() bool { return s.ready.Load() }

// ModelNames lists served models, sorted.
func (s *Server) ModelNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.models))
	for k := range s.models {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Model returns the latest version of a served model.
func (s *Server) Model(name string) (*Model, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookup(name, "")
}

// Close stops the batchers after in-flight batches finish.
func (s *Server) Close() {
	s.mu.Lock()
	sets := s.models
	s.models = map[string]*modelSet{}
	s.mu.Unlock()
	for _, set := range sets {
		s.retire(set)
	}
	s.retiring.Wait()
}

// label is the metrics label of a model name from a request: the name of
// a served model, or "unknown" (request paths must not mint label values).
func (s *Server) label(name string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.models[name]; ok {
		return name
	}
	return "unknown"
}

// Infer validates and runs one request through admission control and, when
// enabled, dynamic batching. outputs selects tasks (nil: all).
//
// Admission: the request's peak working set is estimated from its shapes
// (413 over Options.MaxRequestMemory), it takes one of the model's queue
// slots (503 when none is free) and reserves its estimate from the server's
// memory budget (503 when the budget is held by others). Slot and
// reservation are released when the computation stops, which for a
// cancelled or timed-out request is within a bounded time after ctx is done
// (see runtime.Session.RunContext), not when its caller gives up.
func (s *Server) Infer(ctx context.Context, m *Model, inputs map[string]*tensor.Tensor, outputs []string) (map[string]*tensor.Tensor, error) {
	outputs, release, err := s.admit(ctx, m, inputs, outputs)
	if err != nil {
		return nil, err
	}
	if m.batcher != nil {
		return m.batcher.submit(ctx, inputs, outputs, release)
	}
	defer release()
	start := time.Now()
	out, err := m.session.RunContext(ctx, inputs, outputs...)
	s.metrics.executed(m, time.Since(start), batchRows(inputs), err)
	if err != nil {
		return nil, classifyRunError(err)
	}
	return out, nil
}

// admit checks a request against the model (its outputs, defaulting to all,
// and its inputs) and admits it: the memory estimate (TooLargeError), one of
// the model's queue slots (ErrOverloaded) and a reservation from the
// server's budget (ErrMemoryBusy). It returns the outputs to compute and the
// release that gives slot and reservation back, to be called once the
// computation has stopped.
func (s *Server) admit(ctx context.Context, m *Model, inputs map[string]*tensor.Tensor, outputs []string) ([]string, func(), error) {
	for _, o := range outputs {
		if _, ok := m.model.Graph.Output(o); !ok {
			return nil, nil, badf("model %q has no output %q (outputs: %s)", m.Name, o, strings.Join(m.meta.outputNames(), ", "))
		}
	}
	if len(outputs) == 0 {
		outputs = m.meta.outputNames()
	}
	if err := m.checkInputs(inputs); err != nil {
		return nil, nil, err
	}
	est := m.mem.estimate(inputs)
	if est > sat(s.opts.MaxRequestMemory) {
		return nil, nil, &TooLargeError{Estimate: est, Limit: sat(s.opts.MaxRequestMemory)}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	select {
	case m.queue <- struct{}{}:
	default:
		return nil, nil, ErrOverloaded
	}
	res := &reservation{b: &s.mem}
	if !res.grow(est) {
		<-m.queue
		return nil, nil, ErrMemoryBusy
	}
	s.metrics.queueDepth.WithLabelValues(m.Name).Inc()
	s.metrics.memoryInUse.Set(float64(s.mem.inUse()))
	release := func() {
		res.release()
		<-m.queue
		s.metrics.queueDepth.WithLabelValues(m.Name).Dec()
		s.metrics.memoryInUse.Set(float64(s.mem.inUse()))
	}
	return outputs, release, nil
}

// classifyRunError turns input errors into bad requests and keeps a
// cancellation a cancellation.
func classifyRunError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("request timed out (--timeout or its timeout parameter); its computation was stopped: %w", context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("request cancelled (client gone or server shutting down); its computation was stopped: %w", context.Canceled)
	}
	var ie *ops.InputError // a caller's feed, or a kernel input (then inside a NodeError)
	if errors.As(err, &ie) {
		return &BadRequest{ie.Error()}
	}
	var ne *runtime.NodeError
	if errors.As(err, &ne) {
		// a kernel rejecting the shapes it got is the caller's doing
		return &BadRequest{err.Error()}
	}
	return err
}

// checkInputs gives early, protocol-level errors before queueing.
func (m *Model) checkInputs(inputs map[string]*tensor.Tensor) error {
	feeds := m.model.Graph.FeedInputs()
	for name := range inputs {
		if _, ok := m.model.Graph.Input(name); !ok {
			return badf("model %q has no input %q (inputs: %s)", m.Name, name, strings.Join(m.meta.inputNames(), ", "))
		}
	}
	for _, v := range feeds {
		if _, ok := inputs[v.Name]; !ok {
			return badf("missing input %q (%s%s)", v.Name, Datatype(v.DType), v.ShapeString())
		}
	}
	return nil
}

func batchRows(inputs map[string]*tensor.Tensor) int {
	for _, t := range inputs {
		if t.Rank() > 0 {
			return t.Shape[0]
		}
	}
	return 1
}

// TensorMetadata describes one input or output.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the /v2/models/{name} document, with mtlrun's
// multi-task extras (task list and trunk/head split).
type ModelMetadata struct {
	Name     string              `json:"name"`
	Versions []string            `json:"versions"`
	Platform string              `json:"platform"`
	Inputs   []TensorMetadata    `json:"inputs"`
	Outputs  []TensorMetadata    `json:"outputs"`
	Tasks    []string            `json:"tasks"`
	Trunk    []string            `json:"trunk_parameters"`
	Heads    map[string][]string `json:"head_parameters"`
	Producer string              `json:"producer,omitempty"`
}

func (md ModelMetadata) outputNames() []string {
	out := make([]string, len(md.Outputs))
	for i, o := range md.Outputs {
		out[i] = o.Name
	}
	return out
}

func (md ModelMetadata) inputNames() []string {
	out := make([]string, len(md.Inputs))
	for i, o := range md.Inputs {
		out[i] = o.Name
	}
	return out
}

func metadataOf(name string, m *graph.Model) ModelMetadata {
	desc := func(v graph.ValueInfo) TensorMetadata {
		t := TensorMetadata{Name: v.Name, Datatype: Datatype(v.DType), Shape: []int64{}}
		for _, d := range v.Shape {
			if d.Known() {
				t.Shape = append(t.Shape, d.Value)
			} else {
				t.Shape = append(t.Shape, -1)
			}
		}
		return t
	}
	md := ModelMetadata{Name: name, Versions: []string{"1"}, Platform: "onnx_onnxv1", Heads: map[string][]string{},
		Producer: strings.TrimSpace(m.Producer + " " + m.ProducerVersion)}
	for _, v := range m.Graph.FeedInputs() {
		md.Inputs = append(md.Inputs, desc(v))
	}
	for _, v := range m.Graph.Outputs {
		md.Outputs = append(md.Outputs, desc(v))
		md.Tasks = append(md.Tasks, v.Name)
	}
	split := graph.TaskSplit(m.Graph)
	md.Trunk = append([]string{}, split.Trunk...)
	for k, v := range split.Heads {
		md.Heads[k] = append([]string{}, v...)
	}
	return md
}

// serverMetadata is the /v2 document.
type serverMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (s *Server) serverMetadata() serverMetadata {
	return serverMetadata{Name: "mtlrun", Version: version.Version, Extensions: []string{"binary_tensor_data", "sequence", "sequence(string_id)"}}
}
