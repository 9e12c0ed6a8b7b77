package main

import (
	"fmt"
	"math"
	goruntime "runtime"
	"sort"
	"time"

	gonnx "github.com/advancedclimatesystems/gonnx"
	"github.com/mtlrun/mtlrun/importer"
	_ "github.com/mtlrun/mtlrun/ops/all" // register mtlrun's op set
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// config is what one harness run measures.
type config struct {
	root   string // repository root the model paths are relative to
	runs   int    // measured runs per runtime and case
	warmup int    // unmeasured runs per runtime before measuring
	time   int    // sequence length for models with a time axis
	seed   uint64 // input seed
	gc     bool   // runtime.GC() before every measured run
	alone  bool   // also time each runtime alone, in its own block of runs
}

// modelSpec names a model of the comparison.
type modelSpec struct {
	Name string
	Path string // relative to config.root
}

// defaultModels are the three models docs/PERFORMANCE.md compares.
var defaultModels = []modelSpec{
	{"seed_lstm", "models/seed_lstm/model.onnx"},
	{"gru3", "testdata/pytorch/gru3/model.onnx"},
	{"mlp4", "models/mlp4/model.onnx"},
}

// Result is one (model, batch) row.
type Result struct {
	Model  string   `json:"model"`
	Path   string   `json:"path"`
	Batch  int      `json:"batch"`
	Inputs []string `json:"inputs"`
	Runs   int      `json:"runs"`

	MtlrunP50us float64 `json:"mtlrun_p50_us"`
	MtlrunP99us float64 `json:"mtlrun_p99_us"`
	// MtlrunError is set when mtlrun itself could not run the case.
	MtlrunError string `json:"mtlrun_error,omitempty"`

	GonnxP50us float64 `json:"gonnx_p50_us,omitempty"`
	GonnxP99us float64 `json:"gonnx_p99_us,omitempty"`
	// GonnxError is set when gonnx could not run the case; it lists the
	// reason for every workaround tried.
	GonnxError string `json:"gonnx_error,omitempty"`
	// GonnxLoadedAs is the workaround (gonnxAttempts) that made gonnx run.
	GonnxLoadedAs string `json:"gonnx_loaded_as,omitempty"`
	// GonnxFailedAttempts lists the attempts before the one that worked.
	GonnxFailedAttempts []string `json:"gonnx_failed_attempts,omitempty"`

	RatioP50 float64 `json:"ratio_p50,omitempty"` // mtlrun / gonnx
	RatioP99 float64 `json:"ratio_p99,omitempty"`

	// Alone: each runtime timed in a block of its own runs after the
	// interleaved ones (config.alone), so without the other's garbage
	// collections and cache traffic in between.
	MtlrunAloneP50us float64 `json:"mtlrun_alone_p50_us,omitempty"`
	MtlrunAloneP99us float64 `json:"mtlrun_alone_p99_us,omitempty"`
	GonnxAloneP50us  float64 `json:"gonnx_alone_p50_us,omitempty"`
	GonnxAloneP99us  float64 `json:"gonnx_alone_p99_us,omitempty"`

	// MaxAbsDiff is the largest |gonnx - mtlrun| over all outputs, on the
	// first run and on the last measured run; PerOutput splits it up.
	MaxAbsDiff  float64            `json:"max_abs_diff"`
	PerOutput   map[string]float64 `json:"max_abs_diff_per_output,omitempty"`
	CompareNote string             `json:"compare_note,omitempty"`
}

// runCase measures one model at one batch size. Errors of either runtime
// are reported in the Result; the returned error is for harness failures.
func runCase(cfg config, spec modelSpec, batch int) (Result, error) {
	res := Result{Model: spec.Name, Path: spec.Path, Batch: batch}
	path := spec.Path
	if cfg.root != "" {
		path = cfg.root + "/" + spec.Path
	}
	m, err := importer.Load(path)
	if err != nil {
		return res, fmt.Errorf("%s: %w", spec.Name, err)
	}
	inputs, err := parity.RandomInputs(m, batch, cfg.time, cfg.seed)
	if err != nil {
		return res, fmt.Errorf("%s: %w", spec.Name, err)
	}
	for _, v := range m.Graph.FeedInputs() {
		res.Inputs = append(res.Inputs, fmt.Sprintf("%s%v", v.Name, inputs[v.Name].Shape))
	}
	var outNames []string
	for _, o := range m.Graph.Outputs {
		outNames = append(outNames, o.Name)
	}

	sess, err := runtime.NewSession(m, runtime.Options{Threads: 1})
	if err != nil {
		res.MtlrunError = err.Error()
		return res, nil
	}
	var mtlOut map[string]*tensor.Tensor
	runMtl := func() error {
		out, err := sess.Run(inputs)
		mtlOut = out
		return err
	}
	if err := runMtl(); err != nil {
		res.MtlrunError = err.Error()
		return res, nil
	}
	firstMtl := copyOutputs(mtlOut)

	g, gerr := loadGonnx(path, inputs)
	var runG func() error
	var firstG map[string]any
	var gOut gonnx.Tensors
	if gerr != nil {
		res.GonnxError = gerr.Error()
	} else {
		res.GonnxLoadedAs, res.GonnxFailedAttempts = g.used, g.tried
		runG = func() error {
			out, err := runGonnx(g.model, g.inputs)
			gOut = out
			return err
		}
		if err := runG(); err != nil {
			res.GonnxError = err.Error()
			runG = nil
		} else {
			firstG = gonnxOutputs(gOut)
		}
	}

	runners := []func() error{runMtl}
	if runG != nil {
		runners = append(runners, runG)
	}
	lat, err := measure(cfg, runners)
	if err != nil {
		// A runtime that ran once but fails later: report it as that
		// runtime's error rather than aborting the table.
		if runG != nil {
			res.GonnxError = "during measurement: " + err.Error()
		} else {
			res.MtlrunError = "during measurement: " + err.Error()
		}
		return res, nil
	}
	res.Runs = cfg.runs
	res.MtlrunP50us, res.MtlrunP99us = percentiles(lat[0])
	if runG != nil {
		res.GonnxP50us, res.GonnxP99us = percentiles(lat[1])
		res.RatioP50 = res.MtlrunP50us / res.GonnxP50us
		res.RatioP99 = res.MtlrunP99us / res.GonnxP99us
	}
	// Outputs of the last interleaved run, compared below (mtlrun's are
	// copied because later runs may reuse its buffers).
	lastMtl := copyOutputs(mtlOut)
	lastG := gOut
	if cfg.alone {
		for k, r := range runners {
			l, err := measure(cfg, []func() error{r})
			if err != nil {
				return res, fmt.Errorf("%s batch %d: alone: %w", spec.Name, batch, err)
			}
			p50, p99 := percentiles(l[0])
			if k == 0 {
				res.MtlrunAloneP50us, res.MtlrunAloneP99us = p50, p99
			} else {
				res.GonnxAloneP50us, res.GonnxAloneP99us = p50, p99
			}
		}
	}
	if runG == nil {
		return res, nil
	}

	// Compare on the first run and on the last measured run, so that a
	// runtime whose state drifts between runs shows up too.
	res.PerOutput = map[string]float64{}
	var notes []string
	for _, pair := range []struct {
		mtl map[string][]float64
		g   map[string]any
	}{{firstMtl, firstG}, {lastMtl, gonnxOutputs(lastG)}} {
		for _, name := range outNames {
			d, note := maxAbsDiff(pair.mtl[name], pair.g[name])
			if note != "" {
				notes = appendOnce(notes, name+": "+note)
				d = math.Inf(1)
			}
			res.PerOutput[name] = math.Max(res.PerOutput[name], d)
			res.MaxAbsDiff = math.Max(res.MaxAbsDiff, d)
		}
	}
	if len(notes) > 0 {
		res.CompareNote = fmt.Sprint(notes)
	}
	return res, nil
}

// measure runs every runner cfg.warmup times, then cfg.runs times each,
// interleaved run by run (alternating which goes first) so that all see the
// same machine conditions, and returns the per-run latencies.
func measure(cfg config, runners []func() error) ([][]time.Duration, error) {
	for i := 0; i < cfg.warmup; i++ {
		for _, r := range runners {
			if err := r(); err != nil {
				return nil, err
			}
		}
	}
	lat := make([][]time.Duration, len(runners))
	for i := range lat {
		lat[i] = make([]time.Duration, 0, cfg.runs)
	}
	for i := 0; i < cfg.runs; i++ {
		for j := range runners {
			k := j
			if i%2 == 1 {
				k = len(runners) - 1 - j
			}
			if cfg.gc {
				goruntime.GC()
			}
			start := time.Now()
			err := runners[k]()
			d := time.Since(start)
			if err != nil {
				return nil, err
			}
			lat[k] = append(lat[k], d)
		}
	}
	return lat, nil
}

// percentiles returns p50 and p99 in microseconds (nearest rank, as in
// `mtlrun bench`).
func percentiles(l []time.Duration) (p50, p99 float64) {
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return us(s[len(s)/2]), us(s[min(len(s)-1, len(s)*99/100)])
}

// copyOutputs keeps mtlrun's float outputs as float64, so that later runs
// (which may reuse buffers) cannot change them.
func copyOutputs(out map[string]*tensor.Tensor) map[string][]float64 {
	c := map[string][]float64{}
	for name, t := range out {
		switch d := t.Data.(type) {
		case []float32:
			v := make([]float64, len(d))
			for i, x := range d {
				v[i] = float64(x)
			}
			c[name] = v
		case []float64:
			c[name] = append([]float64(nil), d...)
		}
	}
	return c
}

// maxAbsDiff compares mtlrun's elements with a gonnx output (a
// gorgonia tensor, converted here). note says why they cannot be compared.
func maxAbsDiff(mtl []float64, g any) (float64, string) {
	if mtl == nil {
		return 0, "mtlrun output is not float"
	}
	gv, ok := g.([]float64)
	if !ok {
		if s, ok := g.(string); ok {
			return 0, "gonnx " + s
		}
		return 0, "gonnx output missing"
	}
	if len(gv) != len(mtl) {
		return 0, fmt.Sprintf("gonnx has %d elements, mtlrun %d", len(gv), len(mtl))
	}
	worst := 0.0
	for i := range mtl {
		d := math.Abs(gv[i] - mtl[i])
		if math.IsNaN(d) {
			if math.IsNaN(gv[i]) && math.IsNaN(mtl[i]) {
				continue
			}
			return math.Inf(1), ""
		}
		worst = math.Max(worst, d)
	}
	return worst, ""
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
