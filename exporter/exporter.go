// Package exporter writes a graph.Model back to an ONNX file: the graph in
// the structure it was imported with (names, symbolic dims, opset imports,
// doc strings and metadata kept), current weights, producer "mtlrun", and
// optionally large tensors in an external data file.
package exporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/internal/exitgate"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/internal/version"
	"github.com/mtlrun/mtlrun/tensor"
)

// Options control an export. The zero value writes everything inline with
// producer mtlrun.
type Options struct {
	// KeepProducer keeps the original producer name and version instead of
	// writing mtlrun's (the original is then recorded in metadata anyway).
	KeepProducer bool
	// Metadata entries are added to (or replace) the model's metadata_props.
	Metadata []graph.KeyValue
	// ExternalData, when non-empty, is the file name (relative to the model's
	// folder) that receives every initializer of at least ExternalThreshold
	// bytes.
	ExternalData      string
	ExternalThreshold int
}

// Save writes the model to path (and its external data file, if asked).
func Save(m *graph.Model, path string, opts Options) error {
	w := &writer{opts: opts}
	mp, err := w.model(m)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	data, err := proto.Marshal(mp)
	if err != nil {
		return fmt.Errorf("exporter: encode: %w", err)
	}
	if opts.ExternalData != "" {
		if filepath.Base(opts.ExternalData) != opts.ExternalData {
			return fmt.Errorf("exporter: external data name %q must be a plain file name", opts.ExternalData)
		}
		if err := writeAtomic(filepath.Join(filepath.Dir(path), opts.ExternalData), w.external); err != nil {
			return fmt.Errorf("exporter: %w", err)
		}
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	return nil
}

// Encode returns the serialized model with all data inline.
func Encode(m *graph.Model, opts Options) ([]byte, error) {
	opts.ExternalData = ""
	w := &writer{opts: opts}
	mp, err := w.model(m)
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	return proto.Marshal(mp)
}

func writeAtomic(path string, data []byte) error {
	// the temporary file and the rename go through exitgate, so a process
	// exiting at once can remove the temporary with none made behind it
	var tmp *os.File
	err := exitgate.Do(func() (err error) {
		tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
		return err
	})
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	// CreateTemp makes the file 0600; a model is an ordinary output file
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := exitgate.Do(func() error { return os.Rename(tmp.Name(), path) }); err != nil {
		os.Remove(tmp.Name()) // e.g. path is a folder: leave nothing behind
		return err
	}
	return nil
}

type writer struct {
	opts     Options
	external []byte
}

func (w *writer) model(m *graph.Model) (*onnxpb.ModelProto, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("nil model")
	}
	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(m.IRVersion),
		ProducerName:    proto.String(version.Producer),
		ProducerVersion: proto.String(version.Version),
	}
	if w.opts.KeepProducer {
		mp.ProducerName, mp.ProducerVersion = proto.String(m.Producer), proto.String(m.ProducerVersion)
	}
	if m.Domain != "" {
		mp.Domain = proto.String(m.Domain)
	}
	if m.ModelVersion != 0 {
		mp.ModelVersion = proto.Int64(m.ModelVersion)
	}
	if m.Doc != "" {
		mp.DocString = proto.String(m.Doc)
	}
	domains := make([]string, 0, len(m.Opsets))
	for d := range m.Opsets {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(m.Opsets[d])})
	}
	meta := append([]graph.KeyValue{}, m.Metadata...)
	if !w.opts.KeepProducer && m.Producer != "" && m.Producer != version.Producer {
		meta = setKV(meta, "mtlrun.source_producer", m.Producer+" "+m.ProducerVersion)
	}
	for _, kv := range w.opts.Metadata {
		meta = setKV(meta, kv.Key, kv.Value)
	}
	for _, kv := range meta {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv.Key), Value: proto.String(kv.Value)})
	}
	g, err := w.graph(m.Graph)
	if err != nil {
		return nil, err
	}
	mp.Graph = g
	return mp, nil
}

func setKV(kvs []graph.KeyValue, k, v string) []graph.KeyValue {
	for i := range kvs {
		if kvs[i].Key == k {
			kvs[i].Value = v
			return kvs
		}
	}
	return append(kvs, graph.KeyValue{Key: k, Value: v})
}

func (w *writer) graph(g *graph.Graph) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{Name: proto.String(g.Name)}
	if g.Doc != "" {
		gp.DocString = proto.String(g.Doc)
	}
	order := append([]string{}, g.InitOrder...)
	seen := map[string]bool{}
	for _, n := range order {
		seen[n] = true
	}
	var extra []string
	for n := range g.Initializers {
		if !seen[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	order = append(order, extra...)
	for _, name := range order {
		t := g.Initializers[name]
		if t == nil {
			continue
		}
		tp, err := w.tensor(name, t, true)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	gp.Input = valueInfos(g.Inputs)
	gp.Output = valueInfos(g.Outputs)
	gp.ValueInfo = valueInfos(g.ValueInfo)
	for _, n := range g.Nodes {
		np, err := w.node(n)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	return gp, nil
}

func valueInfos(vs []graph.ValueInfo) []*onnxpb.ValueInfoProto {
	out := make([]*onnxpb.ValueInfoProto, 0, len(vs))
	for _, v := range vs {
		vp := &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
		if v.Doc != "" {
			vp.DocString = proto.String(v.Doc)
		}
		if v.Kind == "tensor" || v.Kind == "" {
			tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(v.DType))}
			if v.HasShape {
				sh := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
				for _, d := range v.Shape {
					dim := &onnxpb.TensorShapeProto_Dimension{}
					switch {
					case d.Param != "":
						dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
					case d.Value >= 0:
						dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
					}
					sh.Dim = append(sh.Dim, dim)
				}
				tt.Shape = sh
			}
			vp.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
		} else if len(v.EncodedType) > 0 {
			var tp onnxpb.TypeProto
			if proto.Unmarshal(v.EncodedType, &tp) == nil {
				vp.Type = &tp
			}
		}
		out = append(out, vp)
	}
	return out
}

func (w *writer) node(n *graph.Node) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{
		Input:  append([]string{}, n.Inputs...),
		Output: append([]string{}, n.Outputs...),
		OpType: proto.String(n.OpType),
	}
	if n.Name != "" {
		np.Name = proto.String(n.Name)
	}
	if n.Domain != "" {
		np.Domain = proto.String(n.Domain)
	}
	if n.Doc != "" {
		np.DocString = proto.String(n.Doc)
	}
	names := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		ap, err := w.attr(name, n.Attrs[name])
		if err != nil {
			return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Label(), n.OpType, name, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func (w *writer) attr(name string, a graph.Attr) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(name)}
	set := func(t onnxpb.AttributeProto_AttributeType) { ap.Type = t.Enum() }
	switch a.Type {
	case graph.AttrFloat:
		set(onnxpb.AttributeProto_FLOAT)
		ap.F = proto.Float32(a.Float)
	case graph.AttrInt:
		set(onnxpb.AttributeProto_INT)
		ap.I = proto.Int64(a.Int)
	case graph.AttrString:
		set(onnxpb.AttributeProto_STRING)
		ap.S = []byte(a.String)
	case graph.AttrFloats:
		set(onnxpb.AttributeProto_FLOATS)
		ap.Floats = append([]float32{}, a.Floats...)
	case graph.AttrInts:
		set(onnxpb.AttributeProto_INTS)
		ap.Ints = append([]int64{}, a.Ints...)
	case graph.AttrStrings:
		set(onnxpb.AttributeProto_STRINGS)
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	case graph.AttrTensor:
		set(onnxpb.AttributeProto_TENSOR)
		tp, err := w.tensor("", a.Tensor, false)
		if err != nil {
			return nil, err
		}
		ap.T = tp
	case graph.AttrTensors:
		set(onnxpb.AttributeProto_TENSORS)
		for _, t := range a.Tensors {
			tp, err := w.tensor("", t, false)
			if err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	case graph.AttrGraph:
		set(onnxpb.AttributeProto_GRAPH)
		if a.Graph == nil {
			return nil, errors.New("graph attribute holds no graph")
		}
		gp, err := w.graph(a.Graph)
		if err != nil {
			return nil, err
		}
		ap.G = gp
	case graph.AttrGraphs:
		set(onnxpb.AttributeProto_GRAPHS)
		for _, g := range a.Graphs {
			if g == nil {
				return nil, errors.New("graphs attribute holds a nil graph")
			}
			gp, err := w.graph(g)
			if err != nil {
				return nil, err
			}
			ap.Graphs = append(ap.Graphs, gp)
		}
	case graph.AttrUndefined:
		// a type attribute (Optional's "type"), kept encoded by the importer
		var tp onnxpb.TypeProto
		if a.String == "" || proto.Unmarshal([]byte(a.String), &tp) != nil {
			return nil, fmt.Errorf("attribute type %d cannot be exported", a.Type)
		}
		set(onnxpb.AttributeProto_TYPE_PROTO)
		ap.Tp = &tp
	default:
		return nil, fmt.Errorf("attribute type %d cannot be exported", a.Type)
	}
	return ap, nil
}

// tensor converts to TensorProto: raw_data for numbers, string_data for
// strings; an initializer may go to the external data file.
func (w *writer) tensor(name string, t *tensor.Tensor, initializer bool) (*onnxpb.TensorProto, error) {
	tp := &onnxpb.TensorProto{DataType: proto.Int32(int32(t.DType))}
	if name != "" {
		tp.Name = proto.String(name)
	}
	tp.Dims = make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		tp.Dims[i] = int64(d)
	}
	if t.DType == tensor.String {
		for _, s := range tensor.Data[string](t) {
			tp.StringData = append(tp.StringData, []byte(s))
		}
		return tp, nil
	}
	raw, err := tensor.EncodeRaw(t)
	if err != nil {
		return nil, err
	}
	if initializer && w.opts.ExternalData != "" && len(raw) >= w.opts.ExternalThreshold && len(raw) > 0 {
		// keep each tensor 64-byte aligned in the side file, as onnx does
		for len(w.external)%64 != 0 {
			w.external = append(w.external, 0)
		}
		off := len(w.external)
		w.external = append(w.external, raw...)
		tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		tp.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(w.opts.ExternalData)},
			{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(off))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(raw)))},
		}
		return tp, nil
	}
	tp.RawData = raw
	return tp, nil
}
