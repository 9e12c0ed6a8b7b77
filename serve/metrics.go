package serve

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics follow Prometheus naming: an mtlrun_ prefix, _total counters,
// seconds as the unit of durations. The nv_inference_* series repeat the
// same facts under Triton's names and units (cumulative microseconds), for
// dashboards and tools written against Triton. The model label is always
// a served model's name, or "unknown".
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	queue        *prometheus.HistogramVec
	compute      *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
	queueDepth   *prometheus.GaugeVec
	memoryInUse  prometheus.Gauge
	memoryBudget prometheus.Gauge

	nvSuccess, nvCount, nvExecCount, nvQueueUS, nvComputeUS *prometheus.CounterVec
	nvFailure                                               *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	buckets := prometheus.ExponentialBuckets(50e-6, 2, 18) // 50µs … ~6.5s
	mv := []string{"model", "version"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		requests: counter("mtlrun_requests_total",
			"Inference requests by model, protocol and outcome (success, or the failure reason).", []string{"model", "protocol", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mtlrun_request_duration_seconds", Help: "Whole request time, decoding to encoding.", Buckets: buckets,
		}, []string{"model", "protocol"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mtlrun_queue_duration_seconds", Help: "Time a request waited for its batch to run.", Buckets: buckets,
		}, []string{"model"}),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mtlrun_compute_duration_seconds", Help: "Session run time per (possibly coalesced) batch.", Buckets: buckets,
		}, []string{"model"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mtlrun_batch_rows", Help: "Rows per session run (after dynamic batching).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}, []string{"model"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mtlrun_queue_depth", Help: "Requests admitted and not yet finished computing.",
		}, []string{"model"}),
		memoryInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mtlrun_memory_reserved_bytes", Help: "Bytes of the memory budget reserved by in-flight requests (bodies and estimated working sets).",
		}),
		memoryBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mtlrun_memory_budget_bytes", Help: "The server-wide memory budget of in-flight requests.",
		}),
		nvSuccess:   counter("nv_inference_request_success", "Successful inference requests (Triton's name).", mv),
		nvFailure:   counter("nv_inference_request_failure", "Failed inference requests by reason: REJECTED, CANCELED, BACKEND or OTHER (Triton's name).", []string{"model", "version", "reason"}),
		nvCount:     counter("nv_inference_count", "Inferences (batch rows) of successful requests (Triton's name).", mv),
		nvExecCount: counter("nv_inference_exec_count", "Model executions, a coalesced batch counting once (Triton's name).", mv),
		nvQueueUS:   counter("nv_inference_queue_duration_us", "Cumulative microseconds requests waited in the batch queue (Triton's name).", mv),
		nvComputeUS: counter("nv_inference_compute_infer_duration_us", "Cumulative microseconds of model execution (Triton's name).", mv),
	}
	reg.MustRegister(m.requests, m.duration, m.queue, m.compute, m.batchSize, m.queueDepth, m.memoryInUse, m.memoryBudget,
		m.nvSuccess, m.nvFailure, m.nvCount, m.nvExecCount, m.nvQueueUS, m.nvComputeUS)
	return m
}

// tritonReason maps an outcome to the reason label of Triton's failure
// counter.
func tritonReason(outcome string) string {
	switch outcome {
	case "overloaded":
		return "REJECTED"
	case "timeout", "canceled":
		return "CANCELED"
	case "internal":
		return "BACKEND"
	}
	return "OTHER"
}

// result records one finished request. model is a label (see
// Server.label); rows is the request's batch rows when it succeeded.
func (m *metrics) result(model, protocol, outcome string, rows int, d time.Duration) {
	m.requests.WithLabelValues(model, protocol, outcome).Inc()
	m.duration.WithLabelValues(model, protocol).Observe(d.Seconds())
	if outcome == "success" {
		m.nvSuccess.WithLabelValues(model, "1").Inc()
		m.nvCount.WithLabelValues(model, "1").Add(float64(max(rows, 1)))
	} else {
		m.nvFailure.WithLabelValues(model, "1", tritonReason(outcome)).Inc()
	}
}

// executed records one session run of rows rows. Only successful runs
// count, as Triton defines execution_count and compute_infer (a run that
// failed, e.g. on an input shape the model refuses, is the request's failure).
func (m *metrics) executed(sm *Model, compute time.Duration, rows int, err error) {
	if err != nil {
		return
	}
	sm.stats.executed(max(rows, 1), compute)
	model := sm.Name
	m.compute.WithLabelValues(model).Observe(compute.Seconds())
	m.batchSize.WithLabelValues(model).Observe(float64(max(rows, 1)))
	m.nvExecCount.WithLabelValues(model, "1").Inc()
	m.nvComputeUS.WithLabelValues(model, "1").Add(float64(compute.Microseconds()))
}

// waited records one request's wait for its batch.
func (m *metrics) waited(sm *Model, d time.Duration) {
	sm.stats.waited(d)
	model := sm.Name
	m.queue.WithLabelValues(model).Observe(d.Seconds())
	m.nvQueueUS.WithLabelValues(model, "1").Add(float64(d.Microseconds()))
}
