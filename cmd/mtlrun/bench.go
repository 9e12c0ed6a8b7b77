package main

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// benchResult is what `bench --json` prints for one runtime.
type benchResult struct {
	Runtime       string  `json:"runtime"`
	KernelSet     string  `json:"kernel_set,omitempty"` // mtlrun's (linalg.KernelSet); empty for onnxruntime
	Runs          int     `json:"runs"`
	MinMillis     float64 `json:"min_ms"` // the fastest run: what a quiet moment of a shared machine allows
	P50Millis     float64 `json:"p50_ms"`
	P99Millis     float64 `json:"p99_ms"`
	MeanMillis    float64 `json:"mean_ms"`
	RowsPerSecond float64 `json:"rows_per_second"`
	AllocsPerRun  float64 `json:"allocs_per_run"`
	BytesPerRun   float64 `json:"bytes_per_run"`
}

// benchRunner runs a model once on fixed inputs.
type benchRunner func() error

// measure times runs of f after a warm-up, interleaving several runners
// run by run so they see the same machine conditions. With two runners it
// also returns the ratio of each of the first's runs to the second's run
// right after it, sorted: conditions on a shared machine drift over
// seconds, so a ratio per pair moves less than the ratio of the p50s.
func measure(runners []benchRunner, runs, batch int) ([]benchResult, []float64, error) {
	warm := max(runs/10, 5)
	for i := 0; i < warm; i++ {
		for _, r := range runners {
			if err := r(); err != nil {
				return nil, nil, err
			}
		}
	}
	lat := make([][]time.Duration, len(runners))
	allocs := make([]uint64, len(runners))
	bytes := make([]uint64, len(runners))
	var mem goruntime.MemStats
	for i := 0; i < runs; i++ {
		for k, r := range runners {
			goruntime.ReadMemStats(&mem)
			m0, b0 := mem.Mallocs, mem.TotalAlloc
			start := time.Now()
			if err := r(); err != nil {
				return nil, nil, err
			}
			lat[k] = append(lat[k], time.Since(start))
			goruntime.ReadMemStats(&mem)
			allocs[k] += mem.Mallocs - m0
			bytes[k] += mem.TotalAlloc - b0
		}
	}
	var paired []float64
	if len(runners) == 2 {
		paired = pairedRatios(lat[0], lat[1])
	}
	out := make([]benchResult, len(runners))
	for k, l := range lat {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		mean := sum.Seconds() / float64(len(l))
		out[k] = benchResult{
			Runs: runs, MinMillis: ms(l[0]), P50Millis: ms(l[pctIndex(len(l), 50)]), P99Millis: ms(l[pctIndex(len(l), 99)]), MeanMillis: mean * 1e3,
			RowsPerSecond: float64(batch) / mean, AllocsPerRun: float64(allocs[k]) / float64(runs), BytesPerRun: float64(bytes[k]) / float64(runs),
		}
	}
	return out, paired, nil
}

// pairedRatios is a[i]/b[i] for every pair with b[i] > 0, sorted.
func pairedRatios(a, b []time.Duration) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, float64(a[i])/float64(b[i]))
		}
	}
	sort.Float64s(r)
	return r
}

// pctIndex is where the p-th percentile stands among n sorted values: the
// one rule behind every p50, p99 and ratio quantile bench and stream print.
func pctIndex(n, p int) int { return min(n-1, n*p/100) }

// quantile is the p-th percentile of sorted values, 0 when there are none.
func quantile(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[pctIndex(len(sorted), p)]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// measureConcurrent runs one runner per goroutine, each for runs runs after
// a warm-up, all at once: the throughput of an offline job or a server that
// gives every request (or every batch) its own executor. Latencies are
// pooled over all goroutines.
func measureConcurrent(runners []benchRunner, runs, batch int) (benchResult, error) {
	warm := max(runs/10, 5)
	lat := make([][]time.Duration, len(runners))
	errs := make([]error, len(runners))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for k, r := range runners {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			for i := 0; i < warm; i++ {
				if errs[k] = r(); errs[k] != nil {
					ready.Done()
					return
				}
			}
			ready.Done()
			<-start
			for i := 0; i < runs; i++ {
				t0 := time.Now()
				if errs[k] = r(); errs[k] != nil {
					return
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		}()
	}
	ready.Wait()
	var mem goruntime.MemStats
	goruntime.ReadMemStats(&mem)
	m0, b0 := mem.Mallocs, mem.TotalAlloc
	t0 := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(t0)
	goruntime.ReadMemStats(&mem)
	var all []time.Duration
	for k := range runners {
		if errs[k] != nil {
			return benchResult{}, errs[k]
		}
		all = append(all, lat[k]...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return benchResult{
		Runtime: fmt.Sprintf("mtlrun×%d", len(runners)), Runs: len(all),
		MinMillis: ms(all[0]), P50Millis: ms(all[pctIndex(len(all), 50)]), P99Millis: ms(all[pctIndex(len(all), 99)]),
		MeanMillis:    wall.Seconds() * 1e3 / float64(runs),
		RowsPerSecond: float64(batch*len(all)) / wall.Seconds(),
		// the latency slices grow too; a few appends over thousands of runs
		AllocsPerRun: float64(mem.Mallocs-m0) / float64(len(all)),
		BytesPerRun:  float64(mem.TotalAlloc-b0) / float64(len(all)),
	}, nil
}

// ortBenchRunner, when the parity bridge is built in, returns a runner for
// onnxruntime on the same model and inputs.
var ortBenchRunner func(modelPath string, inputs map[string]*tensor.Tensor, outputs []string, threads int) (benchRunner, func(), error)

func init() {
	var batch, timeSteps, threads, runs int
	var vsORT, asJSON, noFusion bool
	var concurrent int
	cmd := &cobra.Command{
		Use:   "bench MODEL [--batch N] [--time T] [--threads K] [--runs R] [--vs-ort] [--concurrent C] [--json]",
		Short: "Measure latency (p50, p99), throughput and allocations per run",
		Long: `Measure latency (p50, p99), throughput and allocations per run.

Every result names mtlrun's kernel set (avx512, avx2 or go). Set
MTLRUN_KERNELS=avx2 (or go) to force a lower set than the CPU's best, for
example to measure an AVX2-only server on an AVX-512 machine; a set the
CPU lacks is refused with an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// a refused MTLRUN_KERNELS would measure some other set than asked
			if err := linalg.KernelSetError(); err != nil {
				return err
			}
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			sess, err := runtime.NewSession(m, runtime.Options{Threads: threads, NoFusion: noFusion})
			if err != nil {
				return err
			}
			// an executor, as a latency-sensitive service would hold one per
			// worker: buffers reused, results not copied out
			ex, err := sess.NewExecutor()
			if err != nil {
				return err
			}
			inputs, err := parity.RandomInputs(m, batch, timeSteps, 1)
			if err != nil {
				return err
			}
			var outputs []string
			for _, o := range m.Graph.Outputs {
				outputs = append(outputs, o.Name)
			}
			runners := []benchRunner{func() error { _, err := ex.Run(inputs); return err }}
			names := []string{"mtlrun"}
			if vsORT {
				if ortBenchRunner == nil {
					return fmt.Errorf("--vs-ort needs the onnxruntime bridge, which this build lacks (build with CGO_ENABLED=1)")
				}
				r, closeORT, err := ortBenchRunner(args[0], inputs, outputs, threads)
				if err != nil {
					return err
				}
				defer closeORT()
				runners = append(runners, r)
				names = append(names, "onnxruntime")
			}
			if concurrent > 1 && vsORT {
				return fmt.Errorf("--concurrent and --vs-ort do not mix: onnxruntime would compete for the same cores")
			}
			res, paired, err := measure(runners, runs, batch)
			if err != nil {
				return err
			}
			p10, p50, p90 := quantile(paired, 10), quantile(paired, 50), quantile(paired, 90)
			if concurrent > 1 {
				conc := []benchRunner{runners[0]}
				for len(conc) < concurrent {
					ex, err := sess.NewExecutor()
					if err != nil {
						return err
					}
					conc = append(conc, func() error { _, err := ex.Run(inputs); return err })
				}
				r, err := measureConcurrent(conc, runs, batch)
				if err != nil {
					return err
				}
				res, names = append(res, r), append(names, r.Runtime)
			}
			for i := range res {
				res[i].Runtime = names[i]
				if i != 1 || !vsORT {
					res[i].KernelSet = linalg.KernelSet()
				}
			}
			w := cmd.OutOrStdout()
			var shapes []string
			for _, v := range m.Graph.FeedInputs() {
				shapes = append(shapes, fmt.Sprintf("%s%v", v.Name, inputs[v.Name].Shape))
			}
			if asJSON {
				doc := map[string]any{"model": args[0], "kernel_set": linalg.KernelSet(), "inputs": shapes, "threads": max(threads, 1), "batch": batch, "results": res}
				if vsORT {
					doc["ratio"] = map[string]float64{"min": res[0].MinMillis / res[1].MinMillis, "p50": res[0].P50Millis / res[1].P50Millis, "p99": res[0].P99Millis / res[1].P99Millis,
						"paired_p10": p10, "paired_p50": p50, "paired_p90": p90}
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			fmt.Fprintf(w, "model %s, inputs %v, threads %d, %d runs after warm-up, mtlrun kernel set %s\n", args[0], shapes, max(threads, 1), runs, linalg.KernelSet())
			fmt.Fprintf(w, "%-12s %-7s %10s %10s %10s %14s %12s %12s\n", "runtime", "kernels", "min ms", "p50 ms", "p99 ms", "rows/s", "allocs/run", "bytes/run")
			for _, r := range res {
				ks := r.KernelSet
				if ks == "" {
					ks = "-"
				}
				fmt.Fprintf(w, "%-12s %-7s %10.3f %10.3f %10.3f %14.0f %12.1f %12.0f\n", r.Runtime, ks, r.MinMillis, r.P50Millis, r.P99Millis, r.RowsPerSecond, r.AllocsPerRun, r.BytesPerRun)
			}
			if vsORT {
				fmt.Fprintf(w, "ratio mtlrun(%s)/ort p50=%.2f p99=%.2f min=%.2f; run by run (each mtlrun run over the onnxruntime run after it) p10=%.2f p50=%.2f p90=%.2f\n",
					linalg.KernelSet(), res[0].P50Millis/res[1].P50Millis, res[0].P99Millis/res[1].P99Millis, res[0].MinMillis/res[1].MinMillis,
					p10, p50, p90)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&batch, "batch", 1, "batch size (first free input dim)")
	f.IntVar(&timeSteps, "time", 50, "sequence length (other free dims; ignored by models without a time axis)")
	f.IntVar(&threads, "threads", 1, "intra-op threads, for mtlrun and onnxruntime alike")
	f.IntVar(&runs, "runs", 200, "measured runs")
	f.BoolVar(&vsORT, "vs-ort", false, "also run onnxruntime, interleaved, and print the ratio of the p50s and the spread of the run-by-run ratios")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&concurrent, "concurrent", 1, "also run this many executors at once, one goroutine each, and report their combined rows/s")
	f.BoolVar(&noFusion, "no-fusion", false, "run the graph as written, without fusing Dense+bias+activation")
	rootCmd.AddCommand(cmd)
}
