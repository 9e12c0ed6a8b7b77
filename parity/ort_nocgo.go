//go:build !cgo

package parity

import (
	"github.com/mtlrun/mtlrun/tensor"
)

// Available reports whether onnxruntime can be used; without cgo it never can.
func Available() error { return ErrNoCgo }

// Version fails without cgo.
func Version() (version, path string, err error) { return "", "", ErrNoCgo }

// ORT runs one model file in onnxruntime (unavailable without cgo).
type ORT struct{}

// Open fails without cgo.
func Open(modelPath string, opts Options) (*ORT, error) { return nil, ErrNoCgo }

// InputNames returns nothing without cgo.
func (o *ORT) InputNames() []string { return nil }

// OutputNames returns nothing without cgo.
func (o *ORT) OutputNames() []string { return nil }

// Close does nothing.
func (o *ORT) Close() error { return nil }

// Run fails without cgo.
func (o *ORT) Run(inputs map[string]*tensor.Tensor, outputNames []string) (map[string]*tensor.Tensor, error) {
	return nil, ErrNoCgo
}

// Prepare fails without cgo.
func (o *ORT) Prepare(inputs map[string]*tensor.Tensor, outputNames []string) (run func() (map[string]*tensor.Tensor, error), release func(), err error) {
	return nil, nil, ErrNoCgo
}

// RunWithShapes fails without cgo.
func (o *ORT) RunWithShapes(inputs map[string]*tensor.Tensor, outputNames []string, shapes map[string][]int) (map[string]*tensor.Tensor, error) {
	return nil, ErrNoCgo
}
