package rnn_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/rnn"
	"github.com/mtlrun/mtlrun/tensor"
)

const officialDir = "/usr/share/libonnx-testdata/data/node"

// nodeCase is a single-node model with one test data set, fed straight to
// the kernel.
type nodeCase struct {
	cfg    *ops.Config
	inputs []*tensor.Tensor // by node input slot, nil for omitted
	want   []*tensor.Tensor // by node output slot, nil for unnamed outputs
}

func convertAttr(a *onnxpb.AttributeProto) graph.Attr {
	switch a.GetType() {
	case onnxpb.AttributeProto_FLOAT:
		return graph.Attr{Type: graph.AttrFloat, Float: a.GetF()}
	case onnxpb.AttributeProto_INT:
		return graph.Attr{Type: graph.AttrInt, Int: a.GetI()}
	case onnxpb.AttributeProto_STRING:
		return graph.Attr{Type: graph.AttrString, String: string(a.GetS())}
	case onnxpb.AttributeProto_FLOATS:
		return graph.Attr{Type: graph.AttrFloats, Floats: a.GetFloats()}
	case onnxpb.AttributeProto_INTS:
		return graph.Attr{Type: graph.AttrInts, Ints: a.GetInts()}
	case onnxpb.AttributeProto_STRINGS:
		var ss []string
		for _, s := range a.GetStrings() {
			ss = append(ss, string(s))
		}
		return graph.Attr{Type: graph.AttrStrings, Strings: ss}
	}
	return graph.Attr{}
}

func loadCase(t *testing.T, dir string) *nodeCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	g := mp.GetGraph()
	if len(g.GetNode()) != 1 {
		t.Fatalf("want a single-node model, got %d nodes", len(g.GetNode()))
	}
	n := g.GetNode()[0]
	opset := 0
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			opset = int(o.GetVersion())
		}
	}
	cfg := &ops.Config{Name: n.GetName(), OpType: n.GetOpType(), Opset: opset, Attrs: graph.Attrs{},
		NumInputs: len(n.GetInput()), NumOutputs: len(n.GetOutput())}
	for _, a := range n.GetAttribute() {
		cfg.Attrs[a.GetName()] = convertAttr(a)
	}
	values := map[string]*tensor.Tensor{}
	for _, tp := range g.GetInitializer() {
		raw, err := proto.Marshal(tp)
		if err != nil {
			t.Fatal(err)
		}
		v, err := importer.DecodeTensor(raw, dir)
		if err != nil {
			t.Fatal(err)
		}
		values[tp.GetName()] = v
	}
	k := 0
	for _, vi := range g.GetInput() {
		if _, ok := values[vi.GetName()]; ok {
			continue
		}
		v, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("input_%d.pb", k)))
		if err != nil {
			t.Fatal(err)
		}
		values[vi.GetName()] = v
		k++
	}
	c := &nodeCase{cfg: cfg}
	for _, name := range n.GetInput() {
		c.inputs = append(c.inputs, values[name]) // "" gives nil
	}
	outIdx := map[string]int{}
	for i, vi := range g.GetOutput() {
		outIdx[vi.GetName()] = i
	}
	for _, name := range n.GetOutput() {
		i, ok := outIdx[name]
		if name == "" || !ok {
			c.want = append(c.want, nil)
			continue
		}
		v, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		c.want = append(c.want, v)
	}
	return c
}

func compare(got, want *tensor.Tensor, rtol, atol float64) error {
	if got == nil {
		return fmt.Errorf("missing output")
	}
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	g, err := tensor.AsFloat64(got)
	if err != nil {
		return err
	}
	w, err := tensor.AsFloat64(want)
	if err != nil {
		return err
	}
	for i := range w {
		if d := math.Abs(g[i] - w[i]); !(d <= atol+rtol*math.Abs(w[i])) {
			return fmt.Errorf("element %d: got %v, want %v", i, g[i], w[i])
		}
	}
	return nil
}

func caseDirs(t *testing.T) []string {
	dirs, _ := filepath.Glob("../../testdata/rnn/*")
	if len(dirs) == 0 {
		t.Fatal("no cases under testdata/rnn; run scripts/gen_rnn_cases.py")
	}
	if ents, err := os.ReadDir(officialDir); err == nil {
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, "test_lstm_") || strings.HasPrefix(n, "test_gru_") ||
				n == "test_rnn_seq_length" || strings.HasPrefix(n, "test_simple_rnn_") {
				dirs = append(dirs, filepath.Join(officialDir, n))
			}
		}
	} else {
		t.Logf("official node tests not found at %s: only our own cases run", officialDir)
	}
	sort.Strings(dirs)
	return dirs
}

func TestCases(t *testing.T) {
	for _, dir := range caseDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c := loadCase(t, dir)
			op, err := ops.New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second run takes the packed weights from the cache.
			for run := 0; run < 2; run++ {
				got, err := op.Run(c.inputs)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(c.want) {
					t.Fatalf("got %d outputs, want %d", len(got), len(c.want))
				}
				for i, w := range c.want {
					if w == nil {
						continue
					}
					if err := compare(got[i], w, 1e-4, 1e-5); err != nil {
						t.Errorf("run %d output %d: %v", run, i, err)
					}
				}
			}
		})
	}
}
