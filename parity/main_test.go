package parity

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the onnxruntime worker child that
// isolated checkers start (the running executable, re-executed).
func TestMain(m *testing.M) {
	RunWorkerIfChild()
	os.Exit(m.Run())
}
