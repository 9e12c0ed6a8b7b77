// Command report runs the conformance suite and writes docs/CONFORMANCE.md:
// the pass count per op and overall, how to reproduce it, and the cases
// excluded in conformance/expectations.txt with their reasons.
//
//	go run ./conformance/cmd/report [-o docs/CONFORMANCE.md]
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mtlrun/mtlrun/conformance"
)

type row struct {
	c conformance.Case
	x conformance.Expectation
	o conformance.Outcome
}

type suiteResult struct {
	name        string
	all         int // cases in the suite (node: in scope)
	rows        []row
	notSelected []conformance.Case
}

func main() {
	out := flag.String("o", conformance.ReportPath(), "where to write the report")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	exp, err := conformance.ReadExpectations(conformance.ExpectationsPath())
	if err != nil {
		return err
	}
	var suites []*suiteResult
	var jobs []*row
	for _, s := range conformance.Suites {
		all, err := conformance.Cases(s)
		if err != nil {
			return fmt.Errorf("%s: %w (%s)", s, err, conformance.HowToInstallTestData)
		}
		sr := &suiteResult{name: s, all: len(all)}
		for _, c := range all {
			if len(c.Missing) > 0 {
				sr.notSelected = append(sr.notSelected, c)
				continue
			}
			x, _ := exp.Lookup(s, c.Name)
			sr.rows = append(sr.rows, row{c: c, x: x})
		}
		suites = append(suites, sr)
	}
	for _, sr := range suites {
		for i := range sr.rows {
			jobs = append(jobs, &sr.rows[i])
		}
	}
	start := time.Now()
	ch := make(chan *row)
	var wg sync.WaitGroup
	for w := 0; w < goruntime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range ch {
				r.o = conformance.Run(r.c.Dir(), r.x.Tolerance())
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	elapsed := time.Since(start)

	mismatches := 0
	for _, sr := range suites {
		for _, r := range sr.rows {
			x, ok := exp.Lookup(sr.name, r.c.Name)
			if !ok || x.Skip == r.o.Pass && !chance(x) {
				mismatches++
				fmt.Fprintf(os.Stderr, "report: %s/%s: expectations.txt says %s, the run %s\n",
					sr.name, r.c.Name, verb(x, ok), map[bool]string{true: "passes", false: "fails: " + r.o.Detail}[r.o.Pass])
			}
		}
	}
	if err := os.WriteFile(out, []byte(render(suites, elapsed)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report: wrote %s (%d cases in %v)\n", out, len(jobs), elapsed.Round(time.Millisecond))
	if mismatches > 0 {
		fmt.Fprintf(os.Stderr, "report: %d case(s) differ from expectations.txt; run go test ./conformance -update-expectations\n", mismatches)
	}
	return nil
}

// history is the record of the upstream pass counts, kept by hand here
// because the report regenerates the rest of the file.
const history = `## Versions

mtlrun reads IR versions 3–13 and default-domain opsets 1–28 (onnx 1.23). The ops it registers were
checked against every operator version of opsets 19–28 in onnx's docs/Changelog.md: most changes
there add element types; the ones that change behaviour are implemented per version (Cast's
saturate and round_mode, the float8/float4/int4/int2 types, Pad's wrap mode, AveragePool's
dilations, Resize's half_pixel_symmetric mode, Split's num_outputs, GroupNormalization's per-channel
scale from opset 21, DFT's axis input from opset 20, Range's float16 stash_type, TopK-24,
Attention 23/24). What is not implemented fails with a clear error: Cast to float8e8m0 with a
round_mode other than "up", map values, string n-gram pools.

## History of the upstream node-test count

| when | in-scope cases passing | what changed |
|---|---:|---|
| before the opset/IR gates were raised | 645 of 1700 | IR > 10 and opset > 18 refused at load |
| gates at IR 13, opset 28 | 1046 of 1700 | no kernel changed |
| scatter/gather/select ops | 1080 | ScatterND, ScatterElements (reductions), GatherND, OneHot, NonZero, Compress, EyeLike |
| selection, norms, losses | 1235 | TopK, Hardmax, Unique, CumProd, Bitwise*, RMSNormalization, LpNormalization, NLL and SCE losses |
| Resize | 1275 | Resize (every mode), Upsample |
| Attention | 1351 | Attention 23/24 |
| quantization | 1376 | Quantize/DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul |
| transformer and state ops | 1435 | Swish, SwiGLU, RotaryEmbedding, TensorScatter, DepthToSpace, SpaceToDepth, CausalConvWithState, LinearAttention, BitCast |
| pools, misc | 1458 | LpPool, MaxUnpool, Col2Im, GroupNormalization, Det, bool ReduceMax/Min, float16 Range |
| float16 compute, spectral | 1484 | float16/bfloat16 MatMul/Gemm/Conv, DFT, STFT, windows, MelWeightMatrix |
| low-precision types | 1646 | float8/float4/int4/int2 tensors, Cast, Quantize/DequantizeLinear to and from them |
| sequences and optionals | 1673 | boxed sequence/optional values, Sequence*, SplitToSequence, ConcatFromSequence, Optional* |
| TfIdfVectorizer, QLinearConv, Optional's type attribute | 1682 | |
| SequenceMap | 1688 | SequenceMap in the runtime's control flow |
`

var (
	reUnsupported = regexp.MustCompile(`does not support: node "[^"]*": ([A-Za-z0-9_]+) \(domain`)
	reDataType    = regexp.MustCompile(`unsupported (?:target )?(?:data type|dtype) (?:dtype\()?(\d+)`)
)

// cause folds a failure detail into a short class: the missing op, the
// unsupported dtype, or the detail without case-specific names.
func cause(d string) string {
	if m := reUnsupported.FindStringSubmatch(d); m != nil {
		return "op " + m[1] + " not implemented"
	}
	if m := reDataType.FindStringSubmatch(d); m != nil {
		return "data type " + m[1] + " (float8/int4/float4/int2 family) not supported"
	}
	if strings.Contains(d, "is a sequence") || strings.Contains(d, "is a optional") {
		return "sequence/optional values at the graph boundary"
	}
	if i := strings.Index(d, "dtype float16 not supported"); i >= 0 {
		return "float16 compute in MatMul/Conv"
	}
	d = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(d, "X")
	if len(d) > 120 {
		d = d[:117] + "..."
	}
	return d
}

// chance reports whether a case is excluded as nondeterministic (its pass
// or failure is luck).
func chance(x conformance.Expectation) bool {
	return x.Skip && strings.HasPrefix(x.Reason, conformance.NondeterministicPrefix)
}

func verb(x conformance.Expectation, ok bool) string {
	switch {
	case !ok:
		return "nothing"
	case x.Skip:
		return "skip"
	}
	return "pass"
}

func count(rows []row) (pass, excluded, known int) {
	for _, r := range rows {
		switch {
		case r.o.Pass && !chance(r.x):
			pass++
		case strings.HasPrefix(r.x.Reason, conformance.KnownFailurePrefix) || !r.x.Skip:
			known++
		default:
			excluded++
		}
	}
	return
}

func render(suites []*suiteResult, elapsed time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var up, node *suiteResult
	for _, sr := range suites {
		switch sr.name {
		case conformance.OnnxNode:
			up = sr
		case conformance.Node:
			node = sr
		}
	}
	upPass, _, _ := count(up.rows)
	np, _, _ := count(node.rows)
	p("# Conformance\n\n")
	p("<!-- Generated by `go run ./conformance/cmd/report`; do not edit by hand. -->\n\n")
	p("mtlrun is checked against the official ONNX backend node tests, vendored in\n")
	p("`conformance/testdata/onnx-node` (1802 cases of onnx at opset 28, IR 13; see the NOTICE there), and\n")
	p("against the suites of Debian's `libonnx-testdata` (onnx 1.12, `/usr/share/libonnx-testdata/data/`).\n")
	p("Every case runs through `testset.RunDir`, the code path of\n")
	p("`mtlrun test`, and every output is compared with the reference at the ONNX backend tolerance,\n")
	p("|got − want| ≤ 1e-7 + 1e-3·|want| (dtype and shape must match exactly; NaN matches NaN).\n\n")
	p("**Upstream node tests (onnx-node): %d of %d in-scope cases pass (%.1f%%).**\n\n", upPass, up.all, 100*float64(upPass)/float64(max(up.all, 1)))
	p("**Debian node tests: %d of %d in-scope cases pass.**\n\n", np, node.all)
	p("| suite | cases | selected | pass | excluded | known failures |\n|---|---:|---:|---:|---:|---:|\n")
	for _, sr := range suites {
		pass, ex, known := count(sr.rows)
		p("| %s | %d | %d | %d | %d | %d |\n", sr.name, sr.all, len(sr.rows), pass, ex, known)
	}
	p("\nThe onnx-node cases are the %d of `conformance/onnx-node-inscope.txt`: every vendored case in the\n", up.all)
	p("default domain except the string ops, ImageDecoder and the detection/geometry ops (NonMaxSuppression,\n")
	p("RoiAlign, DeformConv, GridSample, AffineGrid, CenterCropPad); `conformance.OutOfScope` is the rule.\n")
	p("The node cases are the %d named in `conformance/node-inscope.txt`. In the other suites a\n", node.all)
	p("case is selected when every op of its model (subgraphs included) is in mtlrun's op set: the\n")
	p("registered kernels plus `If`, `Loop`, `Scan` and `SequenceMap`, which the runtime implements. *Excluded* cases are\n")
	p("listed below with the reason; *known failures* are bugs still to fix.\n")
	p("All %d selected cases ran in %s on %d CPUs.\n\n", totalRows(suites), roundDur(elapsed), goruntime.NumCPU())

	p("## Reproduce\n\n```sh\n")
	p("sudo apt-get install libonnx-testdata            # the test data (scripts/test.sh does this)\n")
	p("go test ./conformance                             # every case against conformance/expectations.txt\n")
	p("go test ./conformance -run TestOnnxNode -v        # the vendored upstream node cases (no install needed)\n")
	p("go test ./conformance -run TestNode -v            # the Debian node cases one by one\n")
	p("go test ./conformance -update-expectations        # rewrite the expectations from a run (keeps skip reasons)\n")
	p("go run ./conformance/cmd/report                   # rewrite this file\n")
	p("go run ./cmd/mtlrun test --rtol 1e-3 --atol 1e-7 /usr/share/libonnx-testdata/data/node/test_lstm_with_peepholes\n")
	p("```\n\n")
	p("`go test ./conformance` fails when a case expected to pass fails, when an excluded case starts\n")
	p("passing, and when the expectations and the suites' cases differ. Without Debian's test data those\n")
	p("suites skip with an install hint; with `MTLRUN_REQUIRE_FIXTURES=1` (CI) they fail instead. The\n")
	p("onnx-node suite needs nothing beyond a clone.\n\n")
	p("%s\n", history)

	p("## Exclusions\n\n")
	any := false
	for _, sr := range suites {
		for _, r := range sr.rows {
			if r.x.Skip && (!r.o.Pass || chance(r.x)) && !strings.HasPrefix(r.x.Reason, conformance.KnownFailurePrefix) {
				if !any {
					p("| suite | case | reason |\n|---|---|---|\n")
					any = true
				}
				p("| %s | `%s` | %s |\n", sr.name, r.c.Name, mdCell(r.x.Reason))
			}
		}
	}
	if !any {
		p("None.\n")
	}
	p("\n")

	p("## Known failures of the upstream node tests, by cause\n\n")
	p("Each case and its first failure is in the [onnx-node] section of `conformance/expectations.txt`.\n\n")
	p("| cause | cases | examples |\n|---|---:|---|\n")
	byCause := map[string][]string{}
	for _, r := range up.rows {
		if !r.o.Pass && (!r.x.Skip || strings.HasPrefix(r.x.Reason, conformance.KnownFailurePrefix)) {
			c := cause(r.o.Detail)
			byCause[c] = append(byCause[c], r.c.Name)
		}
	}
	causes := make([]string, 0, len(byCause))
	for c := range byCause {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		a, b := causes[i], causes[j]
		if len(byCause[a]) != len(byCause[b]) {
			return len(byCause[a]) > len(byCause[b])
		}
		return a < b
	})
	for _, c := range causes {
		ex := byCause[c]
		if len(ex) > 3 {
			ex = append(ex[:3:3], "…")
		}
		p("| %s | %d | %s |\n", mdCell(c), len(byCause[c]), mdCell(strings.Join(ex, ", ")))
	}
	p("\n")

	var known []string
	for _, sr := range suites {
		if sr == up {
			continue
		}
		for _, r := range sr.rows {
			if !r.o.Pass && (!r.x.Skip || strings.HasPrefix(r.x.Reason, conformance.KnownFailurePrefix)) {
				known = append(known, fmt.Sprintf("| %s | `%s` | %s |", sr.name, r.c.Name, mdCell(r.o.Detail)))
			}
		}
	}
	if len(known) > 0 {
		p("## Known failures\n\n| suite | case | failure |\n|---|---|---|\n%s\n\n", strings.Join(known, "\n"))
	}

	p("## Pass count per op\n\n")
	p("A case counts for every op its model uses (so the `_expanded` function-body cases count for\n")
	p("each op of the body). Cells are passed/selected cases.\n\n")
	type cell struct{ pass, n int }
	perOp := map[string]map[string]*cell{}
	for _, sr := range suites {
		for _, r := range sr.rows {
			for _, op := range r.c.Ops {
				if perOp[op] == nil {
					perOp[op] = map[string]*cell{}
				}
				c := perOp[op][sr.name]
				if c == nil {
					c = &cell{}
					perOp[op][sr.name] = c
				}
				c.n++
				if r.o.Pass {
					c.pass++
				}
			}
		}
	}
	opNames := make([]string, 0, len(perOp))
	for op := range perOp {
		opNames = append(opNames, op)
	}
	sort.Strings(opNames)
	p("| op |")
	for _, sr := range suites {
		p(" %s |", sr.name)
	}
	p("\n|---|%s\n", strings.Repeat("---:|", len(suites)))
	for _, op := range opNames {
		p("| %s |", op)
		for _, sr := range suites {
			if c := perOp[op][sr.name]; c != nil {
				mark := ""
				if c.pass < c.n {
					mark = " ✗"
				}
				p(" %d/%d%s |", c.pass, c.n, mark)
			} else {
				p(" |")
			}
		}
		p("\n")
	}
	p("\n")

	p("## Cases not selected\n\n")
	p("Cases of the other suites whose models use ops outside mtlrun's op set, by missing op.\n\n")
	for _, sr := range suites[1:] {
		if len(sr.notSelected) == 0 {
			continue
		}
		byOp := map[string][]string{}
		for _, c := range sr.notSelected {
			byOp[strings.Join(c.Missing, ", ")] = append(byOp[strings.Join(c.Missing, ", ")], c.Name)
		}
		keys := make([]string, 0, len(byOp))
		for k := range byOp {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p("**%s** (%d of %d):\n\n", sr.name, len(sr.notSelected), sr.all)
		for _, k := range keys {
			p("- %s: %s\n", k, strings.Join(byOp[k], ", "))
		}
		p("\n")
	}
	return b.String()
}

func totalRows(suites []*suiteResult) int {
	n := 0
	for _, sr := range suites {
		n += len(sr.rows)
	}
	return n
}

func roundDur(d time.Duration) string {
	if d < time.Second {
		return "under a second"
	}
	return fmt.Sprintf("about %d s", int(d.Seconds()+0.5))
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
