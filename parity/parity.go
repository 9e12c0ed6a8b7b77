// Package parity checks mtlrun against onnxruntime, the reference runtime:
// it runs a model in both on the same inputs and reports, per output, the
// largest absolute and relative error and whether classification decisions
// (argmax of a softmax, a sigmoid's 0.5 threshold) agree on every row.
//
// It is the only package that uses cgo: onnxruntime (1.24, the shared
// library shipped in the npm package onnxruntime-node@1.24.1) is loaded at
// run time through github.com/yalue/onnxruntime_go. Without cgo the package
// builds to a stub whose entry points return ErrNoCgo; the pure-Go parts
// (Compare, RandomInputs, ClassifierKind) work in every build.
package parity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLibraryMissing means the onnxruntime shared library was not found.
// Errors wrapping it carry InstallHint.
var ErrLibraryMissing = errors.New("parity: the onnxruntime shared library was not found")

// ErrNoCgo is returned by every onnxruntime entry point of a build without cgo.
var ErrNoCgo = errors.New("parity: mtlrun was built without cgo; parity needs CGO_ENABLED=1 (onnxruntime is loaded through cgo)")

// LibraryEnv names the environment variable holding the library's path.
const LibraryEnv = "ONNXRUNTIME_LIB"

// CacheLibrary is where scripts/install-onnxruntime.sh puts the library,
// relative to the repository root.
const CacheLibrary = ".cache/onnxruntime/libonnxruntime.so.1"

// InstallHint tells a user how to get the library.
const InstallHint = `To install it, run from the mtlrun repository:
    bash scripts/install-onnxruntime.sh
(it fetches onnxruntime-node@1.24.1 with "npm pack" and keeps its
libonnxruntime.so.1 in .cache/onnxruntime/), or set ONNXRUNTIME_LIB to the
path of an onnxruntime 1.24 libonnxruntime.so.`

// Options configure an onnxruntime session.
type Options struct {
	// Threads is onnxruntime's intra-op thread count; 0 means 1.
	Threads int
	// NoOptimize turns off onnxruntime's graph optimisations (fusions), to
	// compare against the graph exactly as written.
	NoOptimize bool
	// Isolate runs onnxruntime in a child process (see RunWorkerIfChild),
	// so that a crash inside it is an error, not the end of this process.
	// NewChecker sets it unless MTLRUN_PARITY_IN_PROCESS=1.
	Isolate bool
}

// LibraryPath finds libonnxruntime: $ONNXRUNTIME_LIB if set, else
// .cache/onnxruntime/libonnxruntime.so.1 in the working directory or one of
// its parents, or in the executable's directory or one of its parents.
// When none exists the error wraps ErrLibraryMissing and says how to
// install the library.
func LibraryPath() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v\n%s", ErrLibraryMissing, LibraryEnv, p, err, InstallHint)
		}
		if st.IsDir() {
			return "", fmt.Errorf("%w: %s=%s is a directory, not the .so file\n%s", ErrLibraryMissing, LibraryEnv, p, InstallHint)
		}
		return p, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	var tried []string
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, filepath.FromSlash(CacheLibrary))
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				tried = append(tried, p)
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	where := ""
	if len(tried) > 0 {
		where = fmt.Sprintf(" (%s is unset; looked for %s)", LibraryEnv, tried[0])
	} else {
		where = fmt.Sprintf(" (%s is unset and no .cache/onnxruntime folder was found above the working directory)", LibraryEnv)
	}
	return "", fmt.Errorf("%w%s\n%s", ErrLibraryMissing, where, InstallHint)
}
