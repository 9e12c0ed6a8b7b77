package interop_test

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/serve/internal/interop"
)

func TestMain(m *testing.M) { interop.Main(m) }

// TestGRPCurl checks issue 17's "grpcurl health and reflection work" with
// the real grpcurl against `mtlrun serve`: list and describe through server
// reflection, grpc.health.v1.Health/Check, a ModelInfer built from the
// reflected descriptors (outputs equal a runtime.Session run), and Triton's
// ModelStatistics through the vendored Triton proto (reflection describes
// the KServe service only). scripts/test.sh installs grpcurl.
func TestGRPCurl(t *testing.T) {
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Skip("grpcurl not on PATH (scripts/test.sh installs it into .cache/tools)")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode (builds and runs mtlrun serve)")
	}
	srv := interop.Start(t)
	// run calls grpcurl -plaintext FLAGS ADDRESS ARGS
	run := func(flags []string, rest ...string) string {
		t.Helper()
		args := append(append(append([]string{"-plaintext"}, flags...), srv.GRPCAddr), rest...)
		out, err := exec.Command(grpcurl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	list := run(nil, "list")
	for _, svc := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "inference.GRPCInferenceService"} {
		if !strings.Contains(list, svc+"\n") {
			t.Errorf("grpcurl list: no %s in\n%s", svc, list)
		}
	}
	desc := run(nil, "describe", "inference.GRPCInferenceService")
	for _, rpc := range []string{"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"} {
		if !strings.Contains(desc, "rpc "+rpc+" ") {
			t.Errorf("grpcurl describe inference.GRPCInferenceService: no rpc %s in\n%s", rpc, desc)
		}
	}
	if d := run(nil, "describe", "inference.ModelInferRequest"); !strings.Contains(d, "repeated bytes raw_input_contents = 7;") {
		t.Errorf("grpcurl describe inference.ModelInferRequest:\n%s", d)
	}
	for _, svc := range []string{"", "inference.GRPCInferenceService"} {
		var h struct{ Status string }
		out := run([]string{"-d", `{"service":"` + svc + `"}`}, "grpc.health.v1.Health/Check")
		if json.Unmarshal([]byte(out), &h) != nil || h.Status != "SERVING" {
			t.Errorf("grpcurl grpc.health.v1.Health/Check %q: %s", svc, out)
		}
	}

	shape := []int{1, 3, 1}
	x, dims := interop.Input(shape, 5)
	ref := interop.Reference(t, x, shape)
	req, _ := json.Marshal(map[string]any{"model_name": "seed", "inputs": []any{map[string]any{
		"name": "input", "datatype": "FP32", "shape": dims, "contents": map[string]any{"fp32_contents": x}}}})
	out := run([]string{"-d", string(req)}, "inference.GRPCInferenceService/ModelInfer")
	var resp struct {
		Outputs []struct {
			Name  string
			Shape []string // int64s are JSON strings in protojson
		}
		RawOutputContents [][]byte
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Outputs) != 2 || len(resp.RawOutputContents) != 2 {
		t.Fatalf("grpcurl ModelInfer: %v\n%s", err, out)
	}
	for i, o := range resp.Outputs {
		shape := make([]int64, len(o.Shape))
		for k, d := range o.Shape {
			shape[k], _ = strconv.ParseInt(d, 10, 64)
		}
		interop.CheckOutput(t, ref, o.Name, shape, interop.Float32s(resp.RawOutputContents[i]))
	}

	st := run([]string{"-import-path", "tritonpb", "-proto", "grpc_service.proto", "-d", `{"name":"seed"}`}, "inference.GRPCInferenceService/ModelStatistics")
	var stats struct {
		ModelStats []struct {
			InferenceCount string
			InferenceStats struct{ Success struct{ Count string } }
		}
	}
	if json.Unmarshal([]byte(st), &stats) != nil || len(stats.ModelStats) != 1 ||
		stats.ModelStats[0].InferenceCount != "1" || stats.ModelStats[0].InferenceStats.Success.Count != "1" {
		t.Errorf("grpcurl ModelStatistics after one request:\n%s", st)
	}
}
