package conformance

import "testing"

// TestNode runs the in-scope official ONNX node tests.
func TestNode(t *testing.T) {
	requireData(t, Node)
	RequireFixture(t, InScopePath(), "the in-scope case list is read from the project's shared folder, ../shared beside the repository (or set MTLRUN_SHARED)")
	cases, err := Cases(Node)
	if err != nil {
		t.Fatal(err)
	}
	runSuite(t, Node, cases)
}
