package rnn

import (
	"math"
	"testing"
)

// TestTrace: a traced run gives bitwise the outputs of Run, on the fused
// and the general paths, and records as each step's starting state the
// initial state (first step) or the hidden state Y holds for the time
// processed just before. An LSTM without peepholes keeps its gates, on
// both paths and on every kernel set, and they give each step's output, h = o⊙tanh(c'), bitwise.
func TestTrace(t *testing.T) {
	defer func() { forceFused = 0 }()
	const T, N = 5, 6
	for _, mode := range []int{-1, 1} {
		forceFused = mode
		for _, c := range arenaCases() {
			for _, H := range []int{5, 16} {
				rc := c.randCase(11, T, N, H)
				op := buildOp(t, rc, 1, true)
				want := mustRun(t, op, rc.inputs)
				var tr Trace[float32]
				got, err := RunTraced(op, rc.inputs, &tr)
				if err != nil {
					t.Fatal(err)
				}
				kept := tr.Gates(0) != nil
				if kept != (c.op == "LSTM" && !c.peep) {
					t.Fatalf("%s: gates kept %v", c.name, kept)
				}
				for i := range want {
					a, b := got[i].Float32s(), want[i].Float32s()
					for k := range b {
						if math.Float32bits(a[k]) != math.Float32bits(b[k]) {
							t.Fatalf("%s H=%d fused mode %d: output %d element %d: traced %v, Run %v", c.name, H, mode, i, k, a[k], b[k])
						}
					}
				}
				if tr.Cell != rc.op || tr.Seq != T || tr.Batch != N || tr.Hidden != H || tr.Input != c.in || (tr.Lens != nil) != c.lens {
					t.Fatalf("%s: trace config %+v", c.name, tr)
				}
				y := got[0].Float32s()
				nd := tr.Dirs()
				yAt := func(t, d, b int) []float32 {
					if tr.Layout == 0 {
						return y[((t*nd+d)*N+b)*H:][:H]
					}
					return y[((b*T+t)*nd+d)*H:][:H]
				}
				for d := 0; d < nd; d++ {
					for b := 0; b < N; b++ {
						L := T
						if tr.Lens != nil {
							L = tr.Lens[b]
						}
						for k := 0; k < L; k++ {
							ti, prev := k, k-1
							if tr.Reverse[d] {
								ti, prev = L-1-k, L-k
							}
							var start []float32
							switch {
							case k > 0:
								start = yAt(prev, d, b)
							case rc.inputs[5] != nil:
								h0 := rc.inputs[5].Float32s()
								if tr.Layout == 0 {
									start = h0[(d*N+b)*H:][:H]
								} else {
									start = h0[(b*nd+d)*H:][:H]
								}
							default:
								start = make([]float32, H)
							}
							if kept {
								g, tc := tr.Gates(d)[4*(ti*N+b)*H:][:4*H], tr.TanhC(d)[(ti*N+b)*H:][:H]
								for j, v := range yAt(ti, d, b) {
									if o := g[H+j] * tc[j]; math.Float32bits(o) != math.Float32bits(v) {
										t.Fatalf("%s H=%d: dir %d row %d time %d: o⊙tanh(c')[%d] = %v from the kept gates, h = %v", c.name, H, d, b, ti, j, o, v)
									}
								}
							}
							for j, v := range tr.H(d, ti, b) {
								if math.Float32bits(v) != math.Float32bits(start[j]) {
									t.Fatalf("%s H=%d mode %d: dir %d row %d time %d starts from h[%d] = %v, want %v", c.name, H, mode, d, b, ti, j, v, start[j])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestTraceOmitY: a traced run told to leave out Y returns no Y and
// otherwise bitwise the outputs, recorded states and kept gates of one
// that computes it, on the fused and the general paths; a later run of
// the same trace computes Y again once told to.
func TestTraceOmitY(t *testing.T) {
	defer func() { forceFused = 0 }()
	const T, N, H = 5, 6, 16
	same := func(a, b []float32) bool {
		if len(a) != len(b) {
			return false
		}
		for k := range a {
			if math.Float32bits(a[k]) != math.Float32bits(b[k]) {
				return false
			}
		}
		return true
	}
	for _, mode := range []int{-1, 1} {
		forceFused = mode
		for _, c := range arenaCases() {
			rc := c.randCase(12, T, N, H)
			op := buildOp(t, rc, 1, true)
			var full, omit Trace[float32]
			want, err := RunTraced(op, rc.inputs, &full)
			if err != nil {
				t.Fatal(err)
			}
			omit.OmitY(true)
			got, err := RunTraced(op, rc.inputs, &omit)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != nil {
				t.Fatalf("%s mode %d: Y computed though omitted", c.name, mode)
			}
			for i := 1; i < len(want); i++ {
				if !same(got[i].Float32s(), want[i].Float32s()) {
					t.Fatalf("%s mode %d: output %d differs without Y", c.name, mode, i)
				}
			}
			for d := 0; d < full.Dirs(); d++ {
				if !same(omit.Hs(d), full.Hs(d)) || (c.op == "LSTM" && !same(omit.Cs(d), full.Cs(d))) ||
					!same(omit.Gates(d), full.Gates(d)) || !same(omit.TanhC(d), full.TanhC(d)) {
					t.Fatalf("%s mode %d: direction %d: recorded states or gates differ without Y", c.name, mode, d)
				}
			}
			omit.OmitY(false)
			if again, err := RunTraced(op, rc.inputs, &omit); err != nil || again[0] == nil || !same(again[0].Float32s(), want[0].Float32s()) {
				t.Fatalf("%s mode %d: Y after OmitY(false): %v", c.name, mode, err)
			}
		}
	}
}
