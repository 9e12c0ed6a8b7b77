package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate: the committed sgemm_arm64.s is what the generator writes.
func TestGeneratedUpToDate(t *testing.T) {
	got, err := os.ReadFile(filepath.Join("..", "..", "sgemm_arm64.s"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, generate()) {
		t.Fatal("sgemm_arm64.s is stale: run go generate ./ops/linalg")
	}
}

// TestEncodings checks the hand-computed encodings against ones the Go
// assembler's own test data and the Arm reference give.
func TestEncodings(t *testing.T) {
	cases := []struct {
		name      string
		got, want uint32
	}{
		// FMLA V30.2S, V2.2S, V28.S[2] is 0x0f9c185e (cmd/asm arm64enc.s); the
		// 4S form differs in Q (bit 30)
		{"FMLA V30.4S, V2.4S, V28.S[2]", fmlaElem(30, 2, 28, 2), 0x0f9c185e | 1<<30},
		{"FMLA V0.4S, V1.4S, V2.S[0]", fmlaElem(0, 1, 2, 0), 0x4f821020},
		{"FMLA V5.4S, V24.4S, V31.S[3]", fmlaElem(5, 24, 31, 3), 0x4fbf1b05},
		{"FADD V0.4S, V1.4S, V2.4S", faddVec(0, 1, 2), 0x4e22d420},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %#08x, want %#08x", c.name, c.got, c.want)
		}
	}
}
