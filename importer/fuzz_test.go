package importer

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// The fuzz targets run briefly in CI (scripts/test.sh):
//
//	go test ./importer -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s
//
// Decoding must never panic. A model that decodes is also compiled and run on
// zero-filled inputs (symbolic dims = 2); errors are fine, panics are not. A
// kernel panic is turned into a NodeError by the runtime; set
// MTLRUN_FUZZ_STRICT=1 to make those fail the fuzz run too (to hunt them).

// fuzzSymDim is the size given to symbolic and unknown dims.
var fuzzSymDim = 2

// fuzzMaxElements bounds the work of one fuzz input.
const fuzzMaxElements = 1_000_000

// seedModelFiles lists the real models the fuzzers start from: the repo's
// sample models and test fixtures and, when present, the shared Keras exports.
func seedModelFiles(t testing.TB) []string {
	root := fixtures.RepoRoot()
	var files []string
	glob := func(pattern string) {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	glob(filepath.Join(root, "models", "*", "model.onnx"))
	_ = filepath.WalkDir(filepath.Join(root, "testdata"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "model.onnx" {
			files = append(files, p)
		}
		return nil
	})
	glob(filepath.Join(fixtures.Shared(), "testdata", "keras", "*", "model.onnx"))
	if len(files) == 0 {
		t.Logf("no model files found under %s", root)
	}
	return files
}

func FuzzDecode(f *testing.F) {
	for _, p := range seedModelFiles(f) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, m := range seedModels() {
		f.Add(marshal(f, m))
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x08\x3a\x00"))
	strict := os.Getenv("MTLRUN_FUZZ_STRICT") == "1"
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, "")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		exerciseModel(t, m, strict)
	})
}

// exerciseModel compiles m and runs it once on zero inputs, failing only on
// a panic (or, when strict, a kernel panic the runtime recovered).
func exerciseModel(t *testing.T, m *graph.Model, strict bool) {
	s, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		return
	}
	if !cheapToRun(m.Graph) {
		return
	}
	inputs := map[string]*tensor.Tensor{}
	for _, v := range m.Graph.FeedInputs() {
		x, ok := zeroInput(v)
		if !ok {
			return
		}
		inputs[v.Name] = x
	}
	_, err = s.Run(inputs)
	if err != nil && strict && strings.Contains(err.Error(), "kernel panicked") {
		t.Fatalf("kernel panic: %v", err)
	}
}

// zeroInput makes a zero tensor matching a declared input, with every
// symbolic or unknown dim set to 2.
func zeroInput(v graph.ValueInfo) (*tensor.Tensor, bool) {
	dt := v.DType
	if dt == tensor.Undefined {
		dt = tensor.Float32
	}
	if !dt.Supported() {
		return nil, false
	}
	shape := []int{}
	for _, d := range v.Shape {
		n := fuzzSymDim
		if d.Known() {
			if d.Value > fuzzMaxElements {
				return nil, false
			}
			n = int(d.Value)
		}
		shape = append(shape, n)
	}
	if n, err := tensor.NumElements(shape); err != nil || n > fuzzMaxElements {
		return nil, false
	}
	t, err := tensor.New(dt, shape)
	return t, err == nil
}

// cheapToRun bounds one fuzz input's work: no declared value or constant
// above fuzzMaxElements, and no integer constant that a kernel could turn
// into a huge allocation or loop (as a shape, repeat count or trip count):
// every value within ±65536 and short (shape-like) lists with a product below
// 2^22, except the ±(2^31-1) and ±2^63 sentinels that Slice ends use.
func cheapToRun(g *graph.Graph) bool {
	total := 0
	okInts := func(vals []int64) bool {
		prod := 1.0
		for _, v := range vals {
			a := math.Abs(float64(v))
			if a >= math.MaxInt32 {
				continue
			}
			if a > 1<<16 {
				return false
			}
			prod *= max(a, 1)
		}
		return len(vals) > 8 || prod <= 1<<22
	}
	okTensor := func(t *tensor.Tensor) bool {
		if t == nil {
			return true
		}
		total += t.Len()
		if total > fuzzMaxElements {
			return false
		}
		if !t.DType.IsInteger() {
			return true
		}
		vals, err := tensor.AsInt64(t)
		return err == nil && okInts(vals)
	}
	declared := func(vs []graph.ValueInfo) bool {
		for _, v := range vs {
			n := 1.0
			for _, d := range v.Shape {
				if d.Known() {
					n *= float64(d.Value)
				} else {
					n *= 2
				}
			}
			if n > fuzzMaxElements {
				return false
			}
		}
		return true
	}
	var walk func(g *graph.Graph, depth int) bool
	walk = func(g *graph.Graph, depth int) bool {
		if depth > 8 || !declared(g.Inputs) || !declared(g.Outputs) || !declared(g.ValueInfo) {
			return false
		}
		for _, t := range g.Initializers {
			if !okTensor(t) {
				return false
			}
		}
		for _, n := range g.Nodes {
			for _, a := range n.Attrs {
				if !okTensor(a.Tensor) {
					return false
				}
				for _, t := range a.Tensors {
					if !okTensor(t) {
						return false
					}
				}
				if !okInts(a.Ints) || !okInts([]int64{a.Int}) {
					return false
				}
			}
			for _, sg := range n.Subgraphs() {
				if !walk(sg.Graph, depth+1) {
					return false
				}
			}
		}
		return true
	}
	return walk(g, 0)
}

func FuzzReadTensor(f *testing.F) {
	root := fixtures.RepoRoot()
	var pbs []string
	for _, pattern := range []string{"models/*/test_data_set_0/*.pb", "testdata/*/*/test_data_set_0/*.pb"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		pbs = append(pbs, m...)
	}
	if len(pbs) > 40 {
		pbs = pbs[:40]
	}
	for _, p := range pbs {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seeds := []*onnxpb.TensorProto{
		floats("f", []int64{2, 3}, 1, 2, 3, 4, 5, 6),
		int64s("i", []int64{3}, -1, 0, 1<<40),
		{Name: proto.String("r"), DataType: proto.Int32(tFloat), Dims: []int64{2}, RawData: rawF32(1, 2)},
		{Name: proto.String("d"), DataType: proto.Int32(tDouble), Dims: []int64{1}, DoubleData: []float64{math.Pi}},
		{Name: proto.String("b"), DataType: proto.Int32(tBool), Dims: []int64{2}, Int32Data: []int32{0, 1}},
		{Name: proto.String("h"), DataType: proto.Int32(tFloat16), Dims: []int64{1}, Int32Data: []int32{0x3c00}},
		{Name: proto.String("s"), DataType: proto.Int32(8), Dims: []int64{2}, StringData: [][]byte{[]byte("a"), []byte("bc")}},
		{Name: proto.String("u"), DataType: proto.Int32(13), Dims: []int64{1}, Uint64Data: []uint64{1 << 63}},
		{Name: proto.String("z"), DataType: proto.Int32(tFloat), Dims: []int64{0, 1 << 40}},
	}
	for _, s := range seeds {
		f.Add(marshal(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := DecodeTensor(data, "")
		if err != nil {
			return
		}
		if err := x.Validate(); err != nil {
			t.Fatalf("decoded an invalid tensor %v: %v", x, err)
		}
		// every element costs at least a quarter byte of input (2-bit
		// types pack four to a byte, in raw_data and in each int32_data
		// entry): a decoded tensor can never be a runaway allocation
		if n := x.Len(); n > 0 && n > 4*len(data) {
			t.Fatalf("%d elements from %d bytes", n, len(data))
		}
	})
}
