package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHarness runs models at batch 1 for a few runs through both runtimes
// and checks that the table has a row for them and that gonnx agrees with
// mtlrun. When gonnx cannot run a model the subtest is skipped with gonnx's
// reasons.
func TestHarness(t *testing.T) {
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{root: root, runs: 3, warmup: 1, time: 50, seed: 1, alone: true}
	for _, name := range []string{"mlp4", "seed_lstm"} {
		t.Run(name, func(t *testing.T) {
			specs, err := parseModels(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := runCase(cfg, specs[0], 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.MtlrunError != "" {
				t.Fatalf("mtlrun cannot run %s: %s", name, r.MtlrunError)
			}
			if r.MtlrunP50us <= 0 || r.MtlrunP99us < r.MtlrunP50us {
				t.Errorf("mtlrun p50 %v p99 %v", r.MtlrunP50us, r.MtlrunP99us)
			}
			var buf bytes.Buffer
			writeMarkdown(&buf, environment(cfg), []Result{r})
			if !strings.Contains(buf.String(), "| "+name+" | 1 | ") {
				t.Errorf("no row for %s in\n%s", name, buf.String())
			}
			if r.GonnxError != "" {
				t.Skipf("gonnx cannot run %s (the table reports this as a failure): %s", name, r.GonnxError)
			}
			if r.Runs != 3 || r.GonnxP50us <= 0 || r.RatioP50 <= 0 {
				t.Errorf("gonnx result %+v", r)
			}
			if r.MaxAbsDiff > 1e-4 || r.CompareNote != "" {
				t.Errorf("gonnx differs from mtlrun by %g (%s); per output %v", r.MaxAbsDiff, r.CompareNote, r.PerOutput)
			}
		})
	}
}

func TestParseModels(t *testing.T) {
	if _, err := parseModels("nope"); err == nil {
		t.Error("unknown model name accepted")
	}
	s, err := parseModels("gru3, testdata/x/model.onnx")
	if err != nil || len(s) != 2 || s[0].Path != "testdata/pytorch/gru3/model.onnx" || s[1].Name != "x" {
		t.Errorf("parseModels = %+v, %v", s, err)
	}
}
