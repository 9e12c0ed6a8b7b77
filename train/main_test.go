package train

import (
	"os"
	"testing"

	"github.com/mtlrun/mtlrun/parity"
)

// TestMain lets the test binary serve as the onnxruntime worker child that
// the trainability matrix's isolated parity checkers start (the running
// executable, re-executed).
func TestMain(m *testing.M) {
	parity.RunWorkerIfChild()
	os.Exit(m.Run())
}
