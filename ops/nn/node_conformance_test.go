//go:build nnconformance

package nn_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/mtlrun/mtlrun/testset"
)

// TestNodeCases runs the official ONNX node tests of this package's ops
// (go test -tags nnconformance ./ops/nn/ -run NodeCases). It is behind a
// build tag because it links every op family.
func TestNodeCases(t *testing.T) {
	root := "/usr/share/libonnx-testdata/data/node"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Skip("libonnx-testdata not installed")
	}
	re := regexp.MustCompile(`^test_(gemm|matmul|einsum|softmax|logsoftmax|argmax|argmin|reduce_|batchnorm|layer_norm|mvn|conv|maxpool|averagepool|global|basic_conv|instancenorm|lrn)`)
	pass, total := 0, 0
	for _, e := range entries {
		if !re.MatchString(e.Name()) {
			continue
		}
		total++
		ok := true
		for _, r := range testset.RunDir(filepath.Join(root, e.Name()), testset.Default) {
			if !r.Pass {
				ok = false
				t.Errorf("%s: %s %s", e.Name(), r.Reason, r.Detail)
			}
		}
		if ok {
			pass++
		}
	}
	t.Logf("%d/%d node cases pass", pass, total)
}
