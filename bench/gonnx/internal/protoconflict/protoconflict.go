// Package protoconflict lets two generated copies of the ONNX protobuf schema
// live in one binary.
//
// mtlrun (internal/onnxpb) and gonnx (gonnx/onnx) each register the messages
// of package "onnx" (onnx.ModelProto, onnx.OperatorStatus, ...) in the global
// protobuf registry, and google.golang.org/protobuf panics on such a name
// conflict while the second package initialises. Neither side looks messages
// up in the global registry (each unmarshals into its own generated types), so
// the conflict is harmless here; the registry's documented escape hatch is the
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT environment variable, which it reads
// when the conflict happens.
//
// This package sets that variable (unless the caller already did) in its init.
// It imports only os, and its import path sorts before every
// google.golang.org/protobuf package, so by the Go initialisation order
// (packages sorted by import path, each initialised once its imports are) it
// runs before either generated package registers its descriptors. Import it
// for its side effect, from package main.
package protoconflict

import "os"

// Env is the variable google.golang.org/protobuf/reflect/protoregistry reads.
const Env = "GOLANG_PROTOBUF_REGISTRATION_CONFLICT"

func init() {
	if os.Getenv(Env) == "" {
		_ = os.Setenv(Env, "ignore")
	}
}
