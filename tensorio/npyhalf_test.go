package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

// npyBytes builds a version-1 .npy file by the format's specification.
func npyBytes(header string, raw []byte) []byte {
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(raw)
	return b.Bytes()
}

// half holds float16 bit patterns and their values (IEEE 754 binary16).
var half = []struct {
	bits uint16
	val  float32
}{{0x3C00, 1}, {0xC000, -2}, {0x3800, 0.5}, {0x7BFF, 65504}, {0x0001, 5.9604645e-08}, {0x0000, 0}}

func halfRaw() []byte {
	raw := make([]byte, 2*len(half))
	for i, h := range half {
		binary.LittleEndian.PutUint16(raw[2*i:], h.bits)
	}
	return raw
}

func checkHalf(t *testing.T, got *tensor.Tensor, shape []int) {
	t.Helper()
	if got.DType != tensor.Float16 || !tensor.SameShape(got.Shape, shape) {
		t.Fatalf("got %v, want float16%v", got, shape)
	}
	for i, v := range got.Data.([]tensor.Float16Bits) {
		if uint16(v) != half[i].bits || tensor.Float16ToFloat32(v) != half[i].val {
			t.Errorf("element %d: bits %#04x (%v), want %#04x (%v)", i, uint16(v), tensor.Float16ToFloat32(v), half[i].bits, half[i].val)
		}
	}
}

func TestReadFloat16NPY(t *testing.T) {
	data := npyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", halfRaw())
	got, err := ReadNPY(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	checkHalf(t, got, []int{2, 3})

	// round trip through WriteNPY and the .npy file path of ReadFile
	path := filepath.Join(t.TempDir(), "h.npy")
	var b bytes.Buffer
	if err := WriteNPY(&b, got); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkHalf(t, back, []int{2, 3})

	// a float16 .npz member (as numpy.savez writes it) and a float16 NPZ round trip
	npzPath := filepath.Join(t.TempDir(), "h.npz")
	f, _ := os.Create(npzPath)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("x.npy")
	w.Write(npyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }", halfRaw()))
	w, _ = zw.Create("n.npy")
	w.Write(npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", []byte{7, 0, 0, 0, 0, 0, 0, 0}))
	zw.Close()
	f.Close()
	m, err := ReadNPZ(npzPath)
	if err != nil {
		t.Fatal(err)
	}
	checkHalf(t, m["x"], []int{6})
	if n := m["n"]; n == nil || n.Int64s()[0] != 7 {
		t.Errorf("n = %v", n)
	}
	out := filepath.Join(t.TempDir(), "o.npz")
	if err := WriteNPZ(out, m); err != nil {
		t.Fatal(err)
	}
	m2, err := ReadNPZ(out)
	if err != nil {
		t.Fatal(err)
	}
	checkHalf(t, m2["x"], []int{6})
	if n := m2["n"]; n == nil || n.Int64s()[0] != 7 || n.Rank() != 0 {
		t.Errorf("n after the round trip = %v", n)
	}
}

func TestReadNPYRawErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"magic":   []byte("not numpy at all"),
		"dtype":   npyBytes("{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }", []byte{0, 0}),
		"fortran": npyBytes("{'descr': '<f2', 'fortran_order': True, 'shape': (1,), }", []byte{0, 0}),
		"short":   npyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", []byte{0, 0}),
	} {
		if _, err := ReadNPY(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadNPY(f *testing.F) {
	f.Add(npyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", halfRaw()))
	f.Add(npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", []byte{1, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tt, err := readNPYRaw(data)
		if err == nil {
			if err := tt.Validate(); err != nil {
				t.Fatalf("invalid tensor %v: %v", tt, err)
			}
		}
	})
}
