package conformance

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all" // the op set the cases are selected against
	"github.com/mtlrun/mtlrun/testset"
)

// Tol is the ONNX backend test tolerance (onnx.backend.test.loader:
// rtol 1e-3, atol 1e-7, compared as numpy.testing.assert_allclose does).
var Tol = testset.Tolerance{RTol: 1e-3, ATol: 1e-7}

// Suite names, in report order. Node (Debian's copy of the onnx 1.12 node
// tests) and OnnxNode (the vendored upstream node tests) have fixed case
// lists committed beside this file; the others are selected by op coverage.
const Node = "node"

// Suites are the suites the conformance suite runs: the vendored upstream
// node tests and libonnx-testdata's suites.
var Suites = []string{OnnxNode, Node, "pytorch-converted", "pytorch-operator", "simple"}

// FixedList reports whether a suite's cases are a committed list (rather
// than selected by op coverage).
func FixedList(suite string) bool { return suite == Node || suite == OnnxNode }

// Vendored reports whether a suite's data is in the repository.
func Vendored(suite string) bool { return suite == OnnxNode }

// DataRoot is where libonnx-testdata's suites live, or $MTLRUN_ONNX_TESTDATA.
func DataRoot() string {
	if s := os.Getenv("MTLRUN_ONNX_TESTDATA"); s != "" {
		return s
	}
	return filepath.Dir(fixtures.NodeTests)
}

// SuiteDir is the folder holding one suite's case folders.
func SuiteDir(suite string) string {
	if suite == OnnxNode {
		return OnnxNodeDir()
	}
	return filepath.Join(DataRoot(), suite)
}

// ExpectationsPath is conformance/expectations.txt in the repository.
func ExpectationsPath() string {
	return filepath.Join(fixtures.RepoRoot(), "conformance", "expectations.txt")
}

// ReportPath is docs/CONFORMANCE.md in the repository.
func ReportPath() string { return filepath.Join(fixtures.RepoRoot(), "docs", "CONFORMANCE.md") }

// ReadList reads one name per line, ignoring blank lines and # comments.
func ReadList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Ops of a case

// CaseOps returns the sorted op types a case's model uses, subgraphs
// included, as "Op" for the default domain and "domain:Op" otherwise (the
// spelling of ops.Registered), and the model's opset per domain ("" for the
// default one). It decodes the protobuf directly rather than through the
// importer, so that a model the importer rejects is still selected and its
// failure reported.
func CaseOps(caseDir string) (opTypes []string, opsets map[string]int, err error) {
	data, err := os.ReadFile(filepath.Join(caseDir, "model.onnx"))
	if err != nil {
		return nil, nil, err
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", caseDir, err)
	}
	opsets = map[string]int{}
	for _, o := range mp.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		opsets[d] = int(o.GetVersion())
	}
	set := map[string]bool{}
	var walk func(g *onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for _, n := range g.GetNode() {
			set[qualify(n.GetDomain(), n.GetOpType())] = true
			for _, a := range n.GetAttribute() {
				if a.GetG() != nil {
					walk(a.GetG())
				}
				for _, sg := range a.GetGraphs() {
					walk(sg)
				}
			}
		}
	}
	walk(mp.GetGraph())
	for k := range set {
		opTypes = append(opTypes, k)
	}
	sort.Strings(opTypes)
	return opTypes, opsets, nil
}

func qualify(domain, op string) string {
	if domain == "" || domain == "ai.onnx" {
		return op
	}
	return domain + ":" + op
}

// ControlFlow are the ops the runtime implements itself (their bodies are
// graphs), so they are not in the kernel registry.
var ControlFlow = []string{"If", "Loop", "Scan", "SequenceMap"}

// Missing returns the ops of a model that mtlrun cannot instantiate at the
// model's opset: not registered at all ("Op"), or registered only from a
// later opset ("Op@opset").
func Missing(opTypes []string, opsets map[string]int) []string {
	var out []string
	for _, q := range opTypes {
		domain, op, ok := strings.Cut(q, ":")
		if !ok {
			domain, op = "", q
		}
		if domain == "" && slices.Contains(ControlFlow, op) {
			continue
		}
		if ops.Supported(domain, op, opsets[domain]) {
			continue
		}
		if ops.Supported(domain, op, 0) {
			q = fmt.Sprintf("%s@%d", q, opsets[domain])
		}
		out = append(out, q)
	}
	return out
}

// Case is one test folder of a suite with the ops its model uses.
type Case struct {
	Suite, Name string
	Ops         []string
	Opsets      map[string]int // by domain, "" for the default domain
	Missing     []string       // ops mtlrun cannot run at the model's opset (selected suites only)
}

// Dir is the case's folder.
func (c Case) Dir() string { return filepath.Join(SuiteDir(c.Suite), c.Name) }

// Cases lists a suite's cases. For the fixed-list suites these are exactly
// the committed in-scope cases, in that file's order; for the others, every case
// folder with a model, sorted, each with the ops mtlrun cannot run in
// Missing (a case is selected when Missing is empty).
func Cases(suite string) ([]Case, error) {
	var names []string
	if FixedList(suite) {
		var err error
		if names, err = ReadList(ListPath(suite)); err != nil {
			return nil, err
		}
	} else {
		entries, err := os.ReadDir(SuiteDir(suite))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(SuiteDir(suite), e.Name(), "model.onnx")); err == nil {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	}
	out := make([]Case, 0, len(names))
	for _, n := range names {
		c := Case{Suite: suite, Name: n}
		var err error
		if c.Ops, c.Opsets, err = CaseOps(c.Dir()); err != nil {
			return nil, err
		}
		if !FixedList(suite) {
			c.Missing = Missing(c.Ops, c.Opsets)
		}
		out = append(out, c)
	}
	return out, nil
}

// Selected keeps the cases whose ops are all in the op set.
func Selected(cs []Case) []Case {
	var out []Case
	for _, c := range cs {
		if len(c.Missing) == 0 {
			out = append(out, c)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Running

// Outcome is the result of running every test set of one case.
type Outcome struct {
	Pass     bool
	Sets     int
	Detail   string // the first failure, one line
	Duration time.Duration
}

// Run runs a case folder through testset.RunDir (the code path of `mtlrun
// test`) and folds its per-set results into one outcome.
func Run(dir string, tol testset.Tolerance) (o Outcome) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			o = Outcome{Detail: fmt.Sprintf("panic: %v", r)}
		}
		o.Duration = time.Since(start)
	}()
	rs := testset.RunDir(dir, tol)
	o.Pass, o.Sets = true, len(rs)
	for _, r := range rs {
		if r.Pass {
			continue
		}
		o.Pass = false
		where := filepath.Base(r.Dir)
		if r.Dir == dir {
			where = "model"
		}
		d := r.Reason + ": " + r.Detail
		if r.Output != "" {
			d = fmt.Sprintf("output %q: %s", r.Output, d)
		}
		// paths inside the case folder, relative, so details read the same in every checkout
		d = strings.ReplaceAll(d, dir+string(filepath.Separator), "")
		o.Detail = oneLine(where + ": " + d)
		break
	}
	return o
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

// ---------------------------------------------------------------------------
// Expectations file

// Expectation is one line of expectations.txt.
type Expectation struct {
	Case   string
	Skip   bool
	Reason string             // after '#': why skipped, or why a tolerance differs
	Tol    *testset.Tolerance // a case-specific tolerance, when its op documents one
}

// KnownFailurePrefix starts the reason the generator writes for a case that
// fails without a deliberate exclusion: a bug to fix, not a limitation.
const KnownFailurePrefix = "known failure: "

// NondeterministicPrefix starts the reason of an exclusion whose reference
// comes from another random generator: such a case may pass by chance (a
// few Bernoulli draws can all match), which is neither a failure nor a
// reason to list it as pass.
const NondeterministicPrefix = "nondeterministic: "

// Expectations are the sections of expectations.txt by suite.
type Expectations struct {
	Header []string // leading comment lines, kept on rewrite
	Suites map[string][]Expectation
}

// Lookup finds a case's expectation.
func (e *Expectations) Lookup(suite, name string) (Expectation, bool) {
	for _, x := range e.Suites[suite] {
		if x.Case == name {
			return x, true
		}
	}
	return Expectation{}, false
}

// ReadExpectations parses the file format:
//
//	# comments
//	[suite]
//	pass <case> [rtol=<x>] [atol=<y>] [# why the tolerance differs]
//	skip <case> # reason
func ReadExpectations(path string) (*Expectations, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e := &Expectations{Suites: map[string][]Expectation{}}
	suite := ""
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if suite == "" {
				e.Header = append(e.Header, line)
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			suite = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if suite == "" {
			return nil, fmt.Errorf("%s:%d: entry before any [suite] header", path, ln)
		}
		body, reason := line, ""
		if i := strings.IndexByte(line, '#'); i >= 0 {
			body, reason = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		f := strings.Fields(body)
		if len(f) < 2 || (f[0] != "pass" && f[0] != "skip") {
			return nil, fmt.Errorf("%s:%d: want `pass <case>` or `skip <case> # reason`, got %q", path, ln, line)
		}
		x := Expectation{Case: f[1], Skip: f[0] == "skip", Reason: reason}
		if x.Skip && reason == "" {
			return nil, fmt.Errorf("%s:%d: skip %s has no reason", path, ln, x.Case)
		}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			num, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || (k != "rtol" && k != "atol") {
				return nil, fmt.Errorf("%s:%d: bad option %q (want rtol=<x> or atol=<y>)", path, ln, kv)
			}
			if x.Tol == nil {
				t := Tol
				x.Tol = &t
			}
			if k == "rtol" {
				x.Tol.RTol = num
			} else {
				x.Tol.ATol = num
			}
		}
		if _, dup := e.Lookup(suite, x.Case); dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice in [%s]", path, ln, x.Case, suite)
		}
		e.Suites[suite] = append(e.Suites[suite], x)
	}
	return e, sc.Err()
}

// Tolerance is the case's tolerance: its own, or Tol.
func (x Expectation) Tolerance() testset.Tolerance {
	if x.Tol != nil {
		return *x.Tol
	}
	return Tol
}

// Write writes the file, suites in Suites order then any others.
func (e *Expectations) Write(path string) error {
	var b strings.Builder
	for _, h := range e.Header {
		b.WriteString(h + "\n")
	}
	order := append([]string(nil), Suites...)
	var extra []string
	for s := range e.Suites {
		known := false
		for _, k := range Suites {
			known = known || k == s
		}
		if !known {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	for _, s := range append(order, extra...) {
		xs, ok := e.Suites[s]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "\n[%s]\n", s)
		for _, x := range xs {
			verb := "pass"
			if x.Skip {
				verb = "skip"
			}
			line := verb + " " + x.Case
			if x.Tol != nil {
				line += fmt.Sprintf(" rtol=%g atol=%g", x.Tol.RTol, x.Tol.ATol)
			}
			if x.Reason != "" {
				line += " # " + x.Reason
			}
			b.WriteString(line + "\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Updated returns the section for cases (in that order) from their outcomes:
// passing cases become pass (keeping a tolerance and its note), failing cases
// keep an existing skip reason or become a skip with KnownFailurePrefix and
// the failure.
func (e *Expectations) Updated(suite string, cases []string, got map[string]Outcome) []Expectation {
	var out []Expectation
	for _, name := range cases {
		old, had := e.Lookup(suite, name)
		o, ran := got[name]
		if !ran {
			if had {
				out = append(out, old)
			}
			continue
		}
		x := Expectation{Case: name, Tol: old.Tol}
		switch {
		case old.Skip && strings.HasPrefix(old.Reason, NondeterministicPrefix):
			x.Skip, x.Reason = true, old.Reason
		case o.Pass && old.Skip:
			x.Reason = ""
		case o.Pass:
			x.Reason = old.Reason
		case old.Skip && !strings.HasPrefix(old.Reason, KnownFailurePrefix):
			x.Skip, x.Reason = true, old.Reason
		default:
			x.Skip, x.Reason = true, KnownFailurePrefix+o.Detail
		}
		out = append(out, x)
	}
	return out
}
