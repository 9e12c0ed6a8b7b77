package serve

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// modelStats are one model version's statistics, reported in the shape of
// Triton's ModelStatistics (what tritonclient's get_inference_statistics
// and perf_analyzer read).
type modelStats struct {
	mu             sync.Mutex
	lastInference  int64 // ms since the epoch
	inferenceCount int64 // rows of successful requests
	executionCount int64 // session runs
	success, fail  durationStat
	queue, infer   durationStat
	batches        map[int]*durationStat // compute_infer by batch size
}

// durationStat is Triton's StatisticDuration.
type durationStat struct {
	Count int64 `json:"count"`
	Ns    int64 `json:"ns"`
}

func (d *durationStat) add(t time.Duration) {
	d.Count++
	d.Ns += t.Nanoseconds()
}

func newModelStats() *modelStats { return &modelStats{batches: map[int]*durationStat{}} }

// request records a finished request.
func (st *modelStats) request(ok bool, rows int, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ok {
		st.success.add(d)
		st.inferenceCount += int64(max(rows, 1))
		st.lastInference = time.Now().UnixMilli()
	} else {
		st.fail.add(d)
	}
}

// executed records one session run of rows rows.
func (st *modelStats) executed(rows int, d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.executionCount++
	st.infer.add(d)
	b := st.batches[rows]
	if b == nil {
		b = &durationStat{}
		st.batches[rows] = b
	}
	b.add(d)
}

func (st *modelStats) waited(d time.Duration) {
	st.mu.Lock()
	st.queue.add(d)
	st.mu.Unlock()
}

// ModelStatistics is one entry of Triton's statistics response.
type ModelStatistics struct {
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	LastInference  int64          `json:"last_inference"`
	InferenceCount int64          `json:"inference_count"`
	ExecutionCount int64          `json:"execution_count"`
	InferenceStats InferenceStats `json:"inference_stats"`
	BatchStats     []BatchStats   `json:"batch_stats"`
}

// InferenceStats is Triton's InferStatistics. mtlrun decodes inputs and
// encodes outputs outside the model run, so compute_input and
// compute_output stay zero and compute_infer is the session run.
type InferenceStats struct {
	Success       durationStat `json:"success"`
	Fail          durationStat `json:"fail"`
	Queue         durationStat `json:"queue"`
	ComputeInput  durationStat `json:"compute_input"`
	ComputeInfer  durationStat `json:"compute_infer"`
	ComputeOutput durationStat `json:"compute_output"`
	CacheHit      durationStat `json:"cache_hit"`
	CacheMiss     durationStat `json:"cache_miss"`
}

// BatchStats is Triton's InferBatchStatistics.
type BatchStats struct {
	BatchSize     int          `json:"batch_size"`
	ComputeInput  durationStat `json:"compute_input"`
	ComputeInfer  durationStat `json:"compute_infer"`
	ComputeOutput durationStat `json:"compute_output"`
}

func (m *Model) statistics() ModelStatistics {
	st := m.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := ModelStatistics{Name: m.Name, Version: m.Version, LastInference: st.lastInference,
		InferenceCount: st.inferenceCount, ExecutionCount: st.executionCount, BatchStats: []BatchStats{},
		InferenceStats: InferenceStats{Success: st.success, Fail: st.fail, Queue: st.queue, ComputeInfer: st.infer}}
	for size, d := range st.batches {
		out.BatchStats = append(out.BatchStats, BatchStats{BatchSize: size, ComputeInfer: *d})
	}
	sort.Slice(out.BatchStats, func(i, j int) bool { return out.BatchStats[i].BatchSize < out.BatchStats[j].BatchSize })
	return out
}

// ModelConfig is the subset of Triton's ModelConfig that describes a
// served model (what tritonclient's get_model_config and perf_analyzer
// read). With max_batch_size > 0 the dims leave out the batch dim, as in
// Triton.
type ModelConfig struct {
	Name            string              `json:"name"`
	Platform        string              `json:"platform"`
	Backend         string              `json:"backend"`
	VersionPolicy   map[string]any      `json:"version_policy"`
	MaxBatchSize    int                 `json:"max_batch_size"`
	Input           []ModelConfigTensor `json:"input"`
	Output          []ModelConfigTensor `json:"output"`
	DynamicBatching *DynamicBatching    `json:"dynamic_batching,omitempty"`
	InstanceGroup   []InstanceGroup     `json:"instance_group"`
	Parameters      map[string]any      `json:"parameters,omitempty"`
}

// ModelConfigTensor is Triton's ModelInput / ModelOutput.
type ModelConfigTensor struct {
	Name     string  `json:"name"`
	DataType string  `json:"data_type"`
	Dims     []int64 `json:"dims"`
}

// DynamicBatching is Triton's ModelDynamicBatching.
type DynamicBatching struct {
	PreferredBatchSize        []int `json:"preferred_batch_size"`
	MaxQueueDelayMicroseconds int64 `json:"max_queue_delay_microseconds"`
}

// InstanceGroup is Triton's ModelInstanceGroup.
type InstanceGroup struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

func (s *Server) modelConfig(m *Model) ModelConfig {
	cfg := ModelConfig{Name: m.Name, Platform: "onnx_onnxv1", Backend: "mtlrun",
		VersionPolicy: map[string]any{"all": map[string]any{}},
		InstanceGroup: []InstanceGroup{{Name: m.Name, Kind: "KIND_CPU", Count: 1}}}
	strip := 0
	if m.batcher != nil {
		cfg.MaxBatchSize = m.batcher.max
		cfg.DynamicBatching = &DynamicBatching{PreferredBatchSize: []int{}, MaxQueueDelayMicroseconds: m.batcher.timeout.Microseconds()}
		strip = 1
	}
	conv := func(ts []TensorMetadata) []ModelConfigTensor {
		out := make([]ModelConfigTensor, 0, len(ts))
		for _, t := range ts {
			dims := t.Shape
			if strip > 0 && len(dims) > 0 {
				dims = dims[1:]
			}
			out = append(out, ModelConfigTensor{Name: t.Name, DataType: "TYPE_" + strings.ReplaceAll(t.Datatype, "BYTES", "STRING"), Dims: append([]int64{}, dims...)})
		}
		return out
	}
	cfg.Input, cfg.Output = conv(m.meta.Inputs), conv(m.meta.Outputs)
	return cfg
}
