package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mtlrun/mtlrun/tensor"
)

// SequenceProto and OptionalProto (onnx-data.proto) hold the sequence and
// optional values of test data files. mtlrun's generated protobuf package
// covers onnx.proto only, so they are decoded here field by field. Both
// carry: 1 name, 2 elem_type, then the value(s): 3 tensor(s), 4 sparse
// tensor(s), 5 sequence(s), 6 map(s), 7 optional(s).

// ReadValueFile reads a test-data value of the given kind ("tensor",
// "sequence" or "optional", as graph.ValueInfo.Kind says) from a .pb file.
func ReadValueFile(path, kind string) (*tensor.Tensor, error) {
	if kind == "" || kind == "tensor" || kind == "unknown" {
		return ReadTensorFile(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t *tensor.Tensor
	switch kind {
	case "sequence":
		t, err = decodeSequence(data, filepath.Dir(path), 0)
	case "optional":
		t, err = decodeOptional(data, filepath.Dir(path), 0)
	default:
		err = fmt.Errorf("%s values are not supported", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("importer: %s: %w", path, err)
	}
	return t, nil
}

// fields walks a message's fields, calling f with each field number and, for
// length-delimited fields, the bytes (else nil).
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, typ, v, 0); err != nil {
				return err
			}
			b = b[n:]
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, typ, nil, x); err != nil {
				return err
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeSequence(b []byte, dir string, depth int) (*tensor.Tensor, error) {
	if depth > 16 {
		return nil, errors.New("sequence nesting too deep")
	}
	var elems []*tensor.Tensor
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		var t *tensor.Tensor
		var err error
		switch {
		case num == 3 && typ == protowire.BytesType:
			t, err = DecodeTensor(v, dir)
		case num == 5 && typ == protowire.BytesType:
			t, err = decodeSequence(v, dir, depth+1)
		case num == 7 && typ == protowire.BytesType:
			t, err = decodeOptional(v, dir, depth+1)
		case (num == 4 || num == 6) && typ == protowire.BytesType:
			return errors.New("sparse tensor and map sequence elements are not supported")
		default:
			return nil
		}
		if err != nil {
			return err
		}
		elems = append(elems, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	return tensor.NewSequence(elems), nil
}

func decodeOptional(b []byte, dir string, depth int) (*tensor.Tensor, error) {
	if depth > 16 {
		return nil, errors.New("optional nesting too deep")
	}
	var val *tensor.Tensor
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		var err error
		switch {
		case num == 3 && typ == protowire.BytesType:
			val, err = DecodeTensor(v, dir)
		case num == 5 && typ == protowire.BytesType:
			val, err = decodeSequence(v, dir, depth+1)
		case num == 7 && typ == protowire.BytesType:
			val, err = decodeOptional(v, dir, depth+1)
		case (num == 4 || num == 6) && typ == protowire.BytesType:
			err = errors.New("sparse tensor and map optionals are not supported")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("optional: %w", err)
	}
	return tensor.NewOptional(val), nil
}
