// Command gonnx compares mtlrun with the pure-Go ONNX runtime
// github.com/advancedclimatesystems/gonnx on the models of
// docs/PERFORMANCE.md: same model files, same random inputs, one thread,
// interleaved run by run after a warm-up. It prints a markdown table of p50
// and p99 latency per runtime, the ratio mtlrun/gonnx and gonnx's largest
// absolute difference from mtlrun's outputs; where gonnx cannot run a model
// the table says why.
//
// It lives in its own module so that gonnx is not a dependency of mtlrun:
//
//	cd bench/gonnx && go run . [-runs 200] [-warmup 20] [-models seed_lstm,gru3,mlp4] [-json]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	// Must stay imported: lets gonnx's and mtlrun's ONNX protobuf packages
	// share the global registry (see the package comment).
	_ "github.com/mtlrun/mtlrun/bench/gonnx/internal/protoconflict"
)

func main() {
	var cfg config
	var models, batches string
	var asJSON bool
	flag.IntVar(&cfg.runs, "runs", 200, "measured runs per runtime and case")
	flag.IntVar(&cfg.warmup, "warmup", 20, "unmeasured warm-up runs per runtime and case")
	flag.StringVar(&models, "models", "seed_lstm,gru3,mlp4", "comma list of model names ("+names()+") or .onnx paths relative to -root")
	flag.StringVar(&batches, "batches", "1,64", "comma list of batch sizes")
	flag.IntVar(&cfg.time, "time", 50, "sequence length for models with a time axis")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the random inputs")
	flag.StringVar(&cfg.root, "root", "", "mtlrun repository root (default: found from the working directory)")
	flag.BoolVar(&cfg.gc, "gc", false, "run a garbage collection before every measured run, so one runtime's garbage is not collected during the other's run")
	flag.BoolVar(&cfg.alone, "alone", true, "after the interleaved runs, also time each runtime alone in a block of -runs runs (the \"alone\" columns)")
	flag.BoolVar(&asJSON, "json", false, "print JSON instead of markdown")
	flag.Parse()

	if err := run(cfg, models, batches, asJSON, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gonnx:", err)
		os.Exit(1)
	}
}

func names() string {
	var n []string
	for _, m := range defaultModels {
		n = append(n, m.Name)
	}
	return strings.Join(n, ", ")
}

// run measures every model at every batch size and writes the report.
func run(cfg config, models, batches string, asJSON bool, w io.Writer) error {
	if cfg.runs < 1 || cfg.warmup < 0 || cfg.time < 1 {
		return fmt.Errorf("need -runs >= 1, -warmup >= 0, -time >= 1")
	}
	if cfg.root == "" {
		root, err := findRoot()
		if err != nil {
			return err
		}
		cfg.root = root
	}
	specs, err := parseModels(models)
	if err != nil {
		return err
	}
	var bs []int
	for _, f := range strings.Split(batches, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || b < 1 {
			return fmt.Errorf("bad batch size %q", f)
		}
		bs = append(bs, b)
	}
	var results []Result
	for _, s := range specs {
		for _, b := range bs {
			r, err := runCase(cfg, s, b)
			if err != nil {
				return err
			}
			results = append(results, r)
			if !asJSON {
				fmt.Fprintf(os.Stderr, "done %s batch %d\n", s.Name, b)
			}
		}
	}
	env := environment(cfg)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"environment": env, "results": results})
	}
	writeMarkdown(w, env, results)
	return nil
}

func parseModels(list string) ([]modelSpec, error) {
	var out []modelSpec
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for _, m := range defaultModels {
			if m.Name == f {
				out, found = append(out, m), true
			}
		}
		if !found {
			if !strings.HasSuffix(f, ".onnx") {
				return nil, fmt.Errorf("unknown model %q (known: %s, or a .onnx path)", f, names())
			}
			out = append(out, modelSpec{Name: filepath.Base(filepath.Dir(f)), Path: f})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no models")
	}
	return out, nil
}

// findRoot walks up from the working directory to the directory whose go.mod
// declares module github.com/mtlrun/mtlrun.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(line) == "module github.com/mtlrun/mtlrun" {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no mtlrun repository root above the working directory; pass -root")
		}
		dir = parent
	}
}

// Environment describes the machine and settings of a report.
type Environment struct {
	Date       string `json:"date"`
	CPU        string `json:"cpu"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Threads    int    `json:"threads"`
	Runs       int    `json:"runs"`
	Warmup     int    `json:"warmup"`
	Time       int    `json:"time"`
	Seed       uint64 `json:"seed"`
	GCBetween  bool   `json:"gc_between_runs"`
	Alone      bool   `json:"alone"`
}

func environment(cfg config) Environment {
	return Environment{
		Date: time.Now().Format("2006-01-02"), CPU: cpuModel(), GoVersion: goruntime.Version(),
		GOOS: goruntime.GOOS, GOARCH: goruntime.GOARCH, NumCPU: goruntime.NumCPU(), GOMAXPROCS: goruntime.GOMAXPROCS(0),
		Threads: 1, Runs: cfg.runs, Warmup: cfg.warmup, Time: cfg.time, Seed: cfg.seed, GCBetween: cfg.gc, Alone: cfg.alone,
	}
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeMarkdown prints the environment, the table and, below it, the notes
// the table cells refer to (why gonnx failed, which workaround it needed).
func writeMarkdown(w io.Writer, env Environment, results []Result) {
	fmt.Fprintf(w, "%s, %s, %s %s/%s, %d CPUs (GOMAXPROCS %d), 1 thread, %d runs after %d warm-up runs, time %d, seed %d",
		env.Date, env.CPU, env.GoVersion, env.GOOS, env.GOARCH, env.NumCPU, env.GOMAXPROCS, env.Runs, env.Warmup, env.Time, env.Seed)
	if env.GCBetween {
		fmt.Fprint(w, ", GC before every run")
	}
	fmt.Fprint(w, "\n\ninputs:")
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.Model] {
			seen[r.Model] = true
			fmt.Fprintf(w, " %s %s (batch %d);", r.Model, strings.Join(r.Inputs, " "), r.Batch)
		}
	}
	fmt.Fprint(w, " times in µs\n\n")
	fmt.Fprintln(w, "| model | batch | mtlrun p50 | mtlrun p99 | gonnx p50 | gonnx p99 | mtlrun/gonnx p50 | mtlrun/gonnx p99 | alone: mtlrun p50 | alone: gonnx p50 | alone: mtlrun/gonnx p50 | gonnx max abs diff |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	note := func(s string) string {
		for i, n := range notes {
			if n == s {
				return fmt.Sprintf("[%d]", i+1)
			}
		}
		notes = append(notes, s)
		return fmt.Sprintf("[%d]", len(notes))
	}
	for _, r := range results {
		row := []string{r.Model, strconv.Itoa(r.Batch)}
		switch {
		case r.MtlrunError != "":
			row = append(row, "mtlrun fails "+note("mtlrun on "+r.Model+": "+r.MtlrunError), "—")
		default:
			row = append(row, us(r.MtlrunP50us), us(r.MtlrunP99us))
		}
		alone := []string{"—", "—", "—"}
		if r.MtlrunAloneP50us > 0 {
			alone[0] = us(r.MtlrunAloneP50us)
		}
		if r.GonnxAloneP50us > 0 {
			alone[1] = us(r.GonnxAloneP50us)
			alone[2] = fmt.Sprintf("%.3f", r.MtlrunAloneP50us/r.GonnxAloneP50us)
		}
		switch {
		case r.GonnxError != "":
			row = append(row, "gonnx fails "+note("gonnx on "+r.Model+": "+r.GonnxError), "—", "—", "—")
			row = append(row, alone...)
			row = append(row, "—")
		case r.MtlrunError != "":
			row = append(row, "—", "—", "—", "—", "—", "—", "—", "—")
		default:
			diff := fmt.Sprintf("%.2g", r.MaxAbsDiff)
			if r.CompareNote != "" {
				diff += " " + note("comparison on "+r.Model+": "+r.CompareNote)
			}
			p50 := us(r.GonnxP50us)
			if len(r.GonnxFailedAttempts) > 0 {
				p50 += " " + note("gonnx on "+r.Model+" ran "+r.GonnxLoadedAs+"; before that: "+strings.Join(r.GonnxFailedAttempts, "; "))
			}
			row = append(row, p50, us(r.GonnxP99us), fmt.Sprintf("%.3f", r.RatioP50), fmt.Sprintf("%.3f", r.RatioP99))
			row = append(row, alone...)
			row = append(row, diff)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for i, n := range notes {
			fmt.Fprintf(w, "[%d] %s\n\n", i+1, strings.ReplaceAll(n, "\n", " "))
		}
	}
}

func us(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
