package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// streamCLI runs `mtlrun stream ...` with the command's flags back at their
// defaults (cobra keeps flag values between in-process runs).
func streamCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd, _, err := rootCmd.Find([]string{"stream"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			var def []string
			if d := strings.Trim(f.DefValue, "[]"); d != "" {
				def = strings.Split(d, ",")
			}
			_ = sv.Replace(def)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	rootCmd.SetIn(strings.NewReader(stdin))
	return mtlrun(t, append([]string{"stream"}, args...)...)
}

// prefixRun is the seed model's output1 over x[:, :n] (x is [batch, T, 1]).
func prefixRun(t *testing.T, sess *runtime.Session, x []float32, batch, T, n int) []float32 {
	t.Helper()
	p := make([]float32, 0, batch*n)
	for b := 0; b < batch; b++ {
		p = append(p, x[b*T:b*T+n]...)
	}
	out, err := sess.Run(map[string]*tensor.Tensor{"input": tensor.From([]int{batch, n, 1}, p)}, "output1")
	if err != nil {
		t.Fatal(err)
	}
	return out["output1"].Float32s()
}

func TestStreamCommand(t *testing.T) {
	m, err := importer.Load(seed)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const batch, T = 2, 30
	x := make([]float32, batch*T)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	in := filepath.Join(dir, "x.npz")
	if err := tensorio.WriteNPZ(in, map[string]*tensor.Tensor{"input": tensor.From([]int{batch, T, 1}, x)}); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "out.npz")
	out, err := streamCLI(t, "", seed, "--input", in, "--out", outFile)
	if err != nil {
		t.Fatalf("stream: %v\n%s", err, out)
	}
	res, err := tensorio.ReadNPZ(outFile)
	if err != nil {
		t.Fatal(err)
	}
	o1 := res["output1"]
	if o1 == nil || !tensor.SameShape(o1.Shape, []int{batch, T, 1}) || res["output2"] == nil {
		t.Fatalf("outputs %v, want output1 and output2 of shape [2 30 1]\n%s", res, out)
	}
	got := o1.Float32s()
	for _, n := range []int{1, 15, T} {
		want := prefixRun(t, sess, x, batch, T, n)
		for b := 0; b < batch; b++ {
			if d := math.Abs(float64(got[b*T+n-1] - want[b])); d > 1e-6 {
				t.Errorf("row %d step %d: stream %g, prefix run %g", b, n-1, got[b*T+n-1], want[b])
			}
		}
	}

	// --csv: a header row, then one step per line
	out, err = streamCLI(t, "value\n0.5\n-1\n\n2\n", seed, "--csv", "--outputs", "output1")
	if err != nil {
		t.Fatalf("stream --csv: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "output1" {
		t.Fatalf("--csv printed:\n%s", out)
	}
	feed := []float32{0.5, -1, 2}
	for i := 1; i <= 3; i++ {
		v, err := strconv.ParseFloat(lines[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		want := prefixRun(t, sess, feed, 1, 3, i)[0]
		if math.Abs(v-float64(want)) > 1e-6 {
			t.Errorf("--csv line %d: %g, prefix run %g", i, v, want)
		}
	}
	if _, err := streamCLI(t, "1,2\n", seed, "--csv"); err == nil || !strings.Contains(err.Error(), "takes 1 per step") {
		t.Errorf("--csv with 2 values per row: %v", err)
	}

	// --bench
	out, err = streamCLI(t, "", seed, "--bench", "--runs", "5", "--windows", "5,10", "--json")
	if err != nil {
		t.Fatalf("stream --bench: %v\n%s", err, out)
	}
	var doc struct {
		Results []benchResult `json:"results"`
		Kernels string        `json:"kernels"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Results) != 3 || doc.Kernels == "" {
		t.Fatalf("--bench --json: %v\n%s", err, out)
	}
	// (allocations are asserted by runtime's TestStreamStepAllocatesNothing:
	// here other goroutines of the test binary count too)
	for _, r := range doc.Results {
		if !(r.MinMillis > 0 && r.P50Millis >= r.MinMillis && r.P99Millis >= r.P50Millis) {
			t.Errorf("implausible result %+v", r)
		}
	}

	// a model that looks across time
	bilstm := filepath.Join(fixtures.RepoRoot(), "testdata", "pytorch", "bilstm2_meanpool", "model.onnx")
	if _, err := streamCLI(t, "", bilstm, "--csv"); err == nil || !strings.Contains(err.Error(), "bidirectional") {
		t.Errorf("bidirectional model: %v", err)
	}
}
