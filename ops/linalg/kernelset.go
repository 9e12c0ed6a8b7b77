package linalg

import (
	"fmt"
	"os"
	"strings"
)

// EnvKernels is the environment variable that forces a kernel set lower
// than the CPU's best: "go" (pure Go), on amd64 "avx2" (AVX2+FMA) or
// "avx512" (AVX-512 F+VL), on arm64 "neon" (Advanced SIMD). It is read once, when the package initialises; tests,
// `mtlrun bench` and every library user see the same choice. A set the
// CPU (or a purego build) lacks is refused: the best available set runs
// instead, KernelSetError says why, and one line goes to stderr.
const EnvKernels = "MTLRUN_KERNELS"

// Kernel set names, lowest first (neon and the AVX sets never meet).
const (
	SetGo     = "go"
	SetNEON   = "neon"
	SetAVX2   = "avx2"
	SetAVX512 = "avx512"
)

// kernelSets lists every set, lowest first.
var kernelSets = []string{SetGo, SetNEON, SetAVX2, SetAVX512}

// kernelSetErr is why EnvKernels was not honoured, nil if it was or is unset.
var kernelSetErr error

// KernelSet names the kernel set in use: "avx512", "avx2", "neon" or "go".
func KernelSet() string { return kernelName }

// KernelSetError reports why MTLRUN_KERNELS was refused (an unknown name,
// or a set this CPU or build lacks); nil when it was honoured or unset.
func KernelSetError() error { return kernelSetErr }

// AvailableKernelSets lists the sets this CPU and build can run, lowest first.
func AvailableKernelSets() []string {
	var out []string
	for _, s := range kernelSets {
		if cpuHas(s) {
			out = append(out, s)
		}
	}
	return out
}

// chooseKernelSet applies EnvKernels (when set) to the CPU's best set.
func chooseKernelSet() {
	best := SetGo
	for _, s := range kernelSets {
		if cpuHas(s) {
			best = s
		}
	}
	want := strings.TrimSpace(os.Getenv(EnvKernels))
	if want == "" {
		applyKernelSet(best)
		return
	}
	known := false
	for _, s := range kernelSets {
		known = known || s == want
	}
	switch {
	case !known:
		kernelSetErr = fmt.Errorf("%s=%q: unknown kernel set (want one of %s)", EnvKernels, want, strings.Join(kernelSets, ", "))
	case !cpuHas(want):
		kernelSetErr = fmt.Errorf("%s=%s: this CPU or build cannot run it (available: %s)", EnvKernels, want, strings.Join(AvailableKernelSets(), ", "))
	}
	if kernelSetErr != nil {
		fmt.Fprintf(os.Stderr, "mtlrun: %v; using %s\n", kernelSetErr, best)
		applyKernelSet(best)
		return
	}
	applyKernelSet(want)
}

func init() { chooseKernelSet() }
