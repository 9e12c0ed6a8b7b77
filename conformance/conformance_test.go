package conformance

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update-expectations", false,
	"rewrite expectations.txt from this run's results, keeping existing skip reasons")

// What the tests of this run saw, for -update-expectations.
var (
	mu       sync.Mutex
	outcomes = map[string]map[string]Outcome{} // suite → case → outcome
	listed   = map[string][]string{}           // suite → the suite's cases, in order
)

func record(suite, name string, o Outcome) {
	mu.Lock()
	defer mu.Unlock()
	if outcomes[suite] == nil {
		outcomes[suite] = map[string]Outcome{}
	}
	outcomes[suite][name] = o
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *update && len(listed) > 0 {
		if err := writeExpectations(); err != nil {
			fmt.Fprintln(os.Stderr, "update-expectations:", err)
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "update-expectations: wrote", ExpectationsPath())
		}
	}
	os.Exit(code)
}

func writeExpectations() error {
	e, err := ReadExpectations(ExpectationsPath())
	if errors.Is(err, fs.ErrNotExist) {
		e, err = &Expectations{Suites: map[string][]Expectation{}}, nil
	}
	if err != nil {
		return err
	}
	if len(e.Header) == 0 {
		e.Header = defaultHeader
	}
	for suite, cases := range listed {
		e.Suites[suite] = e.Updated(suite, cases, outcomes[suite])
	}
	return e.Write(ExpectationsPath())
}

var defaultHeader = []string{
	"# Expected results of the conformance suite (go test ./conformance).",
	"# One section per libonnx-testdata suite; every case run is listed as",
	"#   pass <case> [rtol=<x> atol=<y>] [# why its tolerance differs from rtol 1e-3, atol 1e-7]",
	"#   skip <case> # why a user can accept that it does not pass",
	"# The tests fail when a pass case fails, when a skip case passes, and when",
	"# the list and the suite's cases differ. Regenerate (skip reasons are kept):",
	"#   go test ./conformance -update-expectations",
	"# Tolerance: rtol 1e-3, atol 1e-7 for every case, as onnx.backend.test.loader uses; in the",
	"# onnx 1.12 test data only the real-model suite (not run here) documents its own (data.json).",
	"# Reasons starting \"" + KnownFailurePrefix + "\" are bugs still to fix, not exclusions.",
	"# Reasons starting \"" + NondeterministicPrefix + "\" exclude cases whose reference comes from another",
	"# random generator; they may pass by chance, which fails nothing.",
}

var (
	expOnce sync.Once
	exp     *Expectations
	expErr  error
)

func expectations(t *testing.T) *Expectations {
	t.Helper()
	expOnce.Do(func() {
		exp, expErr = ReadExpectations(ExpectationsPath())
		if errors.Is(expErr, fs.ErrNotExist) && *update {
			exp, expErr = &Expectations{Suites: map[string][]Expectation{}}, nil
		}
	})
	if expErr != nil {
		t.Fatal(expErr)
	}
	return exp
}

// runSuite runs cases in parallel subtests and holds each to its line in
// expectations.txt.
func runSuite(t *testing.T, suite string, cases []Case) {
	e := expectations(t)
	names := make([]string, len(cases))
	inSuite := map[string]bool{}
	for i, c := range cases {
		names[i] = c.Name
		inSuite[c.Name] = true
	}
	mu.Lock()
	listed[suite] = names
	mu.Unlock()
	for _, x := range e.Suites[suite] {
		if !inSuite[x.Case] && !*update {
			t.Errorf("expectations.txt [%s] lists %s, which is not a case of the suite (any more); run go test ./conformance -update-expectations", suite, x.Case)
		}
	}
	start := time.Now()
	var passed, failed, skipped int
	var cmu sync.Mutex
	t.Cleanup(func() {
		t.Logf("%s: %d cases in %v: %d passed, %d skipped as expected, %d unexpected",
			suite, len(cases), time.Since(start).Round(time.Millisecond), passed, skipped, failed)
	})
	count := func(p *int) { cmu.Lock(); *p++; cmu.Unlock() }
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			x, ok := e.Lookup(suite, c.Name)
			o := Run(c.Dir(), x.Tolerance())
			record(suite, c.Name, o)
			fail := t.Errorf
			if *update {
				fail = t.Logf
			}
			switch {
			case !ok:
				count(&failed)
				fail("%s is not in expectations.txt [%s] (it %s); run go test ./conformance -update-expectations",
					c.Name, suite, map[bool]string{true: "passes", false: "fails: " + o.Detail}[o.Pass])
			case x.Skip && o.Pass && strings.HasPrefix(x.Reason, NondeterministicPrefix):
				count(&skipped)
				t.Skipf("excluded: %s (passed by chance this time)", x.Reason)
			case x.Skip && o.Pass:
				count(&failed)
				fail("listed as skip (%s) but passes now: change it to `pass %s` (or run -update-expectations)", x.Reason, c.Name)
			case x.Skip:
				count(&skipped)
				if strings.HasPrefix(x.Reason, KnownFailurePrefix) {
					t.Skipf("known failure listed in expectations.txt: %s", o.Detail)
				}
				t.Skipf("excluded: %s (fails with: %s)", x.Reason, o.Detail)
			case !o.Pass:
				count(&failed)
				fail("%s (ops %v)", o.Detail, c.Ops)
			default:
				count(&passed)
			}
		})
	}
}

func requireData(t *testing.T, suite string) {
	t.Helper()
	if Vendored(suite) {
		return
	}
	RequireFixture(t, SuiteDir(suite), HowToInstallTestData)
}

func testSelectedSuite(t *testing.T, suite string) {
	requireData(t, suite)
	all, err := Cases(suite)
	if err != nil {
		t.Fatal(err)
	}
	cases := Selected(all)
	t.Logf("%s: %d of %d cases use only ops in mtlrun's op set", suite, len(cases), len(all))
	runSuite(t, suite, cases)
}

// TestPytorchConverted runs libonnx-testdata's pytorch-converted cases whose
// ops are all in the op set.
func TestPytorchConverted(t *testing.T) { testSelectedSuite(t, "pytorch-converted") }

// TestPytorchOperator runs the selected pytorch-operator cases.
func TestPytorchOperator(t *testing.T) { testSelectedSuite(t, "pytorch-operator") }

// TestSimple runs the selected cases of the simple suite.
func TestSimple(t *testing.T) { testSelectedSuite(t, "simple") }

// TestRecurrentCasesMustPass holds the acceptance rule that no LSTM, GRU or
// RNN node case may be excluded.
func TestRecurrentCasesMustPass(t *testing.T) {
	e := expectations(t)
	re := regexp.MustCompile(`^test_(lstm_|gru_|simple_rnn_|rnn_seq_length$)`)
	n := 0
	for _, x := range e.Suites[Node] {
		if !re.MatchString(x.Case) {
			continue
		}
		n++
		if x.Skip {
			t.Errorf("%s is listed as skip (%s); every LSTM/GRU/RNN node case must pass", x.Case, x.Reason)
		}
	}
	if n == 0 {
		t.Error("no LSTM/GRU/RNN cases in expectations.txt [node]")
	}
}

func TestExpectationsRoundTrip(t *testing.T) {
	e := expectations(t)
	path := t.TempDir() + "/exp.txt"
	if err := e.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadExpectations(path)
	if err != nil {
		t.Fatal(err)
	}
	for s, xs := range e.Suites {
		if len(back.Suites[s]) != len(xs) {
			t.Fatalf("[%s]: %d entries after a round trip, want %d", s, len(back.Suites[s]), len(xs))
		}
		for i, x := range xs {
			y := back.Suites[s][i]
			if x.Case != y.Case || x.Skip != y.Skip || x.Reason != y.Reason || x.Tolerance() != y.Tolerance() {
				t.Errorf("[%s] %+v became %+v", s, x, y)
			}
		}
	}
}
