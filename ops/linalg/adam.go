package linalg

import (
	"fmt"
	"math"
)

// AdamUpdate is the element-wise step of the Adam optimiser (PyTorch's
// single-tensor form, float32 throughout): for each i, with gradient g,
//
//	m ← m·b1 + g·c1                 (c1 = 1-β1)
//	v ← v·b2 + (c2·g)·g             (c2 = 1-β2)
//	p ← p + (-lr)·(m / (√v / bc2 + eps))
//
// where bc2 is √(1-β2ᵗ) and lr the bias-corrected step size lr/(1-β1ᵗ).
// It updates p, m and v in place (p is the caller's new parameter slice).
// Every kernel set does the same float32 operations in the same order
// (correctly rounded square roots and divisions, no fused multiply-adds),
// so all sets give bitwise the same results as the Go loop.
func AdamUpdate(p, g, m, v []float32, b1, c1, b2, c2, bc2, eps, lr float32) {
	n := len(p)
	if len(g) < n || len(m) < n || len(v) < n {
		panic(fmt.Sprintf("linalg: AdamUpdate of %d parameters: gradient of %d, moments of %d and %d", n, len(g), len(m), len(v)))
	}
	if n == 0 {
		return
	}
	j := adamVec(p, g, m, v, b1, c1, b2, c2, bc2, eps, -lr)
	adamGo(p[j:n], g[j:n], m[j:n], v[j:n], b1, c1, b2, c2, bc2, eps, -lr)
}

// adamGo is AdamUpdate's loop (the reference, and the tail the vector
// kernels leave); nlr is -lr.
func adamGo(p, g, m, v []float32, b1, c1, b2, c2, bc2, eps, nlr float32) {
	for i := range p {
		gi := g[i]
		// the float32 conversions keep a compiler from fusing a multiply
		// and an add (Go may, the vector kernels do not)
		mi := float32(m[i]*b1) + float32(gi*c1)
		vi := float32(v[i]*b2) + float32(float32(c2*gi)*gi)
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/bc2 + eps
		p[i] += float32(nlr * (mi / denom))
	}
}
