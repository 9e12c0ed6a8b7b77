// Package ops defines mtlrun's native op set: the Op interface every kernel
// implements, the attribute values a kernel is built from, and the registry
// that maps an (domain, op type, opset) to a kernel factory. The kernels live
// in sub-packages by family (ops/math, ops/shape, ops/nn, ops/rnn, ...) and
// register themselves; import ops/all to get every one. This package knows
// nothing of ONNX protobuf or of graphs.
//
// Each op is described once, by a Desc (descriptor.go): its kernel, its
// shape rule, its gradient rule or a waiver, and its traits. See "Adding an
// op" in docs/ARCHITECTURE.md.
package ops

import (
	"errors"
	"fmt"
	"sort"

	"github.com/mtlrun/mtlrun/tensor"
)

// Op is one instantiated kernel: its attributes are fixed, its inputs come at
// run time. inputs[i] is nil for an omitted optional input. Run must not
// modify its inputs and must be safe for concurrent use.
type Op interface {
	Run(inputs []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// OpFunc adapts a function to Op.
type OpFunc func(inputs []*tensor.Tensor) ([]*tensor.Tensor, error)

// Run calls f.
func (f OpFunc) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return f(in) }

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

// Attr is one attribute value. Graph attributes hold whatever the runtime
// stored there (a *runtime.Graph); ops never looks inside.
type Attr struct {
	Type    AttrType
	Float   float32
	Int     int64
	String  string
	Tensor  *tensor.Tensor
	Graph   any
	Floats  []float32
	Ints    []int64
	Strings []string
	Tensors []*tensor.Tensor
	Graphs  []any
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

// Config is everything a factory may use to build a kernel for one node.
type Config struct {
	Name       string // node name, for messages
	OpType     string
	Domain     string // "" for the default ONNX domain
	Opset      int    // the model's opset for Domain
	Attrs      Attrs
	NumInputs  int // as written in the node, including empty optional slots
	NumOutputs int
	// Threads is the intra-op parallelism budget of the session: 0 or 1
	// means run on the calling goroutine only (best for latency and for
	// servers that run many sessions at once).
	Threads int
	// ConstInputs[i] says the tensor given at input i is never written
	// while the session lives (an initializer, or a value the runtime
	// computes once per input shape and caches), so a kernel may keep work
	// derived from it, keyed by its data address: packed weights, say. Any
	// other input may be an arena buffer that the next run overwrites in
	// place. Nil means the caller does not know and runs kernels without
	// arenas (tests, tools), where such caches are safe.
	ConstInputs []bool
}

// InputIsConst reports whether a kernel may cache work keyed by input i's
// data address (see ConstInputs).
func (c *Config) InputIsConst(i int) bool {
	return c.ConstInputs == nil || (i < len(c.ConstInputs) && c.ConstInputs[i])
}

// Factory builds a kernel for a node, validating its attributes.
type Factory func(c *Config) (Op, error)

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// ErrUnsupported is wrapped by Lookup and New when no kernel exists.
var ErrUnsupported = errors.New("unsupported op")

// Lookup finds the factory for opType at the given opset (opset ≤ 0: the
// latest).
func Lookup(domain, opType string, opset int) (Factory, error) {
	mu.RLock()
	defer mu.RUnlock()
	d, es := find(domain, opType, opset)
	if len(es) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, qualified(domain, opType))
	}
	if d == nil {
		return nil, fmt.Errorf("%w: %s at opset %d (supported from opset %d)", ErrUnsupported, qualified(domain, opType), opset, es[0].Since)
	}
	if d.Kernel == nil { // shape-only or control flow
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, qualified(domain, opType))
	}
	return d.Kernel, nil
}

// Supported reports whether Lookup would succeed.
func Supported(domain, opType string, opset int) bool {
	_, err := Lookup(domain, opType, opset)
	return err == nil
}

// New looks up and builds a kernel.
func New(c *Config) (Op, error) {
	f, err := Lookup(c.Domain, c.OpType, c.Opset)
	if err != nil {
		return nil, err
	}
	return f(c)
}

// Registered lists every op that has a kernel as "domain:Op" or "Op",
// sorted.
func Registered() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for k, es := range registry {
		for _, e := range es {
			if e.Kernel != nil {
				out = append(out, qualified(k.domain, k.opType))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func qualified(domain, opType string) string {
	if normDomain(domain) == "" {
		return opType
	}
	return domain + ":" + opType
}
