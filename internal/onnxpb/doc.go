// Package onnxpb holds Go bindings for the ONNX protobuf schema, generated
// from the official onnx.proto that Debian's python3-onnx ships. It is used by
// the importer and the exporter only; nothing else sees protobuf.
//
// To regenerate: apt-get install protobuf-compiler python3-onnx, then
// go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 and
// go generate ./internal/onnxpb
package onnxpb

//go:generate sh -c "protoc -I/usr/lib/python3/dist-packages/onnx --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/mtlrun/mtlrun/internal/onnxpb onnx.proto"
