package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadExpectationsFormat(t *testing.T) {
	tests := []struct {
		name, text, err string
		want            []Expectation
	}{
		{name: "pass and skip", text: "# head\n[node]\npass test_a\nskip test_b # why not\n",
			want: []Expectation{{Case: "test_a"}, {Case: "test_b", Skip: true, Reason: "why not"}}},
		{name: "tolerance", text: "[node]\npass test_a rtol=0.01 atol=1e-5 # documented by the op\n",
			want: []Expectation{{Case: "test_a", Reason: "documented by the op"}}},
		{name: "skip without reason", text: "[node]\nskip test_b\n", err: "no reason"},
		{name: "entry before section", text: "pass test_a\n", err: "before any [suite]"},
		{name: "bad verb", text: "[node]\nfail test_a\n", err: "want `pass <case>`"},
		{name: "bad option", text: "[node]\npass test_a tol=3\n", err: "bad option"},
		{name: "duplicate", text: "[node]\npass test_a\npass test_a\n", err: "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "e.txt")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := ReadExpectations(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := e.Suites["node"]
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Case != w.Case || g.Skip != w.Skip || g.Reason != w.Reason {
					t.Errorf("entry %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestUpdatedKeepsReasons(t *testing.T) {
	e := &Expectations{Suites: map[string][]Expectation{"node": {
		{Case: "a", Skip: true, Reason: "unsupportable"},
		{Case: "b", Skip: true, Reason: KnownFailurePrefix + "old detail"},
		{Case: "c"},
		{Case: "d", Skip: true, Reason: "now fixed"},
		{Case: "f", Skip: true, Reason: NondeterministicPrefix + "random draws"},
	}}}
	got := e.Updated("node", []string{"a", "b", "c", "d", "e", "f"}, map[string]Outcome{
		"a": {Detail: "x"}, "b": {Detail: "new detail"}, "c": {Detail: "broke"}, "d": {Pass: true}, "e": {Pass: true}, "f": {Pass: true},
	})
	want := []Expectation{
		{Case: "a", Skip: true, Reason: "unsupportable"},
		{Case: "b", Skip: true, Reason: KnownFailurePrefix + "new detail"},
		{Case: "c", Skip: true, Reason: KnownFailurePrefix + "broke"},
		{Case: "d"},
		{Case: "e"},
		{Case: "f", Skip: true, Reason: NondeterministicPrefix + "random draws"}, // passed by chance: stays excluded
	}
	for i := range want {
		if got[i].Case != want[i].Case || got[i].Skip != want[i].Skip || got[i].Reason != want[i].Reason {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
