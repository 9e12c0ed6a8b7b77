package runtime_test

import (
	"fmt"
	"path/filepath"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all" // register the op set
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Load a multi-task model and run one of its tasks (the README's example).
func Example() {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		panic(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{}) // safe for concurrent Run
	if err != nil {
		panic(err)
	}
	x := tensor.From([]int{1, 50, 1}, make([]float32, 50))                 // (batch, time, features)
	out, err := sess.Run(map[string]*tensor.Tensor{"input": x}, "output1") // only task output1 is computed
	if err != nil {
		panic(err)
	}
	fmt.Println(out["output1"].Shape, len(out))
	// Output: [1 1] 1
}

// An Executor per worker goroutine reuses its buffers: after the first run
// at a shape, runs allocate nothing. Its results are overwritten by its
// next run, so copy what you keep.
func ExampleSession_NewExecutor() {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "mlp4", "model.onnx"))
	if err != nil {
		panic(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		panic(err)
	}
	ex, err := sess.NewExecutor("price", "churn")
	if err != nil {
		panic(err)
	}
	for batch := 1; batch <= 3; batch++ {
		x := tensor.From([]int{batch, 20}, make([]float32, batch*20))
		out, err := ex.Run(map[string]*tensor.Tensor{"features": x})
		if err != nil {
			panic(err)
		}
		fmt.Println(out["price"].Shape, out["churn"].Shape)
	}
	// Output:
	// [1 1] [1 1]
	// [2 1] [2 1]
	// [3 1] [3 1]
}
