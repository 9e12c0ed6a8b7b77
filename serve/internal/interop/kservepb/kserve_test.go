package kservepb_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mtlrun/mtlrun/serve/internal/interop"
	pb "github.com/mtlrun/mtlrun/serve/internal/interop/kservepb"
)

func TestMain(m *testing.M) { interop.Main(m) }

// TestKServeClient talks to a real `mtlrun serve` with a client generated
// from KServe's official grpc_predict_v2.proto: health, metadata, and
// inference with typed FP32 contents and with raw_input_contents, whose
// outputs must equal a direct runtime.Session run.
func TestKServeClient(t *testing.T) {
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

	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive: %v, %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady: %v, %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "seed"}); err != nil || !r.Ready {
		t.Fatalf("ModelReady: %v, %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || r.Name == "" {
		t.Fatalf("ServerMetadata: %v, %v", r, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "seed"})
	if err != nil {
		t.Fatalf("ModelMetadata: %v", err)
	}
	if md.Name != "seed" || len(md.Inputs) != 1 || md.Inputs[0].Name != "input" || md.Inputs[0].Datatype != "FP32" ||
		len(md.Inputs[0].Shape) != 3 || md.Inputs[0].Shape[0] != -1 || md.Inputs[0].Shape[2] != 1 || len(md.Outputs) != 2 {
		t.Errorf("ModelMetadata: %v", md)
	}

	shape := []int{2, 7, 1}
	x, dims := interop.Input(shape, 3)
	ref := interop.Reference(t, x, shape)
	for _, raw := range []bool{false, true} {
		in := &pb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP32", Shape: dims}
		req := &pb.ModelInferRequest{ModelName: "seed", Id: "kserve-1", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}}
		if raw {
			req.RawInputContents = [][]byte{interop.Raw(x)}
		} else {
			in.Contents = &pb.InferTensorContents{Fp32Contents: x}
		}
		r, err := c.ModelInfer(ctx, req)
		if err != nil {
			t.Fatalf("ModelInfer (raw %v): %v", raw, err)
		}
		if r.ModelName != "seed" || r.Id != "kserve-1" || len(r.Outputs) != 2 {
			t.Fatalf("ModelInfer (raw %v): %v", raw, r)
		}
		for i, o := range r.Outputs {
			if o.Datatype != "FP32" {
				t.Errorf("output %q: datatype %s", o.Name, o.Datatype)
			}
			var got []float32
			if len(r.RawOutputContents) > 0 {
				got = interop.Float32s(r.RawOutputContents[i])
			} else if o.Contents != nil {
				got = o.Contents.Fp32Contents
			}
			interop.CheckOutput(t, ref, o.Name, o.Shape, got)
		}
		t.Logf("ModelInfer (raw input %v): outputs %d, raw output %v", raw, len(r.Outputs), len(r.RawOutputContents) > 0)
	}
}
