package serve

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A Triton-layout repository: versions, load, unload, and reloads under
// load that drop no request.
func TestModelRepository(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, seedModel, filepath.Join(dir, "a", "1", "model.onnx"))
	copyFile(t, threeTasks, filepath.Join(dir, "a", "3", "model.onnx"))
	copyFile(t, seedModel, filepath.Join(dir, "b", "1", "model.onnx"))
	os.MkdirAll(filepath.Join(dir, "a", "notaversion"), 0o755)
	s := New(Options{Logger: quietLogger(), MaxBatch: 4, BatchTimeout: 100e3})
	if err := s.LoadRepository(dir); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewServer(s.Handler())
	defer func() { ts.Close(); s.Close() }()

	_, md := get(t, ts.URL+"/v2/models/a")
	if fmt.Sprint(md["versions"]) != "[1 3]" {
		t.Errorf("versions %v", md["versions"])
	}
	if in := md["inputs"].([]any)[0].(map[string]any); fmt.Sprint(in["shape"]) != "[-1 -1 8]" {
		t.Errorf("unversioned metadata should be version 3 (gru3): %v", in)
	}
	x := randInput([]int{1, 5, 1}, 0)
	want := direct(t, s, "b", map[string]*tensor.Tensor{"input": x})
	req := map[string]any{"inputs": []any{inputDoc("input", x)}}
	code, body, _ := jsonInfer(t, ts.URL+"/v2/models/a/versions/1/infer", req, nil)
	var resp InferResponse
	json.Unmarshal(body, &resp)
	if code != 200 || resp.ModelVersion != "1" {
		t.Fatalf("version 1: %d %s", code, body)
	}
	var got []float32
	json.Unmarshal(resp.Outputs[0].Data, &got)
	closeTo(t, "a/1 "+resp.Outputs[0].Name, got, want[resp.Outputs[0].Name])
	if code, body, _ := jsonInfer(t, ts.URL+"/v2/models/a/versions/2/infer", req, nil); code != 404 {
		t.Errorf("missing version: %d %s", code, body)
	}

	// reload a/ and b/ repeatedly while clients run: no request fails
	var failed, ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, _ := jsonInfer(t, ts.URL+"/v2/models/b/infer", req, nil)
				if code != 200 {
					failed.Add(1)
					t.Errorf("during reload: %d %s", code, body)
					return
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 5; i++ {
		for _, name := range []string{"a", "b"} {
			if code, body, _ := jsonInfer(t, ts.URL+"/v2/repository/models/"+name+"/load", []byte{}, nil); code != 200 {
				t.Fatalf("load %s: %d %s", name, code, body)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests answered during 10 reloads, %d failed", ok.Load(), failed.Load())

	// unload: 404 and UNAVAILABLE in the index; load brings it back
	if code, body, _ := jsonInfer(t, ts.URL+"/v2/repository/models/a/unload", []byte{}, nil); code != 200 {
		t.Fatalf("unload: %d %s", code, body)
	}
	if code, _, _ := jsonInfer(t, ts.URL+"/v2/models/a/versions/1/infer", req, nil); code != 404 {
		t.Errorf("unloaded model answered %d", code)
	}
	_, body, _ = jsonInfer(t, ts.URL+"/v2/repository/index", []byte{}, nil)
	if !strings.Contains(string(body), `{"name":"a","state":"UNAVAILABLE","reason":"unloaded"}`) ||
		!strings.Contains(string(body), `{"name":"b","version":"1","state":"READY"}`) {
		t.Errorf("index: %s", body)
	}
	if code, body, _ := jsonInfer(t, ts.URL+"/v2/repository/models/a/load", []byte{}, nil); code != 200 {
		t.Fatalf("load after unload: %d %s", code, body)
	}
	if code, _, _ := jsonInfer(t, ts.URL+"/v2/models/a/versions/1/infer", req, nil); code != 200 {
		t.Errorf("reloaded model answered %d", code)
	}
	for _, c := range []struct {
		name string
		code int
	}{{"nope", 404}, {"..%2Fb", 400}} {
		if code, body, _ := jsonInfer(t, ts.URL+"/v2/repository/models/"+c.name+"/load", []byte{}, nil); code != c.code {
			t.Errorf("load %s: %d %s", c.name, code, body)
		}
	}
	// without a repository, load and unload are refused
	_, plain := newTestServer(t, Options{})
	if code, body, _ := jsonInfer(t, plain.URL+"/v2/repository/models/seed/unload", []byte{}, nil); code != 400 {
		t.Errorf("unload without a repository: %d %s", code, body)
	}
}

// ModelConfig and ModelStatistics in Triton's shapes.
func TestModelConfigAndStatistics(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxBatch: 8, BatchTimeout: 1e6})
	x := randInput([]int{3, 4, 1}, 0)
	for i := 0; i < 4; i++ {
		if code, body, _ := jsonInfer(t, ts.URL+"/v2/models/seed/infer", map[string]any{"inputs": []any{inputDoc("input", x)}}, nil); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	jsonInfer(t, ts.URL+"/v2/models/seed/infer", []byte(`{"inputs":[]}`), nil)
	_, cfg := get(t, ts.URL+"/v2/models/seed/config")
	if cfg["max_batch_size"] != 8.0 || cfg["name"] != "seed" {
		t.Errorf("config: %v", cfg)
	}
	in := cfg["input"].([]any)[0].(map[string]any)
	if in["data_type"] != "TYPE_FP32" || fmt.Sprint(in["dims"]) != "[-1 1]" {
		t.Errorf("config input (batch dim left out): %v", in)
	}
	_, cfg = get(t, ts.URL+"/v2/models/gru3/versions/1/config")
	if out := cfg["output"].([]any); len(out) != 3 {
		t.Errorf("gru3 outputs: %v", out)
	}
	var stats struct {
		ModelStats []ModelStatistics `json:"model_stats"`
	}
	r, err := ts.Client().Get(ts.URL + "/v2/models/seed/stats")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&stats)
	r.Body.Close()
	if len(stats.ModelStats) != 1 {
		t.Fatalf("stats: %+v", stats)
	}
	st := stats.ModelStats[0]
	if st.Name != "seed" || st.Version != "1" || st.InferenceCount != 12 || st.InferenceStats.Success.Count != 4 ||
		st.InferenceStats.Fail.Count != 1 || st.ExecutionCount != 4 || st.InferenceStats.ComputeInfer.Count != 4 ||
		len(st.BatchStats) != 1 || st.BatchStats[0].BatchSize != 3 || st.LastInference == 0 {
		t.Errorf("statistics: %+v", st)
	}
	_, all := get(t, ts.URL+"/v2/models/stats")
	if n := len(all["model_stats"].([]any)); n != 2 {
		t.Errorf("all-model statistics list %d models", n)
	}
}
