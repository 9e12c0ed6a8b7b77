package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

// FuzzParseInferRequest: any header length and body either decode into
// valid tensors whose sizes match their shapes, or fail with a
// *BadRequest; nothing panics.
func FuzzParseInferRequest(f *testing.F) {
	f.Add("", []byte(`{"inputs":[{"name":"input","shape":[1,3,1],"datatype":"FP32","data":[1,2,3]}]}`))
	f.Add("", []byte(`{"inputs":[{"name":"a","shape":[2,2],"datatype":"INT64","data":[[1,2],[3,4]]},{"name":"b","shape":[],"datatype":"BOOL","data":true}]}`))
	f.Add("", []byte(`{"inputs":[{"name":"u","shape":[0,5],"datatype":"UINT8","data":[]}]}`))
	header := `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	f.Add(strconv.Itoa(len(header)), append([]byte(header), 0, 0, 128, 63, 0, 0, 0, 64))
	h2 := `{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","parameters":{"binary_data_size":1}},{"name":"y","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":9223372036854775807}}]}`
	f.Add(strconv.Itoa(len(h2)), append([]byte(h2), 1, 2, 3))
	f.Add("5", []byte(`{"inputs":[]}`))
	f.Fuzz(func(t *testing.T, headerLen string, body []byte) {
		req, inputs, err := parseInferRequest(headerLen, body)
		if err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("error %T %v is not a *BadRequest", err, err)
			}
			return
		}
		if req == nil || len(inputs) != len(req.Inputs) {
			t.Fatalf("%d tensors for %d inputs", len(inputs), len(req.Inputs))
		}
		for name, x := range inputs {
			if err := x.Validate(); err != nil {
				t.Fatalf("input %q: invalid tensor: %v", name, err)
			}
		}
	})
}

// FuzzJSONData: the data decoder agrees with encoding/json on every FP64
// array it accepts (same values, flattened), and refuses only with a
// *BadRequest. Integer types are exact: what it accepts as INT64 round-
// trips through strconv.
func FuzzJSONData(f *testing.F) {
	f.Add([]byte(`[1, 2.5, -3e2]`), 3, 1)
	f.Add([]byte(`[[1,2],[3,4]]`), 2, 2)
	f.Add([]byte(`[[1,2],[3]]`), 2, 2)
	f.Add([]byte(`[1e999]`), 1, 1)
	f.Add([]byte(` [ 9007199254740993 ] `), 1, 1)
	f.Add([]byte(`[[[]]]`), 0, 1)
	f.Add([]byte(`[-0, 0.0, 1E+2]`), 3, 1)
	f.Add([]byte(`[01]`), 1, 1)
	f.Fuzz(func(t *testing.T, data []byte, d0, d1 int) {
		if d0 < 0 || d1 < 0 || d0 > 64 || d1 > 64 {
			return
		}
		shape := []int{d0, d1}
		x, err := decodeJSONData("in", data, tensor.Float64, shape)
		if err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("error %T %v is not a *BadRequest", err, err)
			}
		} else {
			var doc any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("accepted %q, which encoding/json rejects: %v", data, err)
			}
			var flat []float64
			var walk func(v any)
			walk = func(v any) {
				switch v := v.(type) {
				case []any:
					for _, e := range v {
						walk(e)
					}
				case float64:
					flat = append(flat, v)
				default:
					t.Fatalf("accepted %q with a non-number %v", data, v)
				}
			}
			walk(doc)
			got := x.Float64s()
			if len(flat) != len(got) {
				t.Fatalf("%q: %d values, encoding/json sees %d", data, len(got), len(flat))
			}
			for i := range got {
				if got[i] != flat[i] && !(math.IsNaN(got[i]) && math.IsNaN(flat[i])) {
					t.Fatalf("%q: value %d is %v, encoding/json reads %v", data, i, got[i], flat[i])
				}
			}
		}
		if y, err := decodeJSONData("in", data, tensor.Int64, shape); err == nil {
			var doc any
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if dec.Decode(&doc) != nil {
				t.Fatalf("accepted %q as INT64, which encoding/json rejects", data)
			}
			var k int
			var walk func(v any)
			walk = func(v any) {
				switch v := v.(type) {
				case []any:
					for _, e := range v {
						walk(e)
					}
				case json.Number:
					n, err := v.Int64()
					if err != nil || n != y.Int64s()[k] {
						t.Fatalf("%q: element %d is %d, the literal says %s", data, k, y.Int64s()[k], v)
					}
					k++
				}
			}
			walk(doc)
		}
	})
}
