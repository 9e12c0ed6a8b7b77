//go:build !amd64 || purego

package linalg

func expVec(x []float32) { expGo(x) }
