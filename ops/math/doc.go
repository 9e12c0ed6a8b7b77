// Package math holds the element-wise kernels: arithmetic with NumPy
// broadcasting, unary math, activations, comparisons, logic, casts and the
// variadic Max/Min/Sum/Mean.
package math
