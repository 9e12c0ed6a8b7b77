// Package tritonpb is Go code generated from Triton Inference Server's
// official gRPC protos (grpc_service.proto, model_config.proto, health.proto),
// vendored unchanged (see ../README.md for their source and licence). It is
// used only by the interop tests, which check that a client generated from
// them talks to mtlrun serve.
//
// Its proto packages are "inference" and "grpc.health.v1", the same as
// serve/inferencepb's and grpc-go's health service, so it must never be linked
// into a binary with package serve or google.golang.org/grpc/health; the tests
// run the server as a separate `mtlrun serve` process.
package tritonpb

//go:generate protoc -I. --go_out=. --go_opt=paths=source_relative --go_opt=Mgrpc_service.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb --go_opt=Mmodel_config.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb --go_opt=Mhealth.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mgrpc_service.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb --go-grpc_opt=Mmodel_config.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb --go-grpc_opt=Mhealth.proto=github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb grpc_service.proto model_config.proto health.proto
