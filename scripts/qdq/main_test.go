package main

import (
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/testset"
)

// TestSeedQDQ converts the seed model and checks the QDQ int8 model
// against the float model's expected outputs: int8 weights and activations
// (scale max/127) keep the outputs within 0.01 of the float ones (observed
// 0.003), far inside what a broken quantization (wrong scale, axis or zero
// point) would give.
func TestSeedQDQ(t *testing.T) {
	out := t.TempDir()
	if err := run(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm"), out); err != nil {
		t.Fatal(err)
	}
	rs := testset.RunDir(out, testset.Tolerance{RTol: 0, ATol: 0.01})
	if len(rs) != 3 {
		t.Fatalf("%d test sets, want 3", len(rs))
	}
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s: %s %s: %s", r.Dir, r.Output, r.Reason, r.Detail)
		}
	}
}
