// Package kservepb is Go code generated from KServe's official Open Inference
// Protocol (v2) gRPC proto, vendored unchanged in grpc_predict_v2.proto (see
// ../README.md for its source and licence). It is used only by the interop
// tests, which check that a client generated from it talks to mtlrun serve.
//
// Its proto package is "inference", the same as serve/inferencepb's, so it
// must never be linked into a binary with package serve (protobuf would
// refuse the duplicate registration); the tests run the server as a separate
// `mtlrun serve` process.
package kservepb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go_opt=Mgrpc_predict_v2.proto=github.com/mtlrun/mtlrun/serve/internal/interop/kservepb --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mgrpc_predict_v2.proto=github.com/mtlrun/mtlrun/serve/internal/interop/kservepb grpc_predict_v2.proto
