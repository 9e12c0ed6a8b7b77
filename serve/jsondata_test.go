package serve

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeJSONData: typed JSON data of a 16×100 FP32 request.
func BenchmarkDecodeJSONData(b *testing.B) {
	x := randInput([]int{16, 100, 1}, 0)
	raw, _ := json.Marshal(x.Float32s())
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := decodeJSONData("input", raw, x.DType, x.Shape); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendJSONData: the response side of the same tensor.
func BenchmarkAppendJSONData(b *testing.B) {
	x := randInput([]int{16, 100, 1}, 0)
	var buf []byte
	for b.Loop() {
		buf = appendJSONData(buf[:0], x)
	}
	b.SetBytes(int64(len(buf)))
}
