package importer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// external is a float tensor of the given dims stored in a side file.
func external(name string, dims []int64, kv ...string) *onnxpb.TensorProto {
	t := tp(name, tFloat, dims...)
	t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	for i := 0; i+1 < len(kv); i += 2 {
		t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
	}
	return t
}

// writeExternalModel writes model.onnx (y = x + b, b external) into dir.
func writeExternalModel(t *testing.T, dir string, b *onnxpb.TensorProto) string {
	t.Helper()
	mp := addModel(8, 13)
	mp.Graph.Initializer = []*onnxpb.TensorProto{b}
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, marshal(t, mp), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExternalData(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "model")
	if err := os.MkdirAll(filepath.Join(dir, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	// 8 bytes of padding, then the three floats, then trailing junk
	blob := append(append([]byte("PADDING!"), rawF32(1, 2, 3)...), "tail"...)
	mustWrite(t, filepath.Join(dir, "weights", "blob.bin"), blob)
	mustWrite(t, filepath.Join(dir, "plain.bin"), rawF32(4, 5, 6))
	secret := filepath.Join(root, "secret.bin")
	mustWrite(t, secret, rawF32(7, 8, 9))
	if err := os.Symlink(secret, filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("plain.bin", filepath.Join(dir, "inside_link.bin")); err != nil {
		t.Fatal(err)
	}

	ok := []struct {
		name string
		b    *onnxpb.TensorProto
		want []float32
	}{
		{"offset and length", external("b", []int64{3}, "location", "weights/blob.bin", "offset", "8", "length", "12"), []float32{1, 2, 3}},
		{"offset only", external("b", []int64{3}, "location", "weights/blob.bin", "offset", "8"), []float32{1, 2, 3}},
		{"whole file", external("b", []int64{3}, "location", "plain.bin"), []float32{4, 5, 6}},
		{"dot segments inside", external("b", []int64{3}, "location", "./weights/../plain.bin"), []float32{4, 5, 6}},
		{"symlink inside the folder", external("b", []int64{3}, "location", "inside_link.bin"), []float32{4, 5, 6}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			path := writeExternalModel(t, dir, c.b)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Graph.Initializer("b").Float32s(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("b = %v, want %v", got, c.want)
			}
			s, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Run(map[string]*tensor.Tensor{"x": tensor.From([]int{1, 3}, []float32{0, 0, 0})})
			if err != nil || !reflect.DeepEqual(res["y"].Float32s(), c.want) {
				t.Fatalf("run: %v %v", res, err)
			}
		})
	}

	bad := []struct {
		name   string
		b      *onnxpb.TensorProto
		unsafe bool
		want   string
	}{
		{"parent", external("b", []int64{3}, "location", "../secret.bin"), true, "../secret.bin"},
		{"parent via subfolder", external("b", []int64{3}, "location", "weights/../../secret.bin"), true, "secret.bin"},
		{"absolute", external("b", []int64{3}, "location", "/etc/passwd"), true, "/etc/passwd"},
		{"absolute to the file", external("b", []int64{3}, "location", secret), true, "secret.bin"},
		{"symlink outside", external("b", []int64{3}, "location", "link.bin"), true, "link.bin"},
		{"symlinked folder outside", external("b", []int64{3}, "location", "up/secret.bin"), true, "up/secret.bin"},
		{"missing file", external("b", []int64{3}, "location", "nope.bin"), false, "nope.bin"},
		{"no location", external("b", []int64{3}, "offset", "0"), false, "without a location"},
		{"length disagrees", external("b", []int64{3}, "location", "plain.bin", "length", "8"), false, "length 8"},
		{"past the end", external("b", []int64{3}, "location", "plain.bin", "offset", "4"), false, "outside plain.bin"},
		{"negative offset", external("b", []int64{3}, "location", "plain.bin", "offset", "-4"), false, "outside plain.bin"},
		{"overflowing offset", external("b", []int64{3}, "location", "plain.bin", "offset", "9223372036854775800"), false, "outside plain.bin"},
		{"bad offset", external("b", []int64{3}, "location", "plain.bin", "offset", "eight"), false, "offset"},
		{"absurd dims", external("b", []int64{1 << 20, 1 << 20}, "location", "plain.bin"), false, "too many elements"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			path := writeExternalModel(t, dir, c.b)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			if c.unsafe && !errors.Is(err, ErrUnsafeLocation) {
				t.Errorf("err = %v, want ErrUnsafeLocation", err)
			}
			for _, w := range []string{c.want, `"b"`} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// Decode without a folder refuses external data outright
	mp := addModel(8, 13)
	mp.Graph.Initializer = []*onnxpb.TensorProto{external("b", []int64{3}, "location", "plain.bin")}
	if _, err := Decode(marshal(t, mp), ""); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("Decode with no folder: %v", err)
	}
	// external data in a Constant node's tensor attribute is resolved the same way
	mp = addModel(8, 13)
	mp.Graph.Initializer = nil
	mp.Graph.Node = append([]*onnxpb.NodeProto{node("Constant", "k", nil, []string{"b"}, attrT("value", external("", []int64{3}, "location", "plain.bin")))}, mp.Graph.Node...)
	m, err := Decode(marshal(t, mp), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Nodes[0].Attrs.Tensor("value").Float32s(); !reflect.DeepEqual(got, []float32{4, 5, 6}) {
		t.Errorf("Constant from external data = %v", got)
	}
	mp.Graph.Node[0] = node("Constant", "k", nil, []string{"b"}, attrT("value", external("", []int64{3}, "location", "../secret.bin")))
	if _, err := Decode(marshal(t, mp), dir); !errors.Is(err, ErrUnsafeLocation) || !strings.Contains(err.Error(), `"k"`) {
		t.Errorf("escaping Constant: %v", err)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
