package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

// npyio reads and writes every NumPy dtype mtlrun holds except float16
// ("<f2"). This file parses and writes the .npy format (version 1-3: magic,
// header length, a Python dict literal with descr, fortran_order and shape,
// then the raw little-endian data) for that case; ReadNPY and ReadNPZ fall
// back to it when npyio refuses an array.

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// npyDTypes maps little-endian (or byte-order-free) descrs to dtypes.
var npyDTypes = map[string]tensor.DType{
	"<f2": tensor.Float16, "<f4": tensor.Float32, "<f8": tensor.Float64,
	"|i1": tensor.Int8, "<i2": tensor.Int16, "<i4": tensor.Int32, "<i8": tensor.Int64,
	"|u1": tensor.Uint8, "<u2": tensor.Uint16, "<u4": tensor.Uint32, "<u8": tensor.Uint64,
	"|b1": tensor.Bool,
}

// readNPYRaw parses a whole .npy file held in data.
func readNPYRaw(data []byte) (*tensor.Tensor, error) {
	if len(data) < 10 || string(data[:6]) != "\x93NUMPY" {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen, off int
	switch data[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, errors.New("npy: truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, fmt.Errorf("npy: unknown format version %d", data[6])
	}
	if off+hlen > len(data) {
		return nil, errors.New("npy: truncated header")
	}
	header := string(data[off : off+hlen])
	body := data[off+hlen:]
	m := reDescr.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("npy: no descr in header %q", header)
	}
	descr := m[1]
	if strings.HasPrefix(descr, "=") || strings.HasPrefix(descr, "|") {
		descr = "<" + descr[1:]
		if descr[1:] == "i1" || descr[1:] == "u1" || descr[1:] == "b1" {
			descr = "|" + descr[1:]
		}
	}
	dt, ok := npyDTypes[descr]
	if !ok {
		return nil, fmt.Errorf("npy: dtype %q is not supported (little-endian numeric and bool only)", m[1])
	}
	if f := reFortran.FindStringSubmatch(header); f != nil && f[1] == "True" {
		return nil, errors.New("npy: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)")
	}
	s := reShape.FindStringSubmatch(header)
	if s == nil {
		return nil, fmt.Errorf("npy: no shape in header %q", header)
	}
	shape := []int{}
	for _, part := range strings.Split(s[1], ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("npy: bad shape %q", s[1])
		}
		shape = append(shape, d)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if len(body) < tensor.RawBytes(dt, n) {
		return nil, fmt.Errorf("npy: %v%v needs %d bytes of data, file has %d", dt, shape, tensor.RawBytes(dt, n), len(body))
	}
	vals, err := tensor.DecodeRaw(dt, body[:tensor.RawBytes(dt, n)], n)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: vals}, nil
}

// writeNPYRaw writes t (any dtype of npyDTypes) as a version-1 .npy stream.
func writeNPYRaw(w io.Writer, t *tensor.Tensor) error {
	descr := ""
	for k, v := range npyDTypes {
		if v == t.DType {
			descr = k
		}
	}
	if descr == "" {
		return fmt.Errorf("npy: cannot write %v tensors", t.DType)
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape)
	// pad with spaces so that the data starts at a multiple of 64 bytes
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	raw, err := tensor.EncodeRaw(t)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(raw)
	_, err = w.Write(b.Bytes())
	return err
}

// readNPZMember reads one array of a .npz (a zip of .npy files) with
// readNPYRaw.
func readNPZMember(path, key string) (*tensor.Tensor, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != key && f.Name != key+".npy" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, 1<<34))
		if err != nil {
			return nil, err
		}
		return readNPYRaw(data)
	}
	return nil, fmt.Errorf("no member %q", key)
}

// writeNPZRaw writes named tensors as a .npz (stored zip of .npy members)
// with writeNPYRaw.
func writeNPZRaw(path string, names []string, ts map[string]*tensor.Tensor) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, name := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
		if err == nil {
			err = writeNPYRaw(w, ts[name])
		}
		if err != nil {
			zw.Close()
			f.Close()
			return fmt.Errorf("npz %s: %q: %w", path, name, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
