package serve

import "github.com/prometheus/client_golang/prometheus"

// metrics follow Prometheus naming: an mtlrun_ prefix, _total counters,
// seconds as the unit of durations.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	queue      *prometheus.HistogramVec
	compute    *prometheus.HistogramVec
	batchSize  *prometheus.HistogramVec
	queueDepth *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	buckets := prometheus.ExponentialBuckets(50e-6, 2, 18) // 50µs … ~6.5s
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtlrun_requests_total",
			Help: "Inference requests by model, protocol and outcome (success, or the failure reason).",
		}, []string{"model", "protocol", "outcome"}),
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
			Name: "mtlrun_queue_depth", Help: "Requests admitted and not yet answered.",
		}, []string{"model"}),
	}
	reg.MustRegister(m.requests, m.duration, m.queue, m.compute, m.batchSize, m.queueDepth)
	return m
}
