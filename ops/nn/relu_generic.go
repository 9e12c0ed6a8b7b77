//go:build (!amd64 && !arm64) || purego

package nn

// biasAdd is row[x] += bias[x].
func biasAdd(row, bias []float32) {
	bias = bias[:len(row)]
	for x, v := range row {
		row[x] = v + bias[x]
	}
}

// biasRelu is row[x] = relu(row[x] + bias[x]).
func biasRelu(row, bias []float32) {
	bias = bias[:len(row)]
	for x, v := range row {
		row[x] = relu(v + bias[x])
	}
}

// reluSlice is x[i] = relu(x[i]).
func reluSlice(x []float32) {
	for i, v := range x {
		x[i] = relu(v)
	}
}

// leakyRelu is ops/math's LeakyRelu in place: x·alpha where x < 0.
func leakyRelu(x []float32, alpha float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = v * alpha
		}
	}
}
