package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

var (
	seedModel  = filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx")
	threeTasks = filepath.Join(fixtures.RepoRoot(), "testdata", "pytorch", "gru3", "model.onnx")
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestServer(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	opts.Logger = quietLogger()
	s := New(opts)
	if err := s.AddModel("seed", seedModel); err != nil {
		t.Fatal(err)
	}
	if err := s.AddModel("gru3", threeTasks); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts
}

func randInput(shape []int, seed int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i*7+seed))) * 0.8
	}
	return tensor.From(shape, v)
}

// direct runs the model through a plain session, the reference.
func direct(t testing.TB, s *Server, model string, in map[string]*tensor.Tensor, outs ...string) map[string]*tensor.Tensor {
	t.Helper()
	m, err := s.Model(model)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m.model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sess.Run(in, outs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

func TestEndpoints(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/seed", "/v2/models/seed/ready",
		"/v2/models/seed/versions/1", "/v2/models/seed/versions/1/ready", "/v2/models/gru3"} {
		code, _ := get(t, ts.URL+path)
		if code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	_, md := get(t, ts.URL+"/v2")
	if fmt.Sprint(md["extensions"]) != "[binary_tensor_data sequence sequence(string_id)]" {
		t.Errorf("server metadata extensions: %v", md["extensions"])
	}
	_, mm := get(t, ts.URL+"/v2/models/gru3")
	if mm["platform"] != "onnx_onnxv1" || len(mm["tasks"].([]any)) != 3 {
		t.Errorf("model metadata: %v", mm)
	}
	in := mm["inputs"].([]any)[0].(map[string]any)
	if fmt.Sprint(in["shape"]) != "[-1 -1 8]" {
		t.Errorf("dynamic dims should be -1: %v", in["shape"])
	}
	if code, doc := get(t, ts.URL+"/v2/models/nope"); code != 404 || doc["error"] == nil {
		t.Errorf("unknown model: %d %v", code, doc)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "mtlrun_queue_depth") {
		t.Errorf("/metrics lacks mtlrun metrics:\n%s", body)
	}
}

func jsonInfer(t *testing.T, url string, body any, headers map[string]string) (int, []byte, http.Header) {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	default:
		data, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func inputDoc(name string, x *tensor.Tensor) map[string]any {
	return map[string]any{"name": name, "shape": int64Shape(x.Shape), "datatype": "FP32", "data": x.Float32s()}
}

func closeTo(t *testing.T, what string, got []float32, want *tensor.Tensor) {
	t.Helper()
	w := want.Float32s()
	if len(got) != len(w) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(w))
	}
	for i := range w {
		if got[i] != w[i] {
			t.Fatalf("%s[%d] = %g, direct Session.Run gives %g", what, i, got[i], w[i])
		}
	}
}

func TestInferJSONAndBinary(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	cases := []struct {
		model   string
		input   string
		shape   []int
		outputs []string
	}{
		{"seed", "input", []int{3, 7, 1}, nil},
		{"seed", "input", []int{2, 5, 1}, []string{"output2"}},
		{"gru3", mustModel(t, s, "gru3").meta.Inputs[0].Name, []int{2, 6, 8}, nil},
		{"gru3", mustModel(t, s, "gru3").meta.Inputs[0].Name, []int{1, 4, 8}, []string{"class_probs", "is_positive"}},
	}
	for _, c := range cases {
		x := randInput(c.shape, len(c.outputs))
		want := direct(t, s, c.model, map[string]*tensor.Tensor{c.input: x}, c.outputs...)
		req := map[string]any{"id": "req-7", "inputs": []any{inputDoc(c.input, x)}}
		if c.outputs != nil {
			var outs []any
			for _, o := range c.outputs {
				outs = append(outs, map[string]any{"name": o})
			}
			req["outputs"] = outs
		}
		// JSON in, JSON out
		code, body, _ := jsonInfer(t, ts.URL+"/v2/models/"+c.model+"/infer", req, nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", c.model, code, body)
		}
		var resp struct {
			ID      string `json:"id"`
			Outputs []struct {
				Name  string    `json:"name"`
				Shape []int     `json:"shape"`
				Data  []float32 `json:"data"`
			} `json:"outputs"`
		}
		json.Unmarshal(body, &resp)
		if resp.ID != "req-7" || len(resp.Outputs) != len(want) {
			t.Fatalf("%s: id %q, %d outputs, want %d", c.model, resp.ID, len(resp.Outputs), len(want))
		}
		for _, o := range resp.Outputs {
			closeTo(t, c.model+"/"+o.Name+" (json)", o.Data, want[o.Name])
		}
		// binary in (gzip), binary out
		header, _ := json.Marshal(map[string]any{
			"inputs":     []any{map[string]any{"name": c.input, "shape": int64Shape(x.Shape), "datatype": "FP32", "parameters": map[string]any{"binary_data_size": 4 * x.Len()}}},
			"parameters": map[string]any{"binary_data_output": true},
			"outputs":    req["outputs"],
		})
		raw, _ := tensor.EncodeRaw(x)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(append(header, raw...))
		zw.Close()
		code, body, h := jsonInfer(t, ts.URL+"/v2/models/"+c.model+"/versions/1/infer", gz.Bytes(),
			map[string]string{headerLength: strconv.Itoa(len(header)), "Content-Encoding": "gzip"})
		if code != 200 {
			t.Fatalf("%s binary: %d %s", c.model, code, body)
		}
		n, _ := strconv.Atoi(h.Get(headerLength))
		var bresp InferResponse
		if err := json.Unmarshal(body[:n], &bresp); err != nil {
			t.Fatal(err)
		}
		off := n
		for _, o := range bresp.Outputs {
			size := int(o.Parameters["binary_data_size"].(float64))
			data, _ := tensor.DecodeRaw(tensor.Float32, body[off:off+size], size/4)
			closeTo(t, c.model+"/"+o.Name+" (binary)", data.([]float32), want[o.Name])
			off += size
		}
	}
}

func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxBody: 4096})
	url := ts.URL + "/v2/models/seed/infer"
	x := randInput([]int{1, 3, 1}, 0)
	cases := []struct {
		name string
		body any
		code int
		want string
	}{
		{"bad json", []byte("{"), 400, "not valid JSON"},
		{"no inputs", map[string]any{"inputs": []any{}}, 400, "no inputs"},
		{"unknown input", map[string]any{"inputs": []any{inputDoc("nope", x)}}, 400, `no input "nope"`},
		{"length mismatch", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1, 3, 1}, "datatype": "FP32", "data": []float32{1, 2}}}}, 400, "needs 3 values"},
		{"wrong dtype", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1, 3, 1}, "datatype": "INT64", "data": []int{1, 2, 3}}}}, 400, "dtype"},
		{"wrong rank", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{3, 1}, "datatype": "FP32", "data": []float32{1, 2, 3}}}}, 400, "rank"},
		{"bad datatype", map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1}, "datatype": "COMPLEX", "data": []int{1}}}}, 400, "unsupported datatype"},
		{"unknown output", map[string]any{"inputs": []any{inputDoc("input", x)}, "outputs": []any{map[string]any{"name": "zzz"}}}, 400, `no output "zzz"`},
		{"too large", map[string]any{"inputs": []any{inputDoc("input", randInput([]int{1, 2000, 1}, 0))}}, 413, "exceeds"},
	}
	for _, c := range cases {
		code, body, _ := jsonInfer(t, url, c.body, nil)
		var doc map[string]string
		if json.Unmarshal(body, &doc) != nil || doc["error"] == "" {
			t.Errorf("%s: error body is not {\"error\": ...}: %s", c.name, body)
		}
		if code != c.code || !strings.Contains(doc["error"], c.want) {
			t.Errorf("%s: %d %s (want %d containing %q)", c.name, code, body, c.code, c.want)
		}
	}
	// unknown request parameters are ignored
	code, body, _ := jsonInfer(t, url, map[string]any{"inputs": []any{inputDoc("input", x)}, "parameters": map[string]any{"frobnicate": 3}}, nil)
	if code != 200 {
		t.Errorf("unknown parameter: %d %s", code, body)
	}
}

// TestDynamicBatching: concurrent requests coalesce and still get exactly
// the unbatched answers.
func TestDynamicBatching(t *testing.T) {
	s, ts := newTestServer(t, Options{MaxBatch: 16, BatchTimeout: 20 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := randInput([]int{1, 6, 1}, i)
			want := direct(t, s, "seed", map[string]*tensor.Tensor{"input": x})
			data, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
			resp, err := http.Post(ts.URL+"/v2/models/seed/infer", "application/json", bytes.NewReader(data))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var r struct {
				Outputs []struct {
					Name string    `json:"name"`
					Data []float32 `json:"data"`
				} `json:"outputs"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			for _, o := range r.Outputs {
				w := want[o.Name].Float32s()
				for k := range w {
					if math.Abs(float64(o.Data[k]-w[k])) > 1e-6 {
						errs <- fmt.Errorf("request %d output %s: %v vs %v", i, o.Name, o.Data, w)
						return
					}
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGRPC(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := s.ServeGRPC(lis)
	defer stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	ctx := context.Background()
	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Fatalf("ServerLive: %v %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("ServerReady: %v %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "gru3"}); err != nil || !r.Ready {
		t.Fatalf("ModelReady: %v %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || r.Name != "mtlrun" {
		t.Fatalf("ServerMetadata: %v %v", r, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "gru3"})
	if err != nil || len(md.Outputs) != 3 {
		t.Fatalf("ModelMetadata: %v %v", md, err)
	}
	x := randInput([]int{2, 5, 8}, 3)
	want := direct(t, s, "gru3", map[string]*tensor.Tensor{md.Inputs[0].Name: x}, "regression")
	raw, _ := tensor.EncodeRaw(x)
	resp, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "gru3", Id: "g1",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: md.Inputs[0].Name, Datatype: "FP32", Shape: []int64{2, 5, 8}}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "regression"}},
		RawInputContents: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Id != "g1" || len(resp.Outputs) != 1 || resp.Outputs[0].Name != "regression" {
		t.Fatalf("ModelInfer response %v", resp)
	}
	got, _ := tensor.DecodeRaw(tensor.Float32, resp.RawOutputContents[0], want["regression"].Len())
	closeTo(t, "grpc regression", got.([]float32), want["regression"])
	// typed contents work too
	resp, err = c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "gru3",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: md.Inputs[0].Name, Datatype: "FP32", Shape: []int64{2, 5, 8},
			Contents: &pb.InferTensorContents{Fp32Contents: x.Float32s()}}}})
	if err != nil || len(resp.Outputs) != 3 {
		t.Fatalf("typed contents: %v %v", resp, err)
	}
	if _, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "nope"}); err == nil {
		t.Error("unknown model accepted")
	}
}

// mustModel returns the latest version of a served model.
func mustModel(t testing.TB, s *Server, name string) *Model {
	t.Helper()
	m, err := s.Model(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
