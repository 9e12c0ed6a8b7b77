package serve

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // gzip-compressed messages, as tritonclient may send; bounded by the max message size
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/version"
	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

// grpcService implements GRPCInferenceService over the same models.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// grpcServer builds the gRPC server: the inference service, the standard
// health service (grpc.health.v1.Health, for Kubernetes gRPC probes: the
// overall status "" and "inference.GRPCInferenceService" follow readiness)
// and server reflection (grpcurl works without the proto files).
func (s *Server) grpcServer() (*grpc.Server, *health.Server) {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(int(min(s.opts.MaxBody, 1<<31-1))),
		// idle connections close like REST's keep-alive ones
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.opts.IdleTimeout}))
	// KServe's service, with Triton's ModelConfig, ModelStatistics and
	// repository calls (triton.go)
	g.RegisterService(&inferenceServiceDesc, &grpcService{s: s})
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	s.healthMu.Lock()
	s.health = append(s.health, h)
	s.healthMu.Unlock()
	s.setHealth(h, s.Ready())
	return g, h
}

// setHealth reports readiness through a health service.
func (s *Server) setHealth(h *health.Server, ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(pb.GRPCInferenceService_ServiceDesc.ServiceName, st)
}

// ServeGRPC serves the gRPC API on lis until the returned stop function is
// called (which lets in-flight calls finish).
func (s *Server) ServeGRPC(lis net.Listener) (stop func()) {
	g, _ := s.grpcServer()
	go g.Serve(lis)
	return g.GracefulStop
}

func grpcError(err error) error {
	code, _ := httpStatus(err)
	switch code {
	case 400:
		return status.Error(codes.InvalidArgument, err.Error())
	case 413:
		return status.Error(codes.ResourceExhausted, err.Error())
	case 404:
		return status.Error(codes.NotFound, err.Error())
	case 503:
		return status.Error(codes.Unavailable, err.Error())
	case 504:
		return status.Error(codes.DeadlineExceeded, err.Error())
	case 499:
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) model(name, ver string) (*Model, error) {
	m, err := g.s.modelVersion(name, ver)
	if err != nil {
		return nil, grpcError(err)
	}
	return m, nil
}

func (g *grpcService) ModelReady(_ context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if _, err := g.model(r.Name, r.Version); err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: g.s.Ready()}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	md := g.s.serverMetadata()
	return &pb.ServerMetadataResponse{Name: md.Name, Version: version.Version, Extensions: md.Extensions}, nil
}

func (g *grpcService) ModelMetadata(_ context.Context, r *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	m, err := g.model(r.Name, r.Version)
	if err != nil {
		return nil, err
	}
	conv := func(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &pb.ModelMetadataResponse{Name: m.Name, Versions: m.meta.Versions, Platform: m.meta.Platform,
		Inputs: conv(m.meta.Inputs), Outputs: conv(m.meta.Outputs)}, nil
}

func (g *grpcService) ModelInfer(ctx context.Context, r *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	start := time.Now()
	s := g.s
	s.inflight.Add(1)
	defer s.inflight.Done()
	label := s.label(r.ModelName)
	outcome, rows := "success", 0
	defer func() { s.metrics.result(label, "grpc", outcome, rows, time.Since(start)) }()
	fail := func(err error) (*pb.ModelInferResponse, error) {
		_, outcome = httpStatus(err)
		return nil, grpcError(err)
	}
	m, done, err := s.use(r.ModelName, r.ModelVersion)
	if err != nil {
		outcome = "unknown_model"
		return nil, grpcError(err)
	}
	defer done()
	defer func() { m.stats.request(outcome == "success", rows, time.Since(start)) }()
	// the decoded message is already in memory (bounded by the maximum
	// message size); it still counts against the budget while it lives
	bodyRes := &reservation{b: &s.mem}
	defer bodyRes.release()
	if !bodyRes.grow(sat(proto.Size(r))) {
		return fail(ErrMemoryBusy)
	}
	inputs, err := grpcInputs(r)
	if err != nil {
		return fail(err)
	}
	var outputs []string
	for _, o := range r.Outputs {
		outputs = append(outputs, o.Name)
	}
	timeout := s.opts.Timeout
	if p, ok := r.Parameters["timeout"]; ok {
		// microseconds, as Triton's clients send it (int64 or uint64)
		us := p.GetInt64Param()
		if u := p.GetUint64Param(); u > 0 {
			us = int64(min(u, 1<<62))
		}
		if us > 0 {
			timeout = min(timeout, time.Duration(min(us, int64(time.Duration(1<<62)/time.Microsecond)))*time.Microsecond)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// a shutdown whose drain time is over cancels gRPC calls too
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	out, err := s.InferParams(ctx, m, grpcParams(r.Parameters), inputs, outputs)
	if err != nil {
		return fail(err)
	}
	if len(outputs) == 0 {
		outputs = m.meta.outputNames()
	}
	resp := &pb.ModelInferResponse{ModelName: m.Name, ModelVersion: m.Version, Id: r.Id}
	for _, name := range outputs {
		t := out[name]
		raw, err := tensor.EncodeRaw(t)
		if err != nil {
			return fail(err)
		}
		resp.Outputs = append(resp.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: Datatype(t.DType), Shape: int64Shape(t.Shape)})
		resp.RawOutputContents = append(resp.RawOutputContents, raw)
	}
	rows = batchRows(inputs)
	return resp, nil
}

// grpcInputs decodes inputs from raw_input_contents (one per input, in
// order) or from the typed contents fields.
func grpcInputs(r *pb.ModelInferRequest) (map[string]*tensor.Tensor, error) {
	if len(r.Inputs) == 0 {
		return nil, badf("request has no inputs")
	}
	if len(r.RawInputContents) > 0 && len(r.RawInputContents) != len(r.Inputs) {
		return nil, badf("%d raw_input_contents for %d inputs", len(r.RawInputContents), len(r.Inputs))
	}
	inputs := map[string]*tensor.Tensor{}
	for i, in := range r.Inputs {
		if _, dup := inputs[in.Name]; dup {
			return nil, badf("input %q appears twice", in.Name)
		}
		dt, err := ParseDatatype(in.Datatype)
		if err != nil {
			return nil, badf("input %q: %v", in.Name, err)
		}
		shape, err := shapeOf(in.Shape)
		if err != nil {
			return nil, badf("input %q: %v", in.Name, err)
		}
		if len(r.RawInputContents) > 0 {
			t, err := decodeRaw(in.Name, r.RawInputContents[i], dt, shape)
			if err != nil {
				return nil, err
			}
			inputs[in.Name] = t
			continue
		}
		t, err := typedContents(in.Name, in.Contents, dt, shape)
		if err != nil {
			return nil, err
		}
		inputs[in.Name] = t
	}
	return inputs, nil
}

func typedContents(name string, c *pb.InferTensorContents, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	if c == nil {
		return nil, badf("input %q has neither contents nor raw_input_contents", name)
	}
	var t *tensor.Tensor
	var err error
	switch dt {
	case tensor.Float32:
		t, err = tensor.FromChecked(shape, append([]float32(nil), c.Fp32Contents...))
	case tensor.Float64:
		t, err = tensor.FromChecked(shape, append([]float64(nil), c.Fp64Contents...))
	case tensor.Int64:
		t, err = tensor.FromChecked(shape, append([]int64(nil), c.Int64Contents...))
	case tensor.Int32:
		t, err = tensor.FromChecked(shape, append([]int32(nil), c.IntContents...))
	case tensor.Bool:
		t, err = tensor.FromChecked(shape, append([]bool(nil), c.BoolContents...))
	default:
		return nil, badf("input %q: send %s data as raw_input_contents", name, Datatype(dt))
	}
	if err != nil {
		return nil, badf("input %q: %v", name, err)
	}
	return t, nil
}
