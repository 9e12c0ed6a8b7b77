//go:build !cgo

package parity

import (
	"errors"

	"github.com/mtlrun/mtlrun/tensor"
)

var errNoCgo = errors.New("parity: mtlrun was built without cgo; checks against onnxruntime need CGO_ENABLED=1")

// Available reports whether onnxruntime can be used.
func Available() error { return errNoCgo }

// ORT is one onnxruntime session (unavailable without cgo).
type ORT struct{}

// Options for Open.
type Options struct{ Threads int }

// Open fails without cgo.
func Open(string, []string, []string, Options) (*ORT, error) { return nil, errNoCgo }

// Close does nothing.
func (o *ORT) Close() error { return nil }

// Run fails without cgo.
func (o *ORT) Run(map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) { return nil, errNoCgo }
