package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Feed the seed model one observation at a time: each Step costs one LSTM
// step, and its outputs equal a full run over every observation so far.
func ExampleSession_NewStream() {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		panic(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		panic(err)
	}
	st, err := sess.NewStream("output1")
	if err != nil {
		panic(err) // a *runtime.StreamError names the node that looks across time
	}
	series := []float32{0.1, 0.4, -0.2, 0.3}
	x := tensor.From([]int{1, 1, 1}, []float32{0}) // [batch, new steps, features]
	var last float32
	for _, v := range series {
		x.Float32s()[0] = v
		out, err := st.Step(map[string]*tensor.Tensor{"input": x})
		if err != nil {
			panic(err)
		}
		last = out["output1"].Float32s()[0]
	}
	full, err := sess.Run(map[string]*tensor.Tensor{"input": tensor.From([]int{1, 4, 1}, series)}, "output1")
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Steps(), math.Abs(float64(last-full["output1"].Float32s()[0])) <= 1e-6)

	// the state moves between processes as bytes
	state, _ := st.State()
	other, _ := sess.NewStream("output1")
	fmt.Println(other.Restore(state) == nil, other.Steps())

	// a bidirectional model is refused with the reason
	bi, _ := importer.Load(filepath.Join(fixtures.RepoRoot(), "testdata", "pytorch", "bilstm2_meanpool", "model.onnx"))
	bs, _ := runtime.NewSession(bi, runtime.Options{})
	_, err = bs.NewStream()
	var se *runtime.StreamError
	fmt.Println(errors.As(err, &se), se.OpType)
	// Output:
	// 4 true
	// true 4
	// true LSTM
}
