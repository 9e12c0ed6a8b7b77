package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestActivationsNaNInf: on every kernel set, NaN stays NaN through the
// vector sigmoid and tanh at every lane position, and ±Inf saturate
// (to within 1e-38).
func TestActivationsNaNInf(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for n := 1; n <= 19; n++ {
			for pos := 0; pos < n; pos++ {
				for _, c := range []struct {
					in, sig, tanh float32
				}{{nan, nan, nan}, {inf, 1, 1}, {-inf, 0, -1}} {
					s, th := make([]float32, n), make([]float32, n)
					s[pos], th[pos] = c.in, c.in
					Sigmoid(s)
					Tanh(th)
					same := func(got, want float32) bool {
						// exp's input clamp leaves sigmoid(-Inf) a subnormal
						return math.Abs(float64(got-want)) <= 1e-38 || (math.IsNaN(float64(got)) && math.IsNaN(float64(want)))
					}
					if !same(s[pos], c.sig) || !same(th[pos], c.tanh) {
						t.Fatalf("%s n=%d lane %d: sigmoid(%v) = %v, tanh = %v; want %v, %v", kern, n, pos, c.in, s[pos], th[pos], c.sig, c.tanh)
					}
				}
			}
		}
		restore()
	}
}

// TestCellsPropagateNaN: a NaN in one row's previous hidden state makes
// that row's new state NaN in every unit, and leaves other rows finite
// (one of them with pre-activations of ±200, which saturate), for
// every cell kind, kernel set, tile size and partial chunk.
func TestCellsPropagateNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, kind := range []string{"lstm", "gru", "gru0", "rnn"} {
			for _, hid := range []int{5, 16, 33} {
				for _, rows := range []int{1, 3, 5} {
					in := 3
					slots := map[string]int{"lstm": 4, "gru": 3, "gru0": 3, "rnn": 1}[kind]
					rng := rand.New(rand.NewPCG(uint64(hid*10+rows), 1))
					w := randVec(rng, slots*hid*in, 0.5)
					r := randVec(rng, slots*hid*hid, 0.5)
					a := &CellArgs{Rows: rows, LdX: in, LdH: hid, LdHOut: hid, LdC: hid, LdInit: slots * hid}
					a.X = randVec(rng, rows*in, 1)
					a.H = randVec(rng, rows*hid, 1)
					a.C = randVec(rng, rows*hid, 1)
					a.Init = randVec(rng, rows*slots*hid, 1)
					a.HOut = make([]float32, rows*hid)
					bad := rows - 1
					a.H[bad*hid+hid/2] = nan
					for j := 0; j < slots*hid && rows > 1; j++ {
						a.Init[j] = float32(200 * (j%3 - 1)) // saturating gates stay finite
					}
					switch kind {
					case "lstm", "gru", "rnn":
						var p CellWeights
						PackCell(&p, make([]float32, CellSize(slots, in, hid)), slots, in, hid, w, r)
						switch kind {
						case "lstm":
							LSTMCell(&p, a)
						case "gru":
							GRUCell(&p, a)
						default:
							RNNCell(&p, a)
						}
					case "gru0":
						var p GRU0Weights
						PackGRU0(&p, make([]float32, GRU0Size(in, hid)), in, hid, w, r)
						GRU0Cell(&p, a, make([]float32, rows*hid), make([]float32, rows*hid))
					}
					name := fmt.Sprintf("%s %s H=%d rows=%d", kern, kind, hid, rows)
					for row := 0; row < rows; row++ {
						for j := 0; j < hid; j++ {
							v := float64(a.HOut[row*hid+j])
							if row == bad && !math.IsNaN(v) {
								t.Fatalf("%s: h'[%d,%d] = %v, want NaN", name, row, j, v)
							}
							if row != bad && (math.IsNaN(v) || math.IsInf(v, 0)) {
								t.Fatalf("%s: h'[%d,%d] = %v, want finite", name, row, j, v)
							}
						}
					}
				}
			}
		}
		restore()
	}
}
