package tensorio

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestNPYRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		t    *tensor.Tensor
	}{
		{"float32 matrix", tensor.From([]int{2, 3}, []float32{1, -2.5, 3, 4, 5e-8, -6})},
		{"float64 rank 3", tensor.From([]int{2, 1, 2}, []float64{1, 2, 3, 4})},
		{"int64 vector", tensor.From([]int{3}, []int64{-1, 0, 1 << 40})},
		{"int32", tensor.From([]int{1, 2}, []int32{7, -7})},
		{"uint8", tensor.From([]int{4}, []uint8{0, 1, 128, 255})},
		{"bool", tensor.From([]int{2}, []bool{true, false})},
		{"scalar", tensor.From([]int{}, []float32{42})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNPY(&buf, c.t); err != nil {
				t.Fatal(err)
			}
			got, err := ReadNPY(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != c.t.DType || !reflect.DeepEqual(got.Shape, c.t.Shape) || !reflect.DeepEqual(got.Data, c.t.Data) {
				t.Errorf("read back %v %v %v, want %v %v %v", got.DType, got.Shape, got.Data, c.t.DType, c.t.Shape, c.t.Data)
			}
		})
	}
}

func TestNPYRefuses(t *testing.T) {
	cases := []struct {
		name string
		t    *tensor.Tensor
		want string
	}{
		{"empty", tensor.From([]int{0, 3}, []float32{}), "empty tensor"},
	}
	for _, c := range cases {
		if err := WriteNPY(&bytes.Buffer{}, c.t); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestNPZRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.npz")
	in := map[string]*tensor.Tensor{
		"x": tensor.From([]int{2, 2}, []float32{1, 2, 3, 4}),
		"y": tensor.From([]int{3}, []int64{5, 6, 7}),
	}
	if err := WriteNPZ(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d arrays, want %d", len(out), len(in))
	}
	for k, want := range in {
		got := out[k]
		if got == nil || !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data, want.Data) {
			t.Errorf("%s: read back %v, want %v", k, got, want)
		}
	}
	// ReadFile picks the reader by extension
	npyPath := filepath.Join(t.TempDir(), "x.npy")
	var buf bytes.Buffer
	if err := WriteNPY(&buf, in["x"]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(npyPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(npyPath); err != nil || !reflect.DeepEqual(got.Data, in["x"].Data) {
		t.Errorf("ReadFile(.npy) = %v, %v", got, err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "x.csv")); err == nil || !strings.Contains(err.Error(), "unknown tensor file type") {
		t.Errorf("ReadFile(.csv) err = %v", err)
	}
}
