// Package parity checks mtlrun against onnxruntime, the reference runtime:
// it runs a model in both on the same inputs and reports, per output, the
// largest absolute and relative error and whether classification decisions
// agree. It is the only package that uses cgo (onnxruntime through
// github.com/yalue/onnxruntime_go); without cgo it builds to a stub that
// says so.
package parity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLibraryMissing means the onnxruntime shared library was not found.
var ErrLibraryMissing = errors.New("the onnxruntime shared library was not found")

// InstallHint tells a user how to get the library.
const InstallHint = `install it with:  bash scripts/install-onnxruntime.sh
(fetches onnxruntime-node@1.24.1 with npm pack and keeps libonnxruntime.so.1 in .cache/onnxruntime/),
or point ONNXRUNTIME_LIB at an onnxruntime 1.24 libonnxruntime.so`

// LibraryPath finds libonnxruntime: $ONNXRUNTIME_LIB, else
// .cache/onnxruntime/libonnxruntime.so.1 in the working directory or any
// parent (the repository's cache folder).
func LibraryPath() (string, error) {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: ONNXRUNTIME_LIB=%s: %v\n%s", ErrLibraryMissing, p, err, InstallHint)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err == nil {
		for {
			p := filepath.Join(dir, ".cache", "onnxruntime", "libonnxruntime.so.1")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%w\n%s", ErrLibraryMissing, InstallHint)
}
