package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/parity"
)

// check builds the instruction bytes of the AVX512F test with branch op.
func check(op byte) []byte {
	b := append(bytes.Clone(avx512Before), op, 0x0e)
	return append(b, avx512After...)
}

func TestSkipAVX512(t *testing.T) {
	pad := bytes.Repeat([]byte{0x90}, 9)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		lib  []byte
		at   int // byte turned into jmp; -1: refused
	}{
		{"once", cat(pad, check(opJE), pad), len(pad) + len(avx512Before)},
		{"at the very start", check(opJE), len(avx512Before)},
		{"absent", cat(pad, pad), -1},
		{"twice", cat(check(opJE), pad, check(opJE)), -1},
		{"other branch", cat(pad, check(0x75), pad), -1},
		{"already patched", cat(pad, check(opJMP), pad), -1},
		{"cut short", check(opJE)[:len(avx512Before)+4], -1},
		{"test without the XCR0 check", cat(avx512Before, []byte{opJE, 0x0e}, pad), -1},
		{"a decoy beside the real one", cat(avx512Before, pad, check(opJE)), 2*len(avx512Before) + len(pad)},
	} {
		out, err := skipAVX512(tc.lib)
		if tc.at < 0 {
			if !errors.Is(err, errNotRecognised) {
				t.Errorf("%s: err %v, want errNotRecognised", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := bytes.Clone(tc.lib)
		want[tc.at] = opJMP
		if !bytes.Equal(out, want) {
			t.Errorf("%s: wrong bytes changed", tc.name)
		}
		if tc.lib[tc.at] != opJE {
			t.Errorf("%s: the input was modified", tc.name)
		}
	}
}

func TestRunWritesCopy(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "lib.so"), filepath.Join(dir, "avx2", "lib.so")
	if err := os.WriteFile(src, check(opJE), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(src, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, check(opJMP)) {
		t.Fatalf("copy %x, %v; want %x", got, err, check(opJMP))
	}
	if err := run(dst, filepath.Join(dir, "again.so")); !errors.Is(err, errNotRecognised) {
		t.Fatalf("patching a patched copy: %v, want errNotRecognised", err)
	}
}

// TestOnnxruntimeLibrary: the library scripts/install-onnxruntime.sh
// installs is the build whose check this tool knows.
func TestOnnxruntimeLibrary(t *testing.T) {
	src, _, err := defaultPaths()
	if err != nil {
		fixtures.Require(t, filepath.Join(fixtures.RepoRoot(), parity.CacheLibrary), "bash scripts/install-onnxruntime.sh")
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := skipAVX512(b); err != nil {
		t.Fatal(err)
	}
}
