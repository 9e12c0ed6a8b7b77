package tritonpb_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mtlrun/mtlrun/serve/internal/interop"
	pb "github.com/mtlrun/mtlrun/serve/internal/interop/tritonpb"
)

func TestMain(m *testing.M) { interop.Main(m) }

// TestTritonClient talks to a real `mtlrun serve` with a client generated
// from Triton's official grpc_service.proto, model_config.proto and
// health.proto: health, metadata, inference (outputs equal a direct
// runtime.Session run), model config, statistics whose counts match the
// requests sent, and the repository index.
func TestTritonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode (builds and runs mtlrun serve)")
	}
	srv := interop.Start(t)
	conn, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, svc := range []string{"", "inference.GRPCInferenceService"} {
		h, err := pb.NewHealthClient(conn).Check(ctx, &pb.HealthCheckRequest{Service: svc})
		if err != nil || h.Status != pb.HealthCheckResponse_SERVING {
			t.Errorf("Health/Check(%q): %v, %v", svc, h, err)
		}
	}
	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive: %v, %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady: %v, %v", r, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "seed"})
	if err != nil {
		t.Fatalf("ModelMetadata: %v", err)
	}
	if md.Name != "seed" || len(md.Inputs) != 1 || md.Inputs[0].Name != "input" || md.Inputs[0].Datatype != "FP32" || len(md.Outputs) != 2 {
		t.Errorf("ModelMetadata: %v", md)
	}

	cfg, err := c.ModelConfig(ctx, &pb.ModelConfigRequest{Name: "seed"})
	if err != nil {
		t.Fatalf("ModelConfig: %v", err)
	}
	mc := cfg.GetConfig()
	if mc.GetName() != "seed" || len(mc.Input) != 1 || mc.Input[0].Name != "input" || mc.Input[0].DataType != pb.DataType_TYPE_FP32 || len(mc.Output) != 2 {
		t.Errorf("ModelConfig: %v", mc)
	}
	for _, o := range mc.Output {
		if o.DataType != pb.DataType_TYPE_FP32 {
			t.Errorf("ModelConfig output %q: %v", o.Name, o.DataType)
		}
	}
	t.Logf("ModelConfig: platform %q backend %q max_batch_size %d input dims %v", mc.Platform, mc.Backend, mc.MaxBatchSize, mc.Input[0].Dims)

	// three successful requests of batch 2, then one the model refuses
	const requests, batch = 3, 2
	for i := 0; i < requests; i++ {
		shape := []int{batch, 4 + i, 1}
		x, dims := interop.Input(shape, i)
		ref := interop.Reference(t, x, shape)
		r, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "seed", Id: "triton",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: dims}},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "output1"}, {Name: "output2"}},
			RawInputContents: [][]byte{interop.Raw(x)}})
		if err != nil {
			t.Fatalf("ModelInfer %d: %v", i, err)
		}
		if len(r.Outputs) != 2 || len(r.RawOutputContents) != 2 {
			t.Fatalf("ModelInfer %d: %d outputs, %d raw contents", i, len(r.Outputs), len(r.RawOutputContents))
		}
		for j, o := range r.Outputs {
			interop.CheckOutput(t, ref, o.Name, o.Shape, interop.Float32s(r.RawOutputContents[j]))
		}
	}
	_, err = c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "seed",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 2, 3}}},
		RawInputContents: [][]byte{interop.Raw(make([]float32, 6))}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ModelInfer with input [1,2,3]: %v, want InvalidArgument", err)
	}

	st, err := c.ModelStatistics(ctx, &pb.ModelStatisticsRequest{Name: "seed"})
	if err != nil {
		t.Fatalf("ModelStatistics: %v", err)
	}
	if len(st.ModelStats) != 1 {
		t.Fatalf("ModelStatistics: %v", st)
	}
	ms := st.ModelStats[0]
	is := ms.GetInferenceStats()
	t.Logf("ModelStatistics: inference_count %d execution_count %d success %d fail %d", ms.InferenceCount, ms.ExecutionCount, is.GetSuccess().GetCount(), is.GetFail().GetCount())
	if ms.Name != "seed" || ms.InferenceCount != requests*batch || ms.ExecutionCount != requests ||
		is.GetSuccess().GetCount() != requests || is.GetFail().GetCount() != 1 || ms.LastInference == 0 {
		t.Errorf("ModelStatistics: %v, want inference_count %d, execution_count %d, success %d, fail 1", ms, requests*batch, requests, requests)
	}

	idx, err := c.RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
	if err != nil {
		t.Fatalf("RepositoryIndex: %v", err)
	}
	if len(idx.Models) != 1 || idx.Models[0].Name != "seed" || idx.Models[0].State != "READY" {
		t.Errorf("RepositoryIndex: %v", idx)
	}
}
