package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

func init() {
	var inputSpecs, outputs []string
	var outFile string
	var csvMode, benchMode, asJSON bool
	var timeAxis, batch, runs, threads int
	var windows []int
	cmd := &cobra.Command{
		Use:   "stream MODEL [--input NAME=FILE.npy]... [--outputs a,b] [--out FILE.npz] | --csv | --bench",
		Short: "Run a recurrent model one time step at a time, carrying its state",
		Long: `Run a recurrent model one time step at a time, carrying the LSTM/GRU/RNN
states between steps instead of re-running the whole window (see
docs/STREAMING.md). The model must be streamable: a forward recurrence whose
heads read the last step or the final state, or emit one value per step.

With --input, each input is a [batch, T, ...] array (the model's time axis)
fed one step at a time; every output is written with a time axis, [batch, T,
...], whose step t is the output for the prefix 0..t (per-step outputs keep
their own time axis).

With --csv, rows of comma-separated numbers are read from standard input,
one time step of batch 1 each, and one line of predictions is printed per
row (a header line names the columns): for piping a live feed.

With --bench, the cost of one new step is compared with full re-runs over
windows of --windows steps.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			sess, err := runtime.NewSession(m, runtime.Options{Threads: threads})
			if err != nil {
				return err
			}
			var st *runtime.Stream
			if timeAxis >= 0 {
				st, err = sess.NewStreamAt(timeAxis, outputs...)
			} else {
				st, err = sess.NewStream(outputs...)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case benchMode:
				return streamBench(w, args[0], m, st, batch, windows, runs, threads, asJSON)
			case csvMode:
				return streamCSV(cmd.InOrStdin(), w, st)
			}
			inputs, err := readInputs(m.Graph, inputSpecs)
			if err != nil {
				return err
			}
			return streamArrays(w, st, inputs, outFile)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&inputSpecs, "input", nil, "input as NAME=FILE (.npy/.pb), FILE.npz keyed by input name, or FILE for a one-input model: [batch, T, ...]")
	f.StringSliceVar(&outputs, "outputs", nil, "stream only these outputs (comma-separated)")
	f.StringVar(&outFile, "out", "", "write every output, with its time axis, to this .npz file")
	f.BoolVar(&csvMode, "csv", false, "read one time step per line of comma-separated numbers from stdin, print one line of predictions per step")
	f.BoolVar(&benchMode, "bench", false, "measure the cost of one new step against full re-runs of --windows steps")
	f.IntVar(&timeAxis, "time-axis", -1, "the inputs' time axis (default: found by the analysis, dim 1 then dim 0)")
	f.IntVar(&batch, "batch", 1, "--bench: batch size")
	f.IntSliceVar(&windows, "windows", []int{50, 500}, "--bench: window lengths of the full re-runs")
	f.IntVar(&runs, "runs", 200, "--bench: measured runs")
	f.IntVar(&threads, "threads", 1, "intra-op threads")
	f.BoolVar(&asJSON, "json", false, "--bench: print JSON")
	rootCmd.AddCommand(cmd)
}

// streamArrays feeds [batch, T, ...] inputs one step at a time and collects
// every output with a time axis.
func streamArrays(w io.Writer, st *runtime.Stream, inputs map[string]*tensor.Tensor, outFile string) error {
	plan := st.Plan()
	ax := plan.TimeAxis
	steps := -1
	for _, v := range st.Inputs() {
		t, ok := inputs[v.Name]
		if !ok {
			return fmt.Errorf("stream: input %q is missing (give --input %s=FILE.npy)", v.Name, v.Name)
		}
		if t.Rank() <= ax {
			return fmt.Errorf("stream: input %q has shape %v, with no time axis %d", v.Name, t.Shape, ax)
		}
		if steps >= 0 && t.Shape[ax] != steps {
			return fmt.Errorf("stream: inputs disagree on the number of steps: %d and %d", steps, t.Shape[ax])
		}
		steps = t.Shape[ax]
	}
	if steps < 1 {
		return fmt.Errorf("stream: the inputs have no time steps")
	}
	per := make(map[string][]*tensor.Tensor, len(plan.Outputs))
	step := make(map[string]*tensor.Tensor, len(inputs))
	start := time.Now()
	for t := 0; t < steps; t++ {
		for name, x := range inputs {
			s, err := sliceTime(x, ax, t, t+1)
			if err != nil {
				return fmt.Errorf("stream: input %q: %w", name, err)
			}
			step[name] = s
		}
		res, err := st.Step(step)
		if err != nil {
			return fmt.Errorf("stream: step %d: %w", t, err)
		}
		for _, o := range plan.Outputs {
			per[o.Name] = append(per[o.Name], res[o.Name].Clone())
		}
	}
	took := time.Since(start)
	outs := make(map[string]*tensor.Tensor, len(per))
	for _, o := range plan.Outputs {
		var err error
		if o.PerStep {
			outs[o.Name], err = joinTime(per[o.Name], o.TimeAxis, true)
		} else {
			outs[o.Name], err = joinTime(per[o.Name], min(1, per[o.Name][0].Rank()), false)
		}
		if err != nil {
			return fmt.Errorf("stream: output %q: %w", o.Name, err)
		}
	}
	fmt.Fprintf(w, "streamed %d steps in %v (%v per step), carrying %s\n", steps, took.Round(time.Microsecond),
		(took / time.Duration(steps)).Round(100*time.Nanosecond), strings.Join(plan.Recurrent, ", "))
	for _, o := range plan.Outputs {
		t := outs[o.Name]
		kind := "after each step"
		if o.PerStep {
			kind = "per step"
		}
		fmt.Fprintf(w, "  %-20s %-8s %-14s %-16s last step %s\n", o.Name, t.DType, tensor.ShapeString(t.Shape), kind, preview(per[o.Name][steps-1], 6))
	}
	if outFile != "" {
		if err := tensorio.WriteNPZ(outFile, outs); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %d outputs to %s\n", len(outs), outFile)
	}
	return nil
}

// sliceTime returns steps [lo, hi) of t along axis (a copy).
func sliceTime(t *tensor.Tensor, axis, lo, hi int) (*tensor.Tensor, error) {
	outer, inner := 1, 1
	for i, d := range t.Shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	shape := append([]int(nil), t.Shape...)
	shape[axis] = hi - lo
	out, err := tensor.New(t.DType, shape)
	if err != nil {
		return nil, err
	}
	src, dst := reflect.ValueOf(t.Data), reflect.ValueOf(out.Data)
	T, n := t.Shape[axis], (hi-lo)*inner
	for o := 0; o < outer; o++ {
		reflect.Copy(dst.Slice(o*n, (o+1)*n), src.Slice((o*T+lo)*inner, (o*T+hi)*inner))
	}
	return out, nil
}

// joinTime joins per-step tensors along axis: along their own time axis
// (existing), or along a new one inserted at axis.
func joinTime(ts []*tensor.Tensor, axis int, existing bool) (*tensor.Tensor, error) {
	first := ts[0]
	shape := append([]int(nil), first.Shape...)
	if !existing {
		shape = append(shape[:axis], append([]int{0}, shape[axis:]...)...)
	}
	outer, inner := 1, 1
	for i, d := range shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	total := 0
	for _, t := range ts {
		k := 1
		if existing {
			k = t.Shape[axis]
		}
		if t.DType != first.DType || t.Len() != outer*k*inner {
			return nil, fmt.Errorf("step shapes differ: %v and %v", first.Shape, t.Shape)
		}
		total += k
	}
	shape[axis] = total
	out, err := tensor.New(first.DType, shape)
	if err != nil {
		return nil, err
	}
	dst := reflect.ValueOf(out.Data)
	off := 0
	for o := 0; o < outer; o++ {
		for _, t := range ts {
			n := t.Len() / outer
			reflect.Copy(dst.Slice(off, off+n), reflect.ValueOf(t.Data).Slice(o*n, (o+1)*n))
			off += n
		}
	}
	return out, nil
}

// streamCSV reads one step per line (batch 1) and prints one line of
// predictions per step.
func streamCSV(r io.Reader, w io.Writer, st *runtime.Stream) error {
	ins := st.Inputs()
	if len(ins) != 1 {
		return fmt.Errorf("stream --csv takes models with one input, this one has %d", len(ins))
	}
	v := ins[0]
	ax := st.Plan().TimeAxis
	shape := make([]int, len(v.Shape))
	width := 1
	for i, d := range v.Shape {
		switch {
		case i == ax:
			shape[i] = 1
		case d.Known():
			shape[i] = int(d.Value)
		case i <= 1:
			shape[i] = 1 // the batch
		default:
			return fmt.Errorf("stream --csv: input %q %s has a free dim %d besides batch and time", v.Name, v.ShapeString(), i)
		}
		width *= shape[i]
	}
	if !v.DType.IsFloat() && !v.DType.IsInteger() {
		return fmt.Errorf("stream --csv: input %q is %v", v.Name, v.DType)
	}
	x, err := tensor.New(v.DType, shape)
	if err != nil {
		return err
	}
	in := map[string]*tensor.Tensor{v.Name: x}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	vals := make([]float64, 0, width)
	header := false
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		vals = vals[:0]
		var perr error
		for _, f := range strings.Split(text, ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				perr = err
				break
			}
			vals = append(vals, x)
		}
		if perr != nil {
			if line == 1 {
				continue // a header row
			}
			return fmt.Errorf("stream --csv: line %d: %v", line, perr)
		}
		if len(vals) != width {
			return fmt.Errorf("stream --csv: line %d has %d values, input %q takes %d per step (%s)", line, len(vals), v.Name, width, v.ShapeString())
		}
		if err := fill(x, vals); err != nil {
			return err
		}
		res, err := st.Step(in)
		if err != nil {
			return fmt.Errorf("stream --csv: line %d: %w", line, err)
		}
		if !header {
			var cols []string
			for _, o := range st.Plan().Outputs {
				n := res[o.Name].Len()
				for i := 0; i < n; i++ {
					if n == 1 {
						cols = append(cols, o.Name)
					} else {
						cols = append(cols, fmt.Sprintf("%s_%d", o.Name, i))
					}
				}
			}
			fmt.Fprintln(bw, strings.Join(cols, ","))
			header = true
		}
		sep := ""
		for _, o := range st.Plan().Outputs {
			f, err := tensor.AsFloat64(res[o.Name])
			if err != nil {
				return err
			}
			for _, x := range f {
				bw.WriteString(sep)
				bw.WriteString(strconv.FormatFloat(x, 'g', 7, 64))
				sep = ","
			}
		}
		bw.WriteByte('\n')
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// fill writes vals into t's elements.
func fill(t *tensor.Tensor, vals []float64) error {
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range vals {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, vals)
	case []int64:
		for i, v := range vals {
			d[i] = int64(v)
		}
	case []int32:
		for i, v := range vals {
			d[i] = int32(v)
		}
	default:
		return fmt.Errorf("stream --csv: input dtype %v", t.DType)
	}
	return nil
}

// streamBench times one new step of the stream against full re-runs of
// the model over each window length.
func streamBench(w io.Writer, path string, m *graph.Model, st *runtime.Stream, batch int, windows []int, runs, threads int, asJSON bool) error {
	ax := st.Plan().TimeAxis
	free := runtime.FreeTimeAxis(m, ax)
	sess, err := runtime.NewSession(free, runtime.Options{Threads: threads})
	if err != nil {
		return err
	}
	one, err := parity.RandomInputs(free, batch, 1, 1)
	if err != nil {
		return err
	}
	runners := []benchRunner{func() error { _, err := st.Step(one); return err }}
	names := []string{"stream step"}
	var outs []string
	for _, o := range st.Plan().Outputs {
		outs = append(outs, o.Name)
	}
	for _, T := range windows {
		x, err := parity.RandomInputs(free, batch, T, 1)
		if err != nil {
			return err
		}
		for name, t := range x {
			if t.Rank() <= ax || t.Shape[ax] != T {
				return fmt.Errorf("stream --bench: input %q drawn as %v, without %d steps on axis %d", name, t.Shape, T, ax)
			}
		}
		ex, err := sess.NewExecutor(outs...)
		if err != nil {
			return err
		}
		runners = append(runners, func() error { _, err := ex.Run(x); return err })
		names = append(names, fmt.Sprintf("full T=%d", T))
	}
	// a step takes a few microseconds: timing each call alone would
	// measure the clock and, worse, the cache flush of ReadMemStats that
	// measure() does around every run; so calls are timed in groups of
	// `group` back-to-back calls (a group of one for the full re-runs),
	// interleaved with the other runners, and allocations are counted
	// over separate runs
	groups := []int{streamGroup}
	for range windows {
		groups = append(groups, 1)
	}
	res, err := measureGrouped(runners, groups, runs, batch)
	if err != nil {
		return err
	}
	for i := range res {
		res[i].Runtime = names[i]
	}
	kernels := fmt.Sprintf("sgemm %s, fused cells %v", linalg.KernelSet(), linalg.CellAccelerated())
	// the 1-minute load average when the machine says (Linux): stream
	// steps are short enough that a busy machine moves them more than the
	// full re-runs
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load = f[0]
		}
	}
	if asJSON {
		ratios := map[string]float64{}
		for i, T := range windows {
			ratios[fmt.Sprintf("T=%d", T)] = res[i+1].MeanMillis / res[0].MeanMillis
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"model": path, "batch": batch, "threads": max(threads, 1), "kernels": kernels,
			"carried": st.Plan().Recurrent, "results": res, "full_over_step_mean": ratios, "load_average": load})
	}
	fmt.Fprintf(w, "model %s, batch %d, threads %d, %d runs after warm-up; kernels: %s", path, batch, max(threads, 1), runs, kernels)
	if load != "" {
		fmt.Fprintf(w, "; load average %s", load)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "stream steps timed in groups of %d back-to-back steps, full re-runs one by one, interleaved\n", streamGroup)
	fmt.Fprintf(w, "%-14s %10s %10s %10s %12s %12s %12s\n", "run", "p50 µs", "p99 µs", "mean µs", "allocs/run", "÷ step p50", "÷ step mean")
	for _, r := range res {
		fmt.Fprintf(w, "%-14s %10.2f %10.2f %10.2f %12.1f %12.1f %12.1f\n", r.Runtime, 1e3*r.P50Millis, 1e3*r.P99Millis, 1e3*r.MeanMillis, r.AllocsPerRun, r.P50Millis/res[0].P50Millis, r.MeanMillis/res[0].MeanMillis)
	}
	return nil
}

// streamGroup is how many consecutive steps one timing sample of the
// stream covers.
const streamGroup = 50

// measureGrouped times runners interleaved: a sample of runner k is
// groups[k] back-to-back calls, reported per call. Allocations are counted
// on separate calls, so ReadMemStats does not disturb the timings.
func measureGrouped(runners []benchRunner, groups []int, runs, batch int) ([]benchResult, error) {
	for k, r := range runners {
		for i := 0; i < max(runs/10, 5)*groups[k]; i++ {
			if err := r(); err != nil {
				return nil, err
			}
		}
	}
	lat := make([][]time.Duration, len(runners))
	for i := 0; i < runs; i++ {
		for k, r := range runners {
			start := time.Now()
			for j := 0; j < groups[k]; j++ {
				if err := r(); err != nil {
					return nil, err
				}
			}
			lat[k] = append(lat[k], time.Since(start)/time.Duration(groups[k]))
		}
	}
	out := make([]benchResult, len(runners))
	var mem goruntime.MemStats
	for k, l := range lat {
		goruntime.ReadMemStats(&mem)
		m0, b0 := mem.Mallocs, mem.TotalAlloc
		const n = 20
		for i := 0; i < n; i++ {
			if err := runners[k](); err != nil {
				return nil, err
			}
		}
		goruntime.ReadMemStats(&mem)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		mean := sum.Seconds() / float64(len(l))
		out[k] = benchResult{
			Runs: runs * groups[k], MinMillis: ms(l[0]), P50Millis: ms(l[pctIndex(len(l), 50)]), P99Millis: ms(l[pctIndex(len(l), 99)]), MeanMillis: mean * 1e3,
			RowsPerSecond: float64(batch) / mean, AllocsPerRun: float64(mem.Mallocs-m0) / n, BytesPerRun: float64(mem.TotalAlloc-b0) / n,
		}
	}
	return out, nil
}
