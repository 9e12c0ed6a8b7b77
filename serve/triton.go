package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
)

// Triton's gRPC API extends KServe's GRPCInferenceService with more calls
// on the same service. mtlrun answers the ones a Triton client needs for a
// served model — ModelConfig, ModelStatistics, RepositoryIndex,
// RepositoryModelLoad and RepositoryModelUnload — with the subset of
// Triton's messages it fills, described here at run time (field names and
// numbers as in Triton's grpc_service.proto and model_config.proto;
// fields a client sends that are not listed are ignored). The answers are
// the REST documents (stats.go, repository.go) converted with protojson,
// so both protocols say the same thing.

// tritonFile describes the messages. It is not registered globally, so a
// program that links Triton's own generated package does not conflict.
var tritonFile = func() protoreflect.FileDescriptor {
	const (
		str    = descriptorpb.FieldDescriptorProto_TYPE_STRING
		boolT  = descriptorpb.FieldDescriptorProto_TYPE_BOOL
		i32    = descriptorpb.FieldDescriptorProto_TYPE_INT32
		i64    = descriptorpb.FieldDescriptorProto_TYPE_INT64
		u64    = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		msg    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		enum   = descriptorpb.FieldDescriptorProto_TYPE_ENUM
		single = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		rep    = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	)
	type f struct {
		name     string
		num      int32
		typ      descriptorpb.FieldDescriptorProto_Type
		label    descriptorpb.FieldDescriptorProto_Label
		typeName string
	}
	message := func(name string, fields []f, nested ...*descriptorpb.DescriptorProto) *descriptorpb.DescriptorProto {
		m := &descriptorpb.DescriptorProto{Name: &name, NestedType: nested}
		for _, x := range fields {
			fd := &descriptorpb.FieldDescriptorProto{Name: ptr(x.name), Number: ptr(x.num), Type: x.typ.Enum(), Label: x.label.Enum(), JsonName: ptr(x.name)}
			if x.typeName != "" {
				fd.TypeName = ptr(x.typeName)
			}
			if x.label == rep && (x.typ == i32 || x.typ == i64 || x.typ == u64) {
				fd.Options = &descriptorpb.FieldOptions{Packed: ptr(true)}
			}
			m.Field = append(m.Field, fd)
		}
		return m
	}
	nameVersion := []f{{"name", 1, str, single, ""}, {"version", 2, str, single, ""}}
	duration := []f{{"count", 1, u64, single, ""}, {"ns", 2, u64, single, ""}}
	sd := ".inference.StatisticDuration"
	repoModel := []f{{"repository_name", 1, str, single, ""}, {"model_name", 2, str, single, ""}}
	dataTypes := []string{"TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64",
		"TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING", "TYPE_BF16"}
	dt := &descriptorpb.EnumDescriptorProto{Name: ptr("DataType")}
	for i, n := range dataTypes {
		dt.Value = append(dt.Value, &descriptorpb.EnumValueDescriptorProto{Name: ptr(n), Number: ptr(int32(i))})
	}
	instanceGroup := message("ModelInstanceGroup", []f{{"name", 1, str, single, ""}, {"count", 2, i32, single, ""},
		{"kind", 4, enum, single, ".inference.ModelInstanceGroup.Kind"}})
	instanceGroup.EnumType = []*descriptorpb.EnumDescriptorProto{{Name: ptr("Kind"), Value: []*descriptorpb.EnumValueDescriptorProto{
		{Name: ptr("KIND_AUTO"), Number: ptr(int32(0))}, {Name: ptr("KIND_GPU"), Number: ptr(int32(1))},
		{Name: ptr("KIND_CPU"), Number: ptr(int32(2))}, {Name: ptr("KIND_MODEL"), Number: ptr(int32(3))}}}}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:     ptr("mtlrun/triton_extensions.proto"),
		Package:  ptr("inference"),
		Syntax:   ptr("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{dt},
		MessageType: []*descriptorpb.DescriptorProto{
			message("ModelConfigRequest", nameVersion),
			message("ModelConfigResponse", []f{{"config", 1, msg, single, ".inference.ModelConfig"}}),
			message("ModelVersionPolicy", []f{{"all", 2, msg, single, ".inference.ModelVersionPolicy.All"}}, message("All", nil)),
			message("ModelInput", []f{{"name", 1, str, single, ""}, {"data_type", 2, enum, single, ".inference.DataType"}, {"dims", 4, i64, rep, ""}}),
			message("ModelOutput", []f{{"name", 1, str, single, ""}, {"data_type", 2, enum, single, ".inference.DataType"}, {"dims", 3, i64, rep, ""}}),
			instanceGroup,
			message("ModelDynamicBatching", []f{{"preferred_batch_size", 1, i32, rep, ""}, {"max_queue_delay_microseconds", 2, u64, single, ""}}),
			message("ModelConfig", []f{
				{"name", 1, str, single, ""}, {"platform", 2, str, single, ""},
				{"version_policy", 3, msg, single, ".inference.ModelVersionPolicy"},
				{"max_batch_size", 4, i32, single, ""},
				{"input", 5, msg, rep, ".inference.ModelInput"}, {"output", 6, msg, rep, ".inference.ModelOutput"},
				{"instance_group", 7, msg, rep, ".inference.ModelInstanceGroup"},
				{"dynamic_batching", 11, msg, single, ".inference.ModelDynamicBatching"},
				{"backend", 17, str, single, ""},
			}),
			message("ModelStatisticsRequest", nameVersion),
			message("StatisticDuration", duration),
			message("InferStatistics", []f{{"success", 1, msg, single, sd}, {"fail", 2, msg, single, sd}, {"queue", 3, msg, single, sd},
				{"compute_input", 4, msg, single, sd}, {"compute_infer", 5, msg, single, sd}, {"compute_output", 6, msg, single, sd}}),
			message("InferBatchStatistics", []f{{"batch_size", 1, u64, single, ""}, {"compute_input", 2, msg, single, sd},
				{"compute_infer", 3, msg, single, sd}, {"compute_output", 4, msg, single, sd}}),
			message("ModelStatistics", []f{{"name", 1, str, single, ""}, {"version", 2, str, single, ""},
				{"last_inference", 3, u64, single, ""}, {"inference_count", 4, u64, single, ""}, {"execution_count", 5, u64, single, ""},
				{"inference_stats", 6, msg, single, ".inference.InferStatistics"}, {"batch_stats", 7, msg, rep, ".inference.InferBatchStatistics"}}),
			message("ModelStatisticsResponse", []f{{"model_stats", 1, msg, rep, ".inference.ModelStatistics"}}),
			message("RepositoryIndexRequest", []f{{"repository_name", 1, str, single, ""}, {"ready", 2, boolT, single, ""}}),
			message("RepositoryIndexResponse", []f{{"models", 1, msg, rep, ".inference.RepositoryIndexResponse.ModelIndex"}},
				message("ModelIndex", []f{{"name", 1, str, single, ""}, {"version", 2, str, single, ""}, {"state", 3, str, single, ""}, {"reason", 4, str, single, ""}})),
			message("RepositoryModelLoadRequest", repoModel),
			message("RepositoryModelLoadResponse", nil),
			message("RepositoryModelUnloadRequest", repoModel),
			message("RepositoryModelUnloadResponse", nil),
		},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		panic(fmt.Sprintf("serve: Triton extension descriptors: %v", err)) // a programming error, caught by every test
	}
	return fd
}()

func ptr[T any](v T) *T { return &v }

// tritonMessage returns a new empty message of the extension file.
func tritonMessage(name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(tritonFile.Messages().ByName(protoreflect.Name(name)))
}

// fromJSON fills a message from a REST document.
func fromJSON(name string, doc any) (*dynamicpb.Message, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	m := tritonMessage(name)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m); err != nil {
		return nil, status.Errorf(codes.Internal, "encoding %s: %v", name, err)
	}
	return m, nil
}

func stringField(m *dynamicpb.Message, name string) string {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name))).String()
}

// tritonMethod adapts a handler of dynamic messages to a gRPC method.
func tritonMethod(method, request string, h func(s *Server, ctx context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error)) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: method, Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := tritonMessage(request)
		if err := dec(req); err != nil {
			return nil, err
		}
		s := srv.(*grpcService).s
		if interceptor == nil {
			return h(s, ctx, req)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + pb.GRPCInferenceService_ServiceDesc.ServiceName + "/" + method}
		return interceptor(ctx, req, info, func(ctx context.Context, r any) (any, error) { return h(s, ctx, r.(*dynamicpb.Message)) })
	}}
}

// inferenceServiceDesc is KServe's service with Triton's extra calls.
var inferenceServiceDesc = func() grpc.ServiceDesc {
	d := pb.GRPCInferenceService_ServiceDesc
	d.Methods = append(append([]grpc.MethodDesc{}, d.Methods...),
		tritonMethod("ModelConfig", "ModelConfigRequest", func(s *Server, _ context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
			m, err := s.modelVersion(stringField(req, "name"), stringField(req, "version"))
			if err != nil {
				return nil, grpcError(err)
			}
			return fromJSON("ModelConfigResponse", map[string]any{"config": s.modelConfig(m)})
		}),
		tritonMethod("ModelStatistics", "ModelStatisticsRequest", func(s *Server, _ context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
			stats, err := s.statistics(stringField(req, "name"), stringField(req, "version"))
			if err != nil {
				return nil, grpcError(err)
			}
			return fromJSON("ModelStatisticsResponse", map[string]any{"model_stats": stats})
		}),
		tritonMethod("RepositoryIndex", "RepositoryIndexRequest", func(s *Server, _ context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
			index := s.repositoryIndex()
			if req.Get(req.Descriptor().Fields().ByName("ready")).Bool() {
				ready := index[:0]
				for _, e := range index {
					if e.State == "READY" {
						ready = append(ready, e)
					}
				}
				index = ready
			}
			return fromJSON("RepositoryIndexResponse", map[string]any{"models": index})
		}),
		tritonMethod("RepositoryModelLoad", "RepositoryModelLoadRequest", func(s *Server, _ context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
			if err := s.LoadFromRepository(stringField(req, "model_name")); err != nil {
				return nil, repositoryGRPCError(err)
			}
			return tritonMessage("RepositoryModelLoadResponse"), nil
		}),
		tritonMethod("RepositoryModelUnload", "RepositoryModelUnloadRequest", func(s *Server, _ context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
			if err := s.Unload(stringField(req, "model_name")); err != nil {
				return nil, repositoryGRPCError(err)
			}
			return tritonMessage("RepositoryModelUnloadResponse"), nil
		}),
	)
	sort.Slice(d.Methods, func(i, j int) bool { return d.Methods[i].MethodName < d.Methods[j].MethodName })
	return d
}()

func repositoryGRPCError(err error) error {
	if err == ErrNoRepository {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return grpcError(err)
}
