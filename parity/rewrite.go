package parity

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/tensor"
)

// DummyInput is the unused input parity adds to a model without inputs
// before onnxruntime loads it: onnxruntime_go cannot run a session with no
// inputs (it indexes the first).
const DummyInput = "__mtlrun_parity_dummy"

// castSuffix names the float32 copy of a float16/bfloat16 graph output.
const castSuffix = "__mtlrun_parity_f32"

// ortView is how onnxruntime sees a model file: the path it loads and what
// was changed on the way.
type ortView struct {
	path    string
	dummy   bool                    // DummyInput was added and must be fed
	widened map[string]tensor.DType // graph outputs onnxruntime returns as float32 copies
	cleanup func()
}

// prepareForORT returns the file onnxruntime should load for modelPath: the
// file itself, or a rewritten copy when the model has no inputs (a dummy
// float input is added) or float16/bfloat16 outputs (each is cast to
// float32 in the graph, since onnxruntime_go cannot hand back float16 values
// it allocated; the float32 copy converts back exactly). The copy goes to a
// temporary folder, or beside the model when it has external data.
func prepareForORT(modelPath string) (*ortView, error) {
	v := &ortView{path: modelPath, cleanup: func() {}}
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("parity: %w", err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil || mp.GetGraph() == nil {
		return v, nil // let onnxruntime report what is wrong with it
	}
	g := mp.GetGraph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	feeds := 0
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			feeds++
		}
	}
	changed := false
	if feeds == 0 {
		g.Input = append(g.Input, &onnxpb.ValueInfoProto{Name: proto.String(DummyInput), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}}}}},
		}}})
		v.dummy, changed = true, true
	}
	for _, out := range g.GetOutput() {
		tt := out.GetType().GetTensorType()
		if tt == nil {
			continue
		}
		dt := tensor.DType(tt.GetElemType())
		if dt != tensor.Float16 && dt != tensor.BFloat16 {
			continue
		}
		if v.widened == nil {
			v.widened = map[string]tensor.DType{}
		}
		v.widened[out.GetName()] = dt
		wide := out.GetName() + castSuffix
		g.Node = append(g.Node, &onnxpb.NodeProto{
			OpType: proto.String("Cast"), Name: proto.String(wide), Input: []string{out.GetName()}, Output: []string{wide},
			Attribute: []*onnxpb.AttributeProto{{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxpb.TensorProto_FLOAT))}},
		})
		out.Name = proto.String(wide)
		tt.ElemType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
		changed = true
	}
	if !changed {
		return v, nil
	}
	buf, err := proto.Marshal(&mp)
	if err != nil {
		return nil, fmt.Errorf("parity: rewriting %s for onnxruntime: %w", modelPath, err)
	}
	dir := ""
	if hasExternalData(&mp) {
		dir = filepath.Dir(modelPath) // external data paths are relative to the model
	}
	f, err := os.CreateTemp(dir, ".mtlrun-parity-*.onnx")
	if err != nil {
		return nil, fmt.Errorf("parity: rewriting %s for onnxruntime: %w", modelPath, err)
	}
	name := f.Name()
	if _, err := f.Write(buf); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("parity: rewriting %s for onnxruntime: %w", modelPath, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return nil, err
	}
	v.path, v.cleanup = name, func() { os.Remove(name) }
	return v, nil
}

func hasExternalData(mp *onnxpb.ModelProto) bool {
	var walk func(g *onnxpb.GraphProto) bool
	walk = func(g *onnxpb.GraphProto) bool {
		for _, t := range g.GetInitializer() {
			if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
				return true
			}
		}
		for _, n := range g.GetNode() {
			for _, a := range n.GetAttribute() {
				if t := a.GetT(); t != nil && t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
					return true
				}
				if a.GetG() != nil && walk(a.GetG()) {
					return true
				}
				for _, sg := range a.GetGraphs() {
					if walk(sg) {
						return true
					}
				}
			}
		}
		return false
	}
	return walk(mp.GetGraph())
}

// narrow converts a float32 copy of a float16/bfloat16 output back.
func narrow(t *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	f, ok := t.Data.([]float32)
	if !ok {
		return nil, fmt.Errorf("parity: expected the float32 copy of a %v output, got %v", dt, t.DType)
	}
	out, err := tensor.New(dt, t.Shape)
	if err != nil {
		return nil, err
	}
	switch d := out.Data.(type) {
	case []tensor.Float16Bits:
		for i, x := range f {
			d[i] = tensor.Float32ToFloat16(x)
		}
	case []tensor.BFloat16Bits:
		for i, x := range f {
			d[i] = tensor.Float32ToBFloat16(x)
		}
	}
	return out, nil
}
