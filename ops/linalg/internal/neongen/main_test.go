package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate: the committed files are what the generator writes.
func TestGeneratedUpToDate(t *testing.T) {
	for name, want := range outputs() {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go run ./internal/neongen in ops/linalg", name)
		}
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
		// the rest from the Arm A64 reference's field layouts, checked
		// against go tool objdump of the generated code
		{"FMLS V0.4S, V16.4S, V29.S[1]", fmlsElem(0, 16, 29, 1), 0x4fbd5200},
		{"FSUB V0.4S, V16.4S, V0.4S", enc3("FSUB", 0, 16, 0), 0x4ea0d600},
		{"FMUL V18.4S, V0.4S, V0.4S", enc3("FMUL", 18, 0, 0), 0x6e20dc12},
		{"FDIV V0.4S, V16.4S, V0.4S", enc3("FDIV", 0, 16, 0), 0x6e20fe00},
		{"FMIN V0.4S, V0.4S, V16.4S", enc3("FMIN", 0, 0, 16), 0x4eb0f400},
		{"FMAX V0.4S, V0.4S, V16.4S", enc3("FMAX", 0, 0, 16), 0x4e30f400},
		{"FCMGT V1.4S, V2.4S, V3.4S", enc3("FCMGT", 1, 2, 3), 0x6ea3e441},
		{"FCMEQ V1.4S, V2.4S, V3.4S", enc3("FCMEQ", 1, 2, 3), 0x4e23e441},
		{"FRINTM V16.4S, V16.4S", enc2("FRINTM", 16, 16), 0x4e219a10},
		{"FCVTZS V16.4S, V16.4S", enc2("FCVTZS", 16, 16), 0x4ea1ba10},
		{"FNEG V0.4S, V0.4S", enc2("FNEG", 0, 0), 0x6ea0f800},
		{"FABS V1.4S, V2.4S", enc2("FABS", 1, 2), 0x4ea0f841},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %#08x, want %#08x", c.name, c.got, c.want)
		}
	}
}
