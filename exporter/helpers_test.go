package exporter_test

import (
	"math"
	"strconv"

	"github.com/mtlrun/mtlrun/tensor"
)

type tensorT = tensor.Tensor

func itoa(i int) string { return strconv.Itoa(i) }

// bothNaNEqual treats NaN as equal to NaN at the same positions (DeepEqual
// does not), so a NaN-producing test case still counts as identical.
func bothNaNEqual(a, b *tensor.Tensor) bool {
	x, err1 := tensor.AsFloat64(a)
	y, err2 := tensor.AsFloat64(b)
	if err1 != nil || err2 != nil || len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] && !(math.IsNaN(x[i]) && math.IsNaN(y[i])) {
			return false
		}
	}
	return true
}
