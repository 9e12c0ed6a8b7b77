//go:build race

package nn

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// linalg's pooled A-panel buffers allocate and allocation counts mean
// nothing.
const raceEnabled = true
