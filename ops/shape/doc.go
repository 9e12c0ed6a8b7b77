// Package shape holds the kernels that move data without arithmetic:
// reshaping, slicing, gathering, concatenation, padding and friends.
package shape
