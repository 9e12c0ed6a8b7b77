// Package conformance checks mtlrun against the official ONNX backend tests:
// the upstream node tests vendored in testdata/onnx-node (the cases named in
// onnx-node-inscope.txt), and, as Debian's libonnx-testdata ships them, the
// node tests named in node-inscope.txt and the pytorch-converted,
// pytorch-operator and simple suites (the cases whose ops are all in mtlrun's
// op set). Every case goes through testset.RunDir, the code path of
// `mtlrun test`, at the ONNX backend tolerances (rtol 1e-3, atol 1e-7).
//
// expectations.txt says, per suite, which cases must pass and which are
// skipped with a reason; the tests fail when an expected case fails and when
// a skipped case starts passing. The package's non-test code is the small
// library shared by the tests and by cmd/report, which writes
// docs/CONFORMANCE.md.
package conformance

import (
	"testing"

	"github.com/mtlrun/mtlrun/internal/fixtures"
)

// HowToInstallTestData tells a user how to get Debian's ONNX test data.
const HowToInstallTestData = "install Debian's ONNX test data with `sudo apt-get install libonnx-testdata` (bash scripts/test.sh does this)"

// RequireFixture skips the test with a message saying how to install path's
// content, unless MTLRUN_REQUIRE_FIXTURES=1 (as CI sets it), in which case a
// missing fixture fails the test. It returns only when path exists.
func RequireFixture(t testing.TB, path, howToInstall string) {
	t.Helper()
	fixtures.Require(t, path, howToInstall)
}
