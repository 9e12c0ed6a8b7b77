package conformance

import (
	"slices"
	"testing"
)

// TestNode runs the in-scope node tests of Debian's libonnx-testdata (onnx 1.12).
func TestNode(t *testing.T) {
	requireData(t, Node)
	cases, err := Cases(Node)
	if err != nil {
		t.Fatal(err)
	}
	runSuite(t, Node, cases)
}

// TestOnnxNode runs the in-scope cases of the vendored upstream node tests;
// their data is in the repository, so this never skips.
func TestOnnxNode(t *testing.T) {
	cases, err := Cases(OnnxNode)
	if err != nil {
		t.Fatal(err)
	}
	runSuite(t, OnnxNode, cases)
}

// TestOnnxNodeScope holds onnx-node-inscope.txt to the scope rule
// (OutOfScope): every vendored case is either listed or out of scope.
func TestOnnxNodeScope(t *testing.T) {
	listed, err := ReadList(ListPath(OnnxNode))
	if err != nil {
		t.Fatal(err)
	}
	in, out, err := ScopeOf(OnnxNodeDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(in)+len(out) < 1800 {
		t.Fatalf("only %d vendored cases in %s", len(in)+len(out), OnnxNodeDir())
	}
	for _, n := range in {
		if !slices.Contains(listed, n) {
			t.Errorf("%s is in scope but not in %s", n, ListPath(OnnxNode))
		}
	}
	for _, n := range listed {
		if why, ok := out[n]; ok {
			t.Errorf("%s is listed in %s but out of scope: %s", n, ListPath(OnnxNode), why)
		} else if !slices.Contains(in, n) {
			t.Errorf("%s is listed in %s but is not a vendored case", n, ListPath(OnnxNode))
		}
	}
}
