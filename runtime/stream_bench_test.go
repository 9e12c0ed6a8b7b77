package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/runtime"
)

// BenchmarkStream compares one new time step of a stream of the seed model
// with full re-runs over windows of 50 and 500 steps (issue 18's target:
// a step costs at most 1/20 and 1/200 of those).
//
//	go test ./runtime -run XXX -bench Stream
func BenchmarkStream(b *testing.B) {
	for _, batch := range []int{1, 5} {
		b.Run(fmt.Sprintf("step/batch=%d", batch), func(b *testing.B) {
			_, st := seedStream(b)
			m := loadStreamModel(b, "models/seed_lstm", false)
			x := streamInputs(m, 1, batch, 1, rand.New(rand.NewPCG(1, 1)))
			if _, err := st.Step(x); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Step(x); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, T := range []int{50, 500} {
			b.Run(fmt.Sprintf("full/T=%d/batch=%d", T, batch), func(b *testing.B) {
				m := loadStreamModel(b, "models/seed_lstm", false)
				s, err := runtime.NewSession(m, runtime.Options{})
				if err != nil {
					b.Fatal(err)
				}
				ex, err := s.NewExecutor()
				if err != nil {
					b.Fatal(err)
				}
				x := streamInputs(m, 1, batch, T, rand.New(rand.NewPCG(1, 1)))
				if _, err := ex.Run(x); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ex.Run(x); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
