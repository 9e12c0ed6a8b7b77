package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate fails when the committed kernels differ from what
// the generator writes: run `go generate ./ops/linalg` after editing it.
func TestGeneratedUpToDate(t *testing.T) {
	for name, want := range outputs() {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("ops/linalg/%s is stale: run go generate ./ops/linalg", name)
		}
	}
}

// TestRegisterBudget: every AVX2 kernel fits the 16 YMM registers (regs
// panics otherwise) and no two roles share a register.
func TestRegisterBudget(t *testing.T) {
	for _, tb := range kernelTable() {
		for _, k := range []kernel{{k: tb.k, s: tb.s, rows: tb.rows, chunks: 1}, {k: tb.k, s: tb.s, rows: 1, chunks: 1}} {
			r := k.regs()
			seen := map[string]string{}
			roles := map[string][]string{"acc": r.acc, "panel": r.panel, "bcast": r.bcast}
			for role, list := range roles {
				for _, x := range list {
					if prev, ok := seen[x]; ok {
						t.Errorf("%s: %s is both %s and %s", k.name(), x, prev, role)
					}
					seen[x] = role
				}
			}
		}
	}
}
