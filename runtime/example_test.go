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
