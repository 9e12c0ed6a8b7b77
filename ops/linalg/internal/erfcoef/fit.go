//go:build ignore

// Fit recomputes Coef: `go run fit.go` prints, per interval, the float32
// error of its polynomial against math.Erf (with fused multiply-adds and
// without) and then the coefficient table as float32 bits.
//
// Each interval [k/2, k/2 + ½) gets a degree-7 polynomial in u = x - Mid[k]
// by Lawson's iteration (weighted least squares, each point's weight
// multiplied by its error every round, which converges to the minimax
// fit) on 3001 Chebyshev-spaced points; interval 0 fits erf(x)/x-relative
// error with the constant term fixed at 0.
package main

import (
	"fmt"
	"math"
)

const deg = 7

func main() {
	var tab [8][deg + 1]float32
	for k := 0; k < 8; k++ {
		lo, hi := float64(k)/2, float64(k+1)/2
		center, rel := lo+0.25, k == 0
		if rel {
			center = 0
		}
		first, s := 0, 0.25 // s scales u for conditioning
		if rel {
			first, s = 1, 0.5
		}
		const G = 3000
		var us, ys, base []float64
		for i := 0; i <= G; i++ {
			x := lo + (hi-lo)*(0.5-0.5*math.Cos(math.Pi*float64(i)/G))
			us = append(us, x-center)
			ys = append(ys, math.Erf(x))
			w := 1.0
			if rel && x > 0 {
				w = 1 / (math.Erf(x) * math.Erf(x))
			}
			base = append(base, w)
		}
		A := make([][]float64, len(us))
		for i, u := range us {
			for j := first; j <= deg; j++ {
				A[i] = append(A[i], math.Pow(u/s, float64(j)))
			}
		}
		wt := make([]float64, len(us))
		for i := range wt {
			wt[i] = 1
		}
		var c []float64
		for it := 0; it < 300; it++ {
			w := make([]float64, len(wt))
			for i := range w {
				w[i] = wt[i] * base[i]
			}
			c = lsq(A, ys, w)
			var sum float64
			for i := range us {
				var p float64
				for j := range c {
					p += c[j] * A[i][j]
				}
				e := math.Abs(p - ys[i])
				if rel && ys[i] > 0 {
					e /= ys[i]
				}
				wt[i] *= e + 1e-30
				sum += wt[i]
			}
			for i := range wt {
				wt[i] /= sum / float64(len(wt))
			}
		}
		for j := range c {
			tab[k][j+first] = float32(c[j] / math.Pow(s, float64(j+first)))
		}
		var worst, worstRel, worstNF float64
		for x := float32(max(lo, 1e-6)); x < float32(hi); x = math.Nextafter32(x, 10) {
			u := x - float32(center)
			p, q := tab[k][deg], tab[k][deg]
			for j := deg - 1; j >= 0; j-- {
				p = float32(math.FMA(float64(p), float64(u), float64(tab[k][j])))
				q = q*u + tab[k][j]
			}
			w := math.Erf(float64(x))
			e := math.Abs(float64(p) - w)
			worst, worstNF = math.Max(worst, e), math.Max(worstNF, math.Abs(float64(q)-w))
			if rel {
				worstRel = math.Max(worstRel, e/w)
			}
		}
		fmt.Printf("interval %d [%g, %g): abs %.3g (no FMA %.3g), relative %.3g\n", k, lo, hi, worst, worstNF, worstRel)
	}
	fmt.Println("var Coef = [8][8]uint32{")
	for j := 0; j <= deg; j++ {
		fmt.Print("\t{")
		for k := range tab {
			if k > 0 {
				fmt.Print(", ")
			}
			fmt.Printf("%#08x", math.Float32bits(tab[k][j]))
		}
		fmt.Println("},")
	}
	fmt.Println("}")
}

// lsq solves the weighted least-squares problem min Σ w_i (A_i·c - b_i)²
// by its normal equations (Gauss-Jordan with partial pivoting).
func lsq(A [][]float64, b, w []float64) []float64 {
	m := len(A[0])
	N := make([][]float64, m)
	for i := range N {
		N[i] = make([]float64, m+1)
	}
	for r := range A {
		for i := 0; i < m; i++ {
			for j := 0; j < m; j++ {
				N[i][j] += w[r] * A[r][i] * A[r][j]
			}
			N[i][m] += w[r] * A[r][i] * b[r]
		}
	}
	for c := 0; c < m; c++ {
		p := c
		for r := c + 1; r < m; r++ {
			if math.Abs(N[r][c]) > math.Abs(N[p][c]) {
				p = r
			}
		}
		N[c], N[p] = N[p], N[c]
		for r := 0; r < m; r++ {
			if r != c {
				f := N[r][c] / N[c][c]
				for k := c; k <= m; k++ {
					N[r][k] -= f * N[c][k]
				}
			}
		}
	}
	x := make([]float64, m)
	for i := range x {
		x[i] = N[i][m] / N[i][i]
	}
	return x
}
