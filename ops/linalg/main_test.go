package linalg

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// testCeiling is the kernel set chosen at init (the CPU's best, or
// MTLRUN_KERNELS): the tests run every set up to it. TestMain sets it.
var testCeiling = SetAVX512

// envTestSets, when set, narrows the tests to the kernel sets it lists
// (comma-separated; still only those up to the ceiling the CPU runs).
// scripts/test.sh runs the emulated AVX2-only CPU with avx2 alone: the
// pure-Go set gains nothing from emulation (it is tested natively) and
// took a third of that section's time.
const envTestSets = "MTLRUN_TEST_SETS"

// testSetWanted reports whether envTestSets lets the tests run set k.
func testSetWanted(k string) bool {
	v := os.Getenv(envTestSets)
	return v == "" || slices.Contains(strings.Split(v, ","), k)
}

// kernelSetLine says which kernel sets the tests run and which they skip,
// and why, so a machine without AVX-512 cannot pass silently untested.
func kernelSetLine() string {
	ran := kernels()
	var skipped []string
	above := false
	for _, k := range kernelSets {
		switch {
		case !cpuHas(k):
			skipped = append(skipped, k+" (this CPU or build lacks it)")
		case above:
			skipped = append(skipped, k+" ("+EnvKernels+"="+testCeiling+")")
		case !testSetWanted(k):
			skipped = append(skipped, k+" ("+envTestSets+"="+os.Getenv(envTestSets)+")")
		}
		if k == testCeiling {
			above = true
		}
	}
	line := "linalg kernel sets: ran " + strings.Join(ran, ", ")
	if len(skipped) > 0 {
		line += "; skipped " + strings.Join(skipped, ", ")
	}
	return line
}

func TestMain(m *testing.M) {
	if err := KernelSetError(); err != nil {
		fmt.Fprintln(os.Stderr, "linalg:", err)
		os.Exit(2)
	}
	testCeiling = KernelSet()
	fmt.Println(kernelSetLine())
	os.Exit(m.Run())
}

func TestKernelSetChoice(t *testing.T) {
	if got := KernelSet(); got != testCeiling {
		t.Fatalf("KernelSet() = %q, want %q", got, testCeiling)
	}
	avail := AvailableKernelSets()
	if len(avail) == 0 || avail[0] != SetGo {
		t.Fatalf("AvailableKernelSets() = %v, want go first", avail)
	}
	for _, k := range avail {
		restore, ok := setKernel(k)
		if !ok || KernelSet() != k {
			t.Errorf("setKernel(%q) = %v, KernelSet() = %q", k, ok, KernelSet())
		}
		restore()
	}
	if KernelSet() != testCeiling {
		t.Fatalf("restore left %q", KernelSet())
	}
	if _, ok := setKernel("sse9"); ok {
		t.Fatal("setKernel accepted an unknown set")
	}
}

// TestEnvKernelsRefusal re-runs the choice with MTLRUN_KERNELS values the
// CPU may lack or that do not exist.
func TestEnvKernelsRefusal(t *testing.T) {
	saveName, saveErr := kernelName, kernelSetErr
	defer func() { applyKernelSet(saveName); kernelSetErr = saveErr }()
	avail := AvailableKernelSets()
	best := avail[len(avail)-1]
	cases := []struct {
		env, want string
		fails     bool
	}{
		{"", best, false},
		{"go", SetGo, false},
		{"sse9", best, true},
	}
	for _, k := range kernelSets {
		cases = append(cases, struct {
			env, want string
			fails     bool
		}{k, map[bool]string{true: k, false: best}[cpuHas(k)], !cpuHas(k)})
	}
	for _, c := range cases {
		t.Setenv(EnvKernels, c.env)
		kernelSetErr = nil
		stderr := os.Stderr
		os.Stderr, _ = os.Open(os.DevNull)
		chooseKernelSet()
		os.Stderr.Close()
		os.Stderr = stderr
		if KernelSet() != c.want || (KernelSetError() != nil) != c.fails {
			t.Errorf("%s=%q: set %q, error %v; want %q, error %v", EnvKernels, c.env, KernelSet(), KernelSetError(), c.want, c.fails)
		}
	}
}
