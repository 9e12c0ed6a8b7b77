package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestAVX2KernelsNeedNoAVX512: the AVX2 functions of every amd64 assembly
// file use only what an AVX2+FMA CPU without AVX-512 decodes: no vector
// register above 15, no ZMM, no mask register, no EVEX-only forms. (This
// machine has AVX-512, so running the kernels cannot catch it.)
func TestAVX2KernelsNeedNoAVX512(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "*_amd64.s"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no assembly found: %v", err)
	}
	evex := regexp.MustCompile(`\b[XY](1[6-9]|2[0-9]|3[01])\b|\bZ[0-9]+\b|\bK[0-7]\b|\.BCST|\.Z\b|\bKMOV|\bVPXORD\b|\bVPXORQ\b|\bVMOVDQU(32|64)\b|\bVSCALEFPS\b|\bVRNDSCALEPS\b|\bVRCP14PS\b`)
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fn := ""
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "TEXT ") {
				fn = strings.Fields(line)[1]
				if strings.Contains(fn, "AVX2") {
					checked++
				}
				continue
			}
			if strings.HasPrefix(line, "#define") || strings.HasPrefix(line, "//") {
				fn = "" // macros and comments between functions
				continue
			}
			code, _, _ := strings.Cut(line, "//")
			if strings.Contains(fn, "AVX2") && evex.MatchString(code) {
				t.Errorf("%s:%d: %s needs AVX-512: %s", filepath.Base(f), i+1, fn, strings.TrimSpace(code))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no AVX2 functions found")
	}
}
