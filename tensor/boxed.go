package tensor

// Sequence and optional values (ONNX's sequence(tensor) and optional(T))
// travel through the runtime boxed in a Tensor, so that graphs, kernels and
// control flow carry them like any value: DType Sequence or Optional, Data
// a []*Tensor (the elements; an optional holds zero or one), Shape [len].

// Boxed value kinds. They lie outside ONNX's TensorProto.DataType range.
const (
	Sequence DType = 1 << 20
	Optional DType = 1<<20 + 1
)

func init() {
	dtypeNames[Sequence] = "sequence"
	dtypeNames[Optional] = "optional"
}

// IsBoxed reports whether d is Sequence or Optional.
func (d DType) IsBoxed() bool { return d == Sequence || d == Optional }

// NewSequence boxes elements as a sequence value.
func NewSequence(elems []*Tensor) *Tensor {
	if elems == nil {
		elems = []*Tensor{}
	}
	return &Tensor{DType: Sequence, Shape: []int{len(elems)}, Data: elems}
}

// NewOptional boxes v (nil for none) as an optional value.
func NewOptional(v *Tensor) *Tensor {
	if v == nil {
		return &Tensor{DType: Optional, Shape: []int{0}, Data: []*Tensor{}}
	}
	return &Tensor{DType: Optional, Shape: []int{1}, Data: []*Tensor{v}}
}

// Elements returns the boxed values of a sequence or optional (nil for
// other tensors).
func (t *Tensor) Elements() []*Tensor {
	if s, ok := t.Data.([]*Tensor); ok {
		return s
	}
	return nil
}
