// Package importer reads ONNX model files (ModelProto, IR versions 3–13,
// default-domain opsets 1–28) into graph.Model: initializers in raw or
// typed form and external side files, Constant nodes, value_info, symbolic
// dims, metadata and subgraphs, with nodes put in topological order.
package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/tensor"
)

// Version limits this importer accepts.
const (
	MinIRVersion = 3
	MaxIRVersion = 13
	MinOpset     = 1
	MaxOpset     = 28
)

// Load reads a model file; external data is resolved relative to its folder.
func Load(path string) (*graph.Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	m, err := Decode(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("importer: %s: %w", path, err)
	}
	return m, nil
}

// Decode parses a serialized ModelProto. dir is the folder external data
// paths are relative to ("" forbids external data).
func Decode(data []byte, dir string) (*graph.Model, error) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model (protobuf decode failed: %w)", err)
	}
	return fromProto(&mp, dir)
}

// fromProto converts a decoded ModelProto.
func fromProto(mp *onnxpb.ModelProto, dir string) (*graph.Model, error) {
	if mp.GetGraph() == nil {
		return nil, errors.New("model has no graph (is this an ONNX model file?)")
	}
	ir := mp.GetIrVersion()
	if ir < MinIRVersion || ir > MaxIRVersion {
		return nil, fmt.Errorf("IR version %d is not supported (mtlrun reads %d–%d)", ir, MinIRVersion, MaxIRVersion)
	}
	m := &graph.Model{
		IRVersion:       ir,
		Opsets:          map[string]int64{},
		Producer:        mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Domain:          mp.GetDomain(),
		ModelVersion:    mp.GetModelVersion(),
		Doc:             mp.GetDocString(),
	}
	for _, o := range mp.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		m.Opsets[d] = o.GetVersion()
	}
	if len(mp.GetOpsetImport()) == 0 {
		// IR 3 files without an opset import mean opset 1
		m.Opsets[""] = 1
	}
	if v, ok := m.Opsets[""]; ok && (v < MinOpset || v > MaxOpset) {
		return nil, fmt.Errorf("default-domain opset %d is not supported (mtlrun runs opsets up to %d)", v, MaxOpset)
	}
	for _, kv := range mp.GetMetadataProps() {
		m.Metadata = append(m.Metadata, graph.KeyValue{Key: kv.GetKey(), Value: kv.GetValue()})
	}
	// Model-local functions are not expanded: a node calling one is reported
	// as an unsupported op by the session, with its domain.
	g, err := convertGraph(mp.GetGraph(), dir, nil)
	if err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

// convertGraph converts a graph. outer lists names visible from enclosing
// graphs (nil for the main graph).
func convertGraph(gp *onnxpb.GraphProto, dir string, outer map[string]bool) (*graph.Graph, error) {
	g := &graph.Graph{
		Name:         gp.GetName(),
		Doc:          gp.GetDocString(),
		Initializers: map[string]*tensor.Tensor{},
	}
	for _, sp := range gp.GetSparseInitializer() {
		// held dense: kernels take dense tensors
		t, err := sparseFromProto(sp, dir)
		if err != nil {
			return nil, fmt.Errorf("graph %q: sparse initializer %q: %w", gp.GetName(), sp.GetValues().GetName(), err)
		}
		if sp.GetValues().GetName() == "" {
			return nil, errors.New("sparse initializer without a name")
		}
		g.AddInitializer(sp.GetValues().GetName(), t)
	}
	for _, tp := range gp.GetInitializer() {
		t, err := tensorFromProto(tp, dir)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		if tp.GetName() == "" {
			return nil, errors.New("initializer without a name")
		}
		g.AddInitializer(tp.GetName(), t)
	}
	var err error
	if g.Inputs, err = valueInfos(gp.GetInput()); err != nil {
		return nil, fmt.Errorf("graph %q inputs: %w", gp.GetName(), err)
	}
	if g.Outputs, err = valueInfos(gp.GetOutput()); err != nil {
		return nil, fmt.Errorf("graph %q outputs: %w", gp.GetName(), err)
	}
	if g.ValueInfo, err = valueInfos(gp.GetValueInfo()); err != nil {
		return nil, fmt.Errorf("graph %q value_info: %w", gp.GetName(), err)
	}
	// names visible inside this graph's subgraphs
	visible := map[string]bool{}
	for k := range outer {
		visible[k] = true
	}
	for _, v := range g.Inputs {
		visible[v.Name] = true
	}
	for k := range g.Initializers {
		visible[k] = true
	}
	for _, np := range gp.GetNode() {
		for _, o := range np.GetOutput() {
			visible[o] = true
		}
	}
	for _, np := range gp.GetNode() {
		n, err := convertNode(np, dir, visible)
		if err != nil {
			return nil, err
		}
		g.Nodes = append(g.Nodes, n)
	}
	if err := g.Sort(); err != nil {
		return nil, fmt.Errorf("graph %q: %w", gp.GetName(), err)
	}
	if err := checkDefined(g, outer); err != nil {
		return nil, fmt.Errorf("graph %q: %w", gp.GetName(), err)
	}
	return g, nil
}

// checkDefined verifies every value read is defined somewhere, naming the
// first node that reads an undefined one (typically a missing initializer).
func checkDefined(g *graph.Graph, outer map[string]bool) error {
	defined := map[string]bool{}
	for k := range outer {
		defined[k] = true
	}
	for _, v := range g.Inputs {
		defined[v.Name] = true
	}
	for k := range g.Initializers {
		defined[k] = true
	}
	seenOut := map[string]string{}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in != "" && !defined[in] {
				return fmt.Errorf("node %q (%s): input %d %q is not defined (no graph input, initializer or node output of that name)", n.Label(), n.OpType, i, in)
			}
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if prev, dup := seenOut[o]; dup {
				return fmt.Errorf("node %q (%s): output %q is also produced by node %q", n.Label(), n.OpType, o, prev)
			}
			seenOut[o] = n.Label()
			defined[o] = true
		}
	}
	for _, o := range g.Outputs {
		if !defined[o.Name] {
			return fmt.Errorf("graph output %q is not produced by any node", o.Name)
		}
	}
	return nil
}

func convertNode(np *onnxpb.NodeProto, dir string, visible map[string]bool) (*graph.Node, error) {
	n := &graph.Node{
		Name:    np.GetName(),
		OpType:  np.GetOpType(),
		Domain:  np.GetDomain(),
		Inputs:  append([]string{}, np.GetInput()...),
		Outputs: append([]string{}, np.GetOutput()...),
		Doc:     np.GetDocString(),
		Attrs:   graph.Attrs{},
	}
	if n.Domain == "ai.onnx" {
		n.Domain = ""
	}
	if n.OpType == "" {
		return nil, fmt.Errorf("node %q has no op type", n.Name)
	}
	for _, ap := range np.GetAttribute() {
		if ap.GetType() == onnxpb.AttributeProto_SPARSE_TENSOR || ap.GetSparseTensor() != nil {
			// a Constant's sparse_value is held as the dense value it stands for
			if n.OpType != "Constant" || ap.GetName() != "sparse_value" {
				return nil, fmt.Errorf("node %q (%s): attribute %q: sparse tensor attributes are only supported as Constant's sparse_value", n.Label(), n.OpType, ap.GetName())
			}
			t, err := sparseFromProto(ap.GetSparseTensor(), dir)
			if err != nil {
				return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Label(), n.OpType, ap.GetName(), err)
			}
			n.Attrs["value"] = graph.Attr{Type: graph.AttrTensor, Tensor: t}
			continue
		}
		a, err := convertAttr(ap, dir, visible)
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Label(), n.OpType, ap.GetName(), err)
		}
		n.Attrs[ap.GetName()] = a
	}
	return n, nil
}

func convertAttr(ap *onnxpb.AttributeProto, dir string, visible map[string]bool) (graph.Attr, error) {
	if ap.GetRefAttrName() != "" {
		return graph.Attr{}, errors.New("attribute references are only valid inside functions")
	}
	t := ap.GetType()
	if t == onnxpb.AttributeProto_UNDEFINED {
		// IR 1/2 files leave the type out: infer it from the field set
		switch {
		case ap.G != nil:
			t = onnxpb.AttributeProto_GRAPH
		case ap.T != nil:
			t = onnxpb.AttributeProto_TENSOR
		case ap.S != nil:
			t = onnxpb.AttributeProto_STRING
		case ap.F != nil:
			t = onnxpb.AttributeProto_FLOAT
		case ap.I != nil:
			t = onnxpb.AttributeProto_INT
		case len(ap.Floats) > 0:
			t = onnxpb.AttributeProto_FLOATS
		case len(ap.Ints) > 0:
			t = onnxpb.AttributeProto_INTS
		case len(ap.Strings) > 0:
			t = onnxpb.AttributeProto_STRINGS
		}
	}
	var a graph.Attr
	switch t {
	case onnxpb.AttributeProto_FLOAT:
		a = graph.Attr{Type: graph.AttrFloat, Float: ap.GetF()}
	case onnxpb.AttributeProto_INT:
		a = graph.Attr{Type: graph.AttrInt, Int: ap.GetI()}
	case onnxpb.AttributeProto_STRING:
		a = graph.Attr{Type: graph.AttrString, String: string(ap.GetS())}
	case onnxpb.AttributeProto_FLOATS:
		a = graph.Attr{Type: graph.AttrFloats, Floats: append([]float32{}, ap.GetFloats()...)}
	case onnxpb.AttributeProto_INTS:
		a = graph.Attr{Type: graph.AttrInts, Ints: append([]int64{}, ap.GetInts()...)}
	case onnxpb.AttributeProto_STRINGS:
		ss := make([]string, len(ap.GetStrings()))
		for i, s := range ap.GetStrings() {
			ss[i] = string(s)
		}
		a = graph.Attr{Type: graph.AttrStrings, Strings: ss}
	case onnxpb.AttributeProto_TENSOR:
		tt, err := tensorFromProto(ap.GetT(), dir)
		if err != nil {
			return a, err
		}
		a = graph.Attr{Type: graph.AttrTensor, Tensor: tt}
	case onnxpb.AttributeProto_TENSORS:
		a = graph.Attr{Type: graph.AttrTensors}
		for _, tp := range ap.GetTensors() {
			tt, err := tensorFromProto(tp, dir)
			if err != nil {
				return a, err
			}
			a.Tensors = append(a.Tensors, tt)
		}
	case onnxpb.AttributeProto_GRAPH:
		g, err := convertGraph(ap.GetG(), dir, visible)
		if err != nil {
			return a, fmt.Errorf("subgraph: %w", err)
		}
		a = graph.Attr{Type: graph.AttrGraph, Graph: g}
	case onnxpb.AttributeProto_GRAPHS:
		a = graph.Attr{Type: graph.AttrGraphs}
		for _, gp := range ap.GetGraphs() {
			g, err := convertGraph(gp, dir, visible)
			if err != nil {
				return a, fmt.Errorf("subgraph: %w", err)
			}
			a.Graphs = append(a.Graphs, g)
		}
	case onnxpb.AttributeProto_TYPE_PROTO:
		// a type (Optional's "type"): kept encoded; kernels infer what
		// they need from their inputs, and the exporter refuses it
		b, err := proto.Marshal(ap.GetTp())
		if err != nil {
			return a, err
		}
		a = graph.Attr{Type: graph.AttrUndefined, String: string(b)}
	default:
		return a, fmt.Errorf("attribute type %v is not supported", t)
	}
	return a, nil
}

func valueInfos(vs []*onnxpb.ValueInfoProto) ([]graph.ValueInfo, error) {
	out := make([]graph.ValueInfo, 0, len(vs))
	for _, vp := range vs {
		v := graph.ValueInfo{Name: vp.GetName(), Doc: vp.GetDocString(), Kind: "tensor"}
		tp := vp.GetType()
		switch {
		case tp == nil:
			v.Kind = "unknown"
		case tp.GetTensorType() != nil:
			tt := tp.GetTensorType()
			v.DType = tensor.DType(tt.GetElemType())
			if sh := tt.GetShape(); sh != nil {
				v.HasShape = true
				for _, d := range sh.GetDim() {
					switch {
					case d.GetDimParam() != "":
						v.Shape = append(v.Shape, graph.Dim{Param: d.GetDimParam()})
					case d.Value != nil:
						v.Shape = append(v.Shape, graph.Dim{Value: d.GetDimValue()})
					default:
						v.Shape = append(v.Shape, graph.Dim{Value: -1})
					}
				}
			}
		case tp.GetSequenceType() != nil:
			v.Kind = "sequence"
		case tp.GetOptionalType() != nil:
			v.Kind = "optional"
		case tp.GetMapType() != nil:
			v.Kind = "map"
		case tp.GetSparseTensorType() != nil:
			v.Kind = "sparse_tensor"
		default:
			v.Kind = "unknown"
		}
		if v.Kind != "tensor" && tp != nil {
			v.EncodedType, _ = proto.Marshal(tp)
		}
		out = append(out, v)
	}
	return out, nil
}
