package rnn

import (
	"fmt"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
)

// TestProjChunkSameBits: a fused run that projects its inputs a few steps
// at a time (projChunk) gives the same bits as one projecting all steps
// at once, for every direction and layout, sequential and parallel (rows
// split into chunks), with the steps not a multiple of the chunk, through
// a reused arena whose buffers hold another run's data.
func TestProjChunkSameBits(t *testing.T) {
	savedChunk, savedWork := projChunk, parallelWork
	defer func() { projChunk, parallelWork = savedChunk, savedWork }()
	parallelWork = 0
	for _, c := range arenaCases() {
		if c.lens || c.peep || c.in <= fuseMaxIn {
			continue // sequence_lens and narrow inputs project nothing per chunk
		}
		for _, threads := range []int{1, 3} {
			rc := c.randCase(5, 7, 13, 9)
			other := c.randCase(6, 7, 13, 9)
			projChunk = 1 << 30
			want := mustRun(t, buildOp(t, rc, threads, true), rc.inputs)
			for _, steps := range []int{1, 2, 3} {
				// a chunk of `steps` steps for the widest job (13 rows)
				g := map[string]int{"LSTM": 4, "GRU": 3, "RNN": 1}[c.op]
				projChunk = steps * 4 * 13 * g * 9
				op := buildOp(t, rc, threads, true)
				var a ops.Arena
				for k := 0; k < 2; k++ {
					a.Reset()
					if _, err := op.RunWith(&a, other.inputs); err != nil {
						t.Fatal(err)
					}
					a.Reset()
					got, err := op.RunWith(&a, rc.inputs)
					if err != nil {
						t.Fatal(err)
					}
					equalOutputs(t, fmt.Sprintf("%s threads %d steps %d", c.name, threads, steps), want, got)
				}
			}
		}
	}
}
