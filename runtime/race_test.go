//go:build race

package runtime_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// kernels' pooled buffers allocate and allocation counts mean nothing.
const raceEnabled = true
