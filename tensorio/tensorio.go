// Package tensorio reads and writes tensors in the file formats users bring:
// NumPy .npy and .npz (through codeberg.org/sbinet/npyio) and ONNX
// TensorProto .pb files.
package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npz"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/tensor"
)

// ReadNPY reads one array from a .npy stream (float16 ones too, which
// npyio does not read).
func ReadNPY(r io.Reader) (*tensor.Tensor, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if err := checkHeaderLen(data, uint64(len(data))); err != nil {
		return nil, err
	}
	var arr npy.Array
	if err := readArray(func() error { return npy.Read(bytes.NewReader(data), &arr) }); err != nil {
		if t, err2 := readNPYRaw(data); err2 == nil {
			return t, nil
		}
		return nil, fmt.Errorf("npy: %w", err)
	}
	t, err := fromArray(arr)
	if err != nil {
		if t, err2 := readNPYRaw(data); err2 == nil {
			return t, nil
		}
	}
	return t, err
}

// npyPrefix is the magic, the version and a version 2/3 header length.
const npyPrefix = 12

// maxHeader bounds an .npy header (NumPy itself refuses headers over 10000
// bytes by default); npyio would allocate whatever a damaged length says.
const maxHeader = 1 << 20

// checkHeaderLen refuses an implausible header length before npyio
// allocates it; size, when known, is the member's length.
func checkHeaderLen(prefix []byte, size uint64) error {
	if len(prefix) < npyPrefix || string(prefix[:6]) != "\x93NUMPY" || prefix[6] < 2 {
		return nil // npyio reports what is wrong, version 1 lengths are 16-bit
	}
	n := uint64(binary.LittleEndian.Uint32(prefix[8:12]))
	if n > maxHeader || (size > 0 && n+npyPrefix > size) {
		return fmt.Errorf("npy: header length %d is implausible (a damaged file?)", n)
	}
	return nil
}

// checkNPZHeaders applies checkHeaderLen to every member of a .npz file.
func checkNPZHeaders(path string) error {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil // npz.Open reports it
	}
	defer z.Close()
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			continue
		}
		prefix := make([]byte, npyPrefix)
		n, _ := io.ReadFull(rc, prefix)
		rc.Close()
		if err := checkHeaderLen(prefix[:n], f.UncompressedSize64); err != nil {
			return fmt.Errorf("array %q: %w", strings.TrimSuffix(f.Name, ".npy"), err)
		}
	}
	return nil
}

// readArray runs an npyio read, reporting a panic of the library on a
// malformed header (e.g. slice bounds out of range) as an error.
func readArray(read func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed array header (%v)", r)
		}
	}()
	return read()
}

func fromArray(arr npy.Array) (*tensor.Tensor, error) {
	if arr.Fortran() {
		return nil, fmt.Errorf("npy: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)")
	}
	shape := arr.Shape()
	if shape == nil {
		shape = []int{}
	}
	data := arr.Data()
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Slice {
		// a 0-d array comes back as a bare value
		s := reflect.MakeSlice(reflect.SliceOf(v.Type()), 1, 1)
		s.Index(0).Set(v)
		data = s.Interface()
	}
	var t *tensor.Tensor
	var err error
	switch d := data.(type) {
	case []float32:
		t, err = tensor.FromChecked(shape, d)
	case []float64:
		t, err = tensor.FromChecked(shape, d)
	case []int64:
		t, err = tensor.FromChecked(shape, d)
	case []int32:
		t, err = tensor.FromChecked(shape, d)
	case []int16:
		t, err = tensor.FromChecked(shape, d)
	case []int8:
		t, err = tensor.FromChecked(shape, d)
	case []uint8:
		t, err = tensor.FromChecked(shape, d)
	case []uint16:
		t, err = tensor.FromChecked(shape, d)
	case []uint32:
		t, err = tensor.FromChecked(shape, d)
	case []uint64:
		t, err = tensor.FromChecked(shape, d)
	case []bool:
		t, err = tensor.FromChecked(shape, d)
	default:
		return nil, fmt.Errorf("npy: element type %T is not supported", data)
	}
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return t, nil
}

// ReadNPZ reads every array of a .npz file, keyed by name without ".npy".
func ReadNPZ(path string) (map[string]*tensor.Tensor, error) {
	if err := checkNPZHeaders(path); err != nil {
		return nil, fmt.Errorf("npz %s: %w", path, err)
	}
	f, err := npz.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npz %s: %w", path, err)
	}
	defer f.Close()
	out := map[string]*tensor.Tensor{}
	for _, key := range f.Keys() {
		var arr npy.Array
		err := readArray(func() error { return f.Read(key, &arr) })
		var t *tensor.Tensor
		if err == nil {
			t, err = fromArray(arr)
		}
		if err != nil {
			// float16 arrays, which npyio reads into a type mtlrun does not hold
			if t2, err2 := readNPZMember(path, key); err2 == nil {
				t, err = t2, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("npz %s: array %q: %w", path, key, err)
		}
		out[strings.TrimSuffix(key, ".npy")] = t
	}
	return out, nil
}

// ReadFile reads a single tensor from .npy or .pb (TensorProto).
func ReadFile(path string) (*tensor.Tensor, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		t, err := ReadNPY(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	case ".pb":
		return importer.ReadTensorFile(path)
	}
	return nil, fmt.Errorf("%s: unknown tensor file type (want .npy, .npz or .pb)", path)
}

// WriteNPY writes t as a .npy stream.
func WriteNPY(w io.Writer, t *tensor.Tensor) error {
	if t.DType == tensor.Float16 {
		return writeNPYRaw(w, t)
	}
	v, err := nested(t)
	if err != nil {
		return err
	}
	return npy.Write(w, v)
}

// WriteNPZ writes named tensors to a .npz file, in name order.
func WriteNPZ(path string, ts map[string]*tensor.Tensor) error {
	names := make([]string, 0, len(ts))
	for k := range ts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if ts[name].DType == tensor.Float16 {
			return writeNPZRaw(path, names, ts) // npyio cannot write float16
		}
	}
	w, err := npz.Create(path)
	if err != nil {
		return err
	}
	for _, name := range names {
		v, err := nested(ts[name])
		if err != nil {
			w.Close()
			return fmt.Errorf("npz %s: %q: %w", path, name, err)
		}
		if err := w.Write(name, v); err != nil {
			w.Close()
			return fmt.Errorf("npz %s: %q: %w", path, name, err)
		}
	}
	return w.Close()
}

// nested turns a tensor into the nested Go slices from which npyio
// discovers the shape ([][]float32 for a matrix, a bare value for a scalar).
func nested(t *tensor.Tensor) (any, error) {
	switch t.DType {
	case tensor.String, tensor.Float16, tensor.BFloat16:
		return nil, fmt.Errorf("npy: cannot write %v tensors", t.DType)
	}
	for _, d := range t.Shape {
		if d == 0 {
			return nil, fmt.Errorf("npy: cannot write the empty tensor %v", t)
		}
	}
	flat := reflect.ValueOf(t.Data)
	if t.Rank() == 0 {
		return flat.Index(0).Interface(), nil
	}
	var build func(axis, offset int) reflect.Value
	build = func(axis, offset int) reflect.Value {
		if axis == t.Rank()-1 {
			return flat.Slice(offset, offset+t.Shape[axis])
		}
		stride := 1
		for _, d := range t.Shape[axis+1:] {
			stride *= d
		}
		first := build(axis+1, offset)
		out := reflect.MakeSlice(reflect.SliceOf(first.Type()), t.Shape[axis], t.Shape[axis])
		out.Index(0).Set(first)
		for i := 1; i < t.Shape[axis]; i++ {
			out.Index(i).Set(build(axis+1, offset+i*stride))
		}
		return out
	}
	return build(0, 0).Interface(), nil
}
