package ops

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// InputError reports a bad input tensor, the one such type of mtlrun. From
// a kernel it names the node input by position (Index) and reaches the
// caller wrapped in a *runtime.NodeError, which adds the node. From a
// session's input checks it names the graph input the caller fed (Name,
// with Index -1) and comes back unwrapped.
type InputError struct {
	Name   string // the value's name; "" for a kernel input known by position
	Index  int    // position among the node's inputs; -1 for a caller's feed
	Reason string
}

func (e *InputError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("input %q: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("input %d: %s", e.Index, e.Reason)
}

// BadInput builds an *InputError for kernel input i.
func BadInput(i int, format string, args ...any) error {
	return &InputError{Index: i, Reason: fmt.Sprintf(format, args...)}
}

// BadFeed builds an *InputError for the named value a caller fed.
func BadFeed(name, reason string) error {
	return &InputError{Name: name, Index: -1, Reason: reason}
}

// AttrError reports a bad attribute value at kernel construction.
type AttrError struct {
	Name   string
	Reason string
}

func (e *AttrError) Error() string { return fmt.Sprintf("attribute %q: %s", e.Name, e.Reason) }

// BadAttr builds an *AttrError.
func BadAttr(name, format string, args ...any) error {
	return &AttrError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// NeedInputs checks the number of inputs and that required ones are present.
func NeedInputs(in []*tensor.Tensor, required int) error {
	if len(in) < required {
		return fmt.Errorf("need at least %d inputs, got %d", required, len(in))
	}
	for i := 0; i < required; i++ {
		if in[i] == nil {
			return BadInput(i, "required input is missing")
		}
	}
	return nil
}

// NeedDType checks an input's dtype.
func NeedDType(in []*tensor.Tensor, i int, allowed ...tensor.DType) error {
	for _, d := range allowed {
		if in[i].DType == d {
			return nil
		}
	}
	return BadInput(i, "dtype %v not supported (want one of %v)", in[i].DType, allowed)
}

// NormAxis turns a possibly negative axis into [0, rank).
func NormAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		if rank == 0 && (axis == 0 || axis == -1) {
			return 0, nil
		}
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}
