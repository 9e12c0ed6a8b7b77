package serve

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

// rawCodec sends and receives message bytes as they are, so the test
// encodes requests and decodes answers by field number, from Triton's
// grpc_service.proto and model_config.proto, independently of the
// descriptors in triton.go.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte{}, data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// wireFields decodes one message level: field number → raw values (bytes
// for length-delimited fields, the varint for varints).
func wireFields(t *testing.T, b []byte) map[protowire.Number][]any {
	t.Helper()
	out := map[protowire.Number][]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag")
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			out[num] = append(out[num], v)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			out[num] = append(out[num], v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			b = b[n:]
		}
	}
	return out
}

func nameVersion(name, version string) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	if version != "" {
		b = protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), version)
	}
	return b
}

// Triton's gRPC calls: ModelConfig, ModelStatistics and the repository,
// checked at the wire level against Triton's field numbers.
func TestTritonGRPC(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, seedModel, filepath.Join(dir, "seed", "1", "model.onnx"))
	s := New(Options{Logger: quietLogger(), MaxBatch: 8})
	if err := s.LoadRepository(dir); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	defer s.Close()
	conn := grpcClient(t, s)
	ctx := context.Background()
	call := func(method string, req []byte) ([]byte, error) {
		var resp []byte
		err := conn.Invoke(ctx, "/inference.GRPCInferenceService/"+method, &req, &resp, grpc.ForceCodec(rawCodec{}))
		return resp, err
	}

	resp, err := call("ModelConfig", nameVersion("seed", ""))
	if err != nil {
		t.Fatal(err)
	}
	config := wireFields(t, wireFields(t, resp)[1][0].([]byte)) // ModelConfigResponse.config = 1
	if string(config[1][0].([]byte)) != "seed" || config[4][0].(uint64) != 8 {
		t.Errorf("ModelConfig name %q max_batch_size %v", config[1], config[4])
	}
	in := wireFields(t, config[5][0].([]byte)) // input = 5
	var dims []int64                           // packed repeated int64 dims = 4
	for b := in[4][0].([]byte); len(b) > 0; {
		v, n := protowire.ConsumeVarint(b)
		dims, b = append(dims, int64(v)), b[n:]
	}
	if string(in[1][0].([]byte)) != "input" || in[2][0].(uint64) != 11 || fmt.Sprint(dims) != "[-1 1]" {
		t.Errorf("ModelInput: name %q data_type %v (TYPE_FP32 = 11) dims %v", in[1], in[2], dims)
	}
	if len(config[6]) != 2 || len(config[7]) != 1 || len(config[11]) != 1 || string(config[17][0].([]byte)) != "mtlrun" {
		t.Errorf("ModelConfig outputs %d, instance groups %d, dynamic_batching %d, backend %q", len(config[6]), len(config[7]), len(config[11]), config[17])
	}
	if _, err := call("ModelConfig", nameVersion("nope", "")); status.Code(err) != codes.NotFound {
		t.Errorf("ModelConfig of an unknown model: %v", err)
	}

	// one inference, then its statistics
	x := randInput([]int{3, 4, 1}, 0)
	raw, _ := tensor.EncodeRaw(x)
	if _, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "seed",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{3, 4, 1}}},
		RawInputContents: [][]byte{raw}}); err != nil {
		t.Fatal(err)
	}
	resp, err = call("ModelStatistics", nameVersion("seed", "1"))
	if err != nil {
		t.Fatal(err)
	}
	stats := wireFields(t, resp)[1] // model_stats = 1
	if len(stats) != 1 {
		t.Fatalf("%d model_stats", len(stats))
	}
	st := wireFields(t, stats[0].([]byte))
	infer := wireFields(t, st[6][0].([]byte))           // inference_stats = 6
	success := wireFields(t, infer[1][0].([]byte))      // success = 1
	computeInfer := wireFields(t, infer[5][0].([]byte)) // compute_infer = 5
	if string(st[1][0].([]byte)) != "seed" || st[4][0].(uint64) != 3 || st[5][0].(uint64) != 1 || success[1][0].(uint64) != 1 || computeInfer[1][0].(uint64) != 1 {
		t.Errorf("ModelStatistics: name %q inference_count %v execution_count %v success %v compute_infer %v", st[1], st[4], st[5], success, computeInfer)
	}
	batch := wireFields(t, st[7][0].([]byte)) // batch_stats = 7
	if batch[1][0].(uint64) != 3 {
		t.Errorf("batch_stats batch_size %v", batch[1])
	}

	// repository: unload, index, load
	unload := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "seed") // model_name = 2
	if _, err := call("RepositoryModelUnload", unload); err != nil {
		t.Fatal(err)
	}
	resp, err = call("RepositoryIndex", nil)
	if err != nil {
		t.Fatal(err)
	}
	entry := wireFields(t, wireFields(t, resp)[1][0].([]byte))
	if got := fmt.Sprintf("%s %s", entry[1][0], entry[3][0]); got != "seed UNAVAILABLE" {
		t.Errorf("index after unload: %s", got)
	}
	if _, err := call("RepositoryModelLoad", unload); err != nil {
		t.Fatal(err)
	}
	resp, _ = call("RepositoryIndex", nil)
	entry = wireFields(t, wireFields(t, resp)[1][0].([]byte))
	if got := fmt.Sprintf("%s %s %s", entry[1][0], entry[2][0], entry[3][0]); got != "seed 1 READY" {
		t.Errorf("index after load: %s", got)
	}
}
