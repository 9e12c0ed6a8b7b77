package serve

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

func grpcClient(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := s.ServeGRPC(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); stop() })
	return conn
}

// grpc.health.v1 follows readiness (what Kubernetes gRPC probes ask), and
// reflection lists the services (what grpcurl asks).
func TestGRPCHealthAndReflection(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	conn := grpcClient(t, s)
	ctx := context.Background()
	h := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "inference.GRPCInferenceService"} {
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, r, err)
		}
	}
	s.SetReady(false)
	if r, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after readiness false: %v %v", r, err)
	}
	s.SetReady(true)

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.Name)
	}
	sort.Strings(names)
	got := strings.Join(names, " ")
	for _, want := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "inference.GRPCInferenceService"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %s, missing %s", got, want)
		}
	}
	// the inference service's descriptors resolve (grpcurl describe)
	stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "inference.GRPCInferenceService"}})
	if resp, err := stream.Recv(); err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("file containing inference.GRPCInferenceService: %v %v", resp, err)
	}
	stream.CloseSend()
}

// gRPC gets the same admission, timeouts and error mapping as REST.
func TestGRPCLimits(t *testing.T) {
	s, ts := newTestServer(t, Options{MaxRequestMemory: 1 << 30})
	c := pb.NewGRPCInferenceServiceClient(grpcClient(t, s))
	ctx := context.Background()
	infer := func(shape []int64, raw []byte, params map[string]*pb.InferParameter) error {
		_, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "seed", Parameters: params,
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: shape}},
			RawInputContents: [][]byte{raw}})
		return err
	}
	if err := infer([]int64{16777216, 0, 1}, nil, nil); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "estimated") {
		t.Errorf("huge zero-element request: %v", err)
	}
	x := randInput([]int{1, 400000, 1}, 0)
	raw, _ := tensor.EncodeRaw(x)
	start := time.Now()
	err := infer([]int64{1, 400000, 1}, raw, map[string]*pb.InferParameter{"timeout": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 50000}}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("timeout parameter 50 ms: %v", err)
	}
	t.Logf("a 400000-step request with a 50 ms timeout parameter answered after %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the queue to empty", func() bool { return len(mustModel(t, s, "seed").queue) == 0 })
	if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"protocol": "grpc", "outcome": "timeout"}); n != 1 {
		t.Errorf("grpc timeout count %v", n)
	}
	// gzip-compressed messages both ways
	small := randInput([]int{2, 3, 1}, 1)
	rawSmall, _ := tensor.EncodeRaw(small)
	if _, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "seed",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{2, 3, 1}}},
		RawInputContents: [][]byte{rawSmall}}, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Errorf("gzip-compressed request: %v", err)
	}
	if _, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "zzz"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown model: %v", err)
	}
	if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"model": "unknown", "protocol": "grpc"}); n != 1 {
		t.Errorf("grpc unknown-model bucket %v", n)
	}
}
