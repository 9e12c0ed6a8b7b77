// Package inferencepb holds the Go bindings of the Open Inference Protocol's
// gRPC API (grpc_service.proto in this folder).
//
// To regenerate: apt-get install protobuf-compiler, then
// go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 and
// google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1, then
// go generate ./serve/inferencepb
package inferencepb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative grpc_service.proto
