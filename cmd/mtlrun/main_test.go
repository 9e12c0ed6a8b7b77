package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/internal/version"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

var seed = filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx")

// mtlrun runs the CLI in-process and returns stdout and the error.
func mtlrun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	return out.String(), err
}

func TestTrainExportInspectFlow(t *testing.T) {
	dir := t.TempDir()
	const n, T = 48, 6
	x, y1, y2 := make([]float32, n*T), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i%5) - 2
	}
	for i := range y1 {
		y1[i], y2[i] = x[i*T+T-1], x[i*T]
	}
	data := filepath.Join(dir, "train.npz")
	if err := tensorio.WriteNPZ(data, map[string]*tensor.Tensor{"input": tensor.From([]int{n, T, 1}, x),
		"output1": tensor.From([]int{n, 1}, y1), "output2": tensor.From([]int{n, 1}, y2)}); err != nil {
		t.Fatal(err)
	}
	trained := filepath.Join(dir, "trained.onnx")
	out, err := mtlrun(t, "train", seed, "--data", data, "--val-split", "0.25", "--loss", "output1=mse,output2=huber",
		"--loss-weights", "output2=0.5", "--epochs", "2", "--batch", "8", "--freeze", "trunk", "--json",
		"--plot", filepath.Join(dir, "curves.png"), "--checkpoint", filepath.Join(dir, "ck"), "--out", trained)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("--json should print one line per epoch, got:\n%s", out)
	}
	var epoch map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &epoch); err != nil || epoch["val"] == nil {
		t.Fatalf("epoch line %q: %v", lines[1], err)
	}
	for _, f := range []string{"curves.png", "ck/state.json", "ck/weights.npz", "trained.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	m, err := importer.Load(trained)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.MetadataValue("mtlrun.train.recipe"); !ok || !strings.Contains(v, `"freeze":"trunk"`) {
		t.Errorf("provenance recipe missing: %q", v)
	}
	if m.Producer != "mtlrun" {
		t.Errorf("producer %q", m.Producer)
	}
	// export pruned to one task, with external data
	pruned := filepath.Join(dir, "only2.onnx")
	if out, err := mtlrun(t, "export", trained, "--out", pruned, "--outputs", "output2", "--external-data", "only2.data", "--external-threshold", "64"); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	pm, err := importer.Load(pruned)
	if err != nil {
		t.Fatal(err)
	}
	if len(pm.Graph.Outputs) != 1 || pm.Graph.Outputs[0].Name != "output2" || pm.Graph.Initializer("head1.weight") != nil {
		t.Errorf("pruned export keeps %v", pm.Graph.Outputs)
	}
	if st, err := os.Stat(filepath.Join(dir, "only2.data")); err != nil || st.Size() == 0 {
		t.Errorf("external data file: %v", err)
	}
	out, err = mtlrun(t, "test", filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm"))
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "3 passed, 0 failed") {
		t.Errorf("test: %v\n%s", err, out)
	}
	out, err = mtlrun(t, "inspect", "--dot", seed)
	if err != nil || !strings.HasPrefix(out, "digraph mtlrun") || !strings.Contains(out, "head output1") {
		t.Errorf("inspect --dot: %v\n%.200s", err, out)
	}
	out, err = mtlrun(t, "inspect", "--dot=false", "--json", seed) // flags persist across in-process runs
	var doc map[string]any
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc["trunk_parameters"].(float64) != 17152 {
		t.Errorf("inspect --json: %v %v", err, doc["trunk_parameters"])
	}
	_, err = mtlrun(t, "add-head", seed, "--name", "output1", "--units", "3", "--out", filepath.Join(dir, "x.onnx"))
	if err == nil || !strings.Contains(err.Error(), "already has an output") {
		t.Errorf("duplicate head name: %v", err)
	}
	_, err = mtlrun(t, "test", filepath.Join(fixtures.RepoRoot(), "testdata", "pytorch", "gru3"), "--atol", "0", "--rtol", "0")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("a failing test must exit 1, got %v", err)
	}
}

// TestBenchConcurrent: bench reports one executor and, with --concurrent,
// several at once, in JSON.
func TestBenchConcurrent(t *testing.T) {
	out, err := mtlrun(t, "bench", filepath.Join(fixtures.RepoRoot(), "models", "mlp4", "model.onnx"), "--batch", "4", "--runs", "20", "--concurrent", "2", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var doc struct {
		Results []benchResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Results) != 2 || doc.Results[1].Runtime != "mtlrun×2" || doc.Results[1].Runs != 40 {
		t.Fatalf("results %+v", doc.Results)
	}
	for _, r := range doc.Results {
		if !(r.RowsPerSecond > 0 && r.MinMillis > 0 && r.P50Millis >= r.MinMillis && r.P99Millis >= r.P50Millis) {
			t.Fatalf("implausible result %+v", r)
		}
	}
	if _, err := mtlrun(t, "bench", seed, "--runs", "5", "--concurrent", "2", "--vs-ort"); err == nil {
		t.Fatal("--concurrent with --vs-ort must be refused")
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := mtlrun(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mtlrun " + version.Version, "go " + goruntime.Version(),
		"platform " + goruntime.GOOS + "/" + goruntime.GOARCH, "kernel set " + linalg.KernelSet()} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	out, err = mtlrun(t, "version", "--json")
	var b buildInfo
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.KernelSet != linalg.KernelSet() || b.Platform == "" {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
}
