// Command ortavx2 writes a copy of the onnxruntime 1.24.1 library whose
// kernel dispatch (MLAS) skips its AVX-512 kernels, so that on an AVX-512
// machine onnxruntime runs the AVX2/FMA3 kernels it runs on an AVX2-only
// server. mtlrun's own set is forced with MTLRUN_KERNELS=avx2; with this
// copy both sides of `mtlrun bench --vs-ort` run what an AVX2-only server
// runs (docs/PERFORMANCE.md, "onnxruntime on its AVX2 kernels").
//
//	go run ./scripts/ortavx2 [SRC_LIB DST_LIB]
//	ONNXRUNTIME_LIB=$PWD/.cache/onnxruntime-avx2/libonnxruntime.so.1 MTLRUN_KERNELS=avx2 mtlrun bench MODEL --vs-ort
//
// Without arguments it reads the library mtlrun's parity checks load
// (parity.LibraryPath: $ONNXRUNTIME_LIB or .cache/onnxruntime/, from
// scripts/install-onnxruntime.sh) and writes the copy to
// onnxruntime-avx2/libonnxruntime.so.1 beside that folder, printing its path.
//
// MLAS picks its kernels once, in its platform constructor: after
// checking for AVX2 it tests CPUID leaf 7's AVX512F bit
// (test $0x10000,%r10d) and jumps past the AVX-512 assignments when the
// bit is clear (je rel8), then checks the OS's AVX-512 register state
// (XCR0 & 0xE0). The copy has that conditional jump made unconditional
// (0x74 → 0xEB): one byte, found by the surrounding instruction bytes,
// which must occur exactly once; any other build is refused rather than
// patched blindly. It is a measuring aid for this machine, never a
// library mtlrun loads in production.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mtlrun/mtlrun/parity"
)

// avx512Before and avx512After are the instructions around the branch of
// the AVX512F test in MLAS's platform constructor (onnxruntime 1.24.1,
// linux x64 from onnxruntime-node):
//
//	41 f7 c2 00 00 01 00   test $0x10000,%r10d   (CPUID.7:EBX bit 16, AVX512F)
//	74 ??                  je   <no AVX-512>
//	4c 89 d8               mov  %r11,%rax        (XCR0)
//	48 f7 d0               not  %rax
//	a8 e0                  test $0xe0,%al        (opmask, ZMM state enabled)
var (
	avx512Before = []byte{0x41, 0xf7, 0xc2, 0x00, 0x00, 0x01, 0x00}
	avx512After  = []byte{0x4c, 0x89, 0xd8, 0x48, 0xf7, 0xd0, 0xa8, 0xe0}
)

const (
	opJE  = 0x74 // je rel8
	opJMP = 0xeb // jmp rel8
)

// errNotRecognised says the library is not the build whose check we know.
var errNotRecognised = errors.New("the AVX-512 check of onnxruntime 1.24.1's MLAS was not found exactly once; this tool knows only that build (run on an AVX2-only machine instead)")

// skipAVX512 returns a copy of lib with MLAS's AVX-512 branch taken
// always, or errNotRecognised.
func skipAVX512(lib []byte) ([]byte, error) {
	at := -1
	for i := 0; ; {
		j := bytes.Index(lib[i:], avx512Before)
		if j < 0 {
			break
		}
		p := i + j + len(avx512Before)
		if p+2+len(avx512After) <= len(lib) && lib[p] == opJE && bytes.Equal(lib[p+2:p+2+len(avx512After)], avx512After) {
			if at >= 0 {
				return nil, errNotRecognised
			}
			at = p
		}
		i = i + j + 1
	}
	if at < 0 {
		return nil, errNotRecognised
	}
	out := bytes.Clone(lib)
	out[at] = opJMP
	return out, nil
}

func run(src, dst string) error {
	lib, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	out, err := skipAVX512(lib)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// written whole under a temporary name, then renamed: a reader never
	// sees half a library
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// defaultPaths are the installed library and where its copy goes.
func defaultPaths() (src, dst string, err error) {
	src, err = parity.LibraryPath()
	if err != nil {
		return "", "", err
	}
	dst = filepath.Join(filepath.Dir(filepath.Dir(src)), "onnxruntime-avx2", filepath.Base(src))
	return src, dst, nil
}

func main() {
	var src, dst string
	switch len(os.Args) {
	case 1:
		var err error
		if src, dst, err = defaultPaths(); err != nil {
			fmt.Fprintln(os.Stderr, "ortavx2:", err)
			os.Exit(1)
		}
	case 3:
		src, dst = os.Args[1], os.Args[2]
	default:
		fmt.Fprintln(os.Stderr, "usage: ortavx2 [SRC_LIB DST_LIB]")
		os.Exit(2)
	}
	if err := run(src, dst); err != nil {
		fmt.Fprintln(os.Stderr, "ortavx2:", err)
		os.Exit(1)
	}
	fmt.Println(dst)
}
