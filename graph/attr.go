package graph

import "github.com/mtlrun/mtlrun/tensor"

// AttrType says which field of an Attr is set.
type AttrType int

// Attribute kinds, mirroring ONNX's AttributeProto types.
const (
	AttrUndefined AttrType = iota
	AttrFloat
	AttrInt
	AttrString
	AttrTensor
	AttrGraph
	AttrFloats
	AttrInts
	AttrStrings
	AttrTensors
	AttrGraphs
)

// Attr is one attribute value. Graph-valued attributes (Loop bodies, If
// branches, Scan bodies) hold the subgraph itself.
type Attr struct {
	Type    AttrType
	Float   float32
	Int     int64
	String  string
	Tensor  *tensor.Tensor
	Graph   *Graph
	Floats  []float32
	Ints    []int64
	Strings []string
	Tensors []*tensor.Tensor
	Graphs  []*Graph
}

// Attrs are a node's attributes by name.
type Attrs map[string]Attr

// Has reports whether the attribute is present.
func (a Attrs) Has(name string) bool { _, ok := a[name]; return ok }

// Int returns an int attribute or def when absent.
func (a Attrs) Int(name string, def int64) int64 {
	if v, ok := a[name]; ok {
		return v.Int
	}
	return def
}

// Float returns a float attribute or def when absent.
func (a Attrs) Float(name string, def float32) float32 {
	if v, ok := a[name]; ok {
		return v.Float
	}
	return def
}

// String returns a string attribute or def when absent.
func (a Attrs) String(name, def string) string {
	if v, ok := a[name]; ok {
		return v.String
	}
	return def
}

// Ints returns an ints attribute, or nil when absent.
func (a Attrs) Ints(name string) []int64 { return a[name].Ints }

// Floats returns a floats attribute, or nil when absent.
func (a Attrs) Floats(name string) []float32 { return a[name].Floats }

// Strings returns a strings attribute, or nil when absent.
func (a Attrs) Strings(name string) []string { return a[name].Strings }

// Tensor returns a tensor attribute, or nil when absent.
func (a Attrs) Tensor(name string) *tensor.Tensor { return a[name].Tensor }
