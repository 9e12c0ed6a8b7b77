package serve

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// The tests in this file replay the defects of issue 17, one by one.

// intsModel: i64 (INT64[n]) → Identity → out_i64; f (FP32[n]) → Cast to
// UINT8, INT32 and BOOL.
func intsModel() *graph.Model {
	v := func(name string, dt tensor.DType) graph.ValueInfo {
		return graph.ValueInfo{Name: name, DType: dt, HasShape: true, Kind: "tensor", Shape: []graph.Dim{{Param: "n"}}}
	}
	cast := func(out string, to int64) *graph.Node {
		return &graph.Node{Name: out, OpType: "Cast", Inputs: []string{"f"}, Outputs: []string{out}, Attrs: graph.Attrs{"to": {Type: graph.AttrInt, Int: to}}}
	}
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{v("i64", tensor.Int64), v("f", tensor.Float32)},
		Nodes: []*graph.Node{
			{Name: "id", OpType: "Identity", Inputs: []string{"i64"}, Outputs: []string{"out_i64"}, Attrs: graph.Attrs{}},
			cast("out_u8", 2), cast("out_i32", 6), cast("out_bool", 9),
		},
		Outputs:      []graph.ValueInfo{v("out_i64", tensor.Int64), v("out_u8", tensor.Uint8), v("out_i32", tensor.Int32), v("out_bool", tensor.Bool)},
		Initializers: map[string]*tensor.Tensor{},
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 13}}
}

// scrape returns the value of one series of /metrics (0 when absent).
func scrape(t *testing.T, base, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	total := 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
			}
		}
		if ok {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			total += f
		}
	}
	return total
}

func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc["error"] == nil {
		t.Errorf("error body is not {\"error\": ...}: %.200s", body)
		return ""
	}
	return fmt.Sprint(doc["error"])
}

// binaryRequest builds a binary-extension body for one FP32 input.
func binaryRequest(name string, x *tensor.Tensor) ([]byte, map[string]string) {
	header, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": name, "shape": int64Shape(x.Shape), "datatype": "FP32",
		"parameters": map[string]any{"binary_data_size": 4 * x.Len()}}}})
	raw, _ := tensor.EncodeRaw(x)
	return append(header, raw...), map[string]string{headerLength: strconv.Itoa(len(header))}
}

// waitFor polls cond (liveness only: the bound is generous).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Defect 1: one small request with a zero-element input and a huge batch
// dim ran the process out of memory in the LSTM's scratch. Now it is
// refused by its estimated working set, and the server keeps serving.
func TestDefectOOMFromSmallRequest(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxRequestMemory: 1 << 30, MemoryBudget: 4 << 30})
	url := ts.URL + "/v2/models/seed/infer"
	for _, shape := range []string{"[16777216,0,1]", "[4194304,0,1]", "[1,0,1]", "[0,5,1]"} {
		body := []byte(`{"inputs":[{"name":"input","shape":` + shape + `,"datatype":"FP32","data":[]}]}`)
		code, resp, _ := jsonInfer(t, url, body, nil)
		switch shape {
		case "[16777216,0,1]", "[4194304,0,1]":
			if msg := errorOf(t, resp); code != 413 || !strings.Contains(msg, "estimated") || !strings.Contains(msg, "1.0 GiB") {
				t.Errorf("%s: %d %s, want 413 naming the estimate and the 1.0 GiB limit", shape, code, resp)
			}
		default:
			// small zero-element requests are not memory problems
			if code == 413 || code >= 500 {
				t.Errorf("%s: %d %s", shape, code, resp)
			}
		}
	}
	x := randInput([]int{1, 5, 1}, 0)
	if code, resp, _ := jsonInfer(t, url, map[string]any{"inputs": []any{inputDoc("input", x)}}, nil); code != 200 {
		t.Fatalf("server stopped serving: %d %s", code, resp)
	}
}

type goruntimeMemStats = goruntime.MemStats

func readMem(m *goruntime.MemStats) { goruntime.ReadMemStats(m) }

// The estimate is conservative: at least what a run really allocates, and
// not wildly more (measured by the Go allocator on a warmed session).
func TestMemoryEstimateBoundsAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random, so allocation counts mean nothing")
	}
	s, _ := newTestServer(t, Options{})
	for _, c := range []struct {
		model string
		shape []int
	}{{"seed", []int{64, 300, 1}}, {"seed", []int{1, 3000, 1}}, {"gru3", []int{32, 200, 8}}} {
		m := mustModel(t, s, c.model)
		name := m.meta.Inputs[0].Name
		sess, err := runtime.NewSession(m.model, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sess.Run(map[string]*tensor.Tensor{name: randInput([]int{1, 2, c.shape[2]}, 0)})
		in := map[string]*tensor.Tensor{name: randInput(c.shape, 1)}
		var before, after goruntimeMemStats
		readMem(&before)
		if _, err := sess.Run(in); err != nil {
			t.Fatal(err)
		}
		readMem(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		est := m.mem.estimate(in)
		t.Logf("%s %v: allocated %s, estimated %s (%.1fx)", c.model, c.shape, humanBytes(alloc), humanBytes(est), float64(est)/float64(alloc))
		if est < alloc || est > 10*alloc {
			t.Errorf("%s %v: estimate %d bytes, a run allocated %d", c.model, c.shape, est, alloc)
		}
	}
}

// Defect 2: an overflowing binary_data_size on a second input panicked the
// handler and was counted as a success.
func TestDefectBinaryDataSizeOverflow(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	header := []byte(`{"inputs":[{"name":"input","shape":[1,3,1],"datatype":"FP32","parameters":{"binary_data_size":12}},` +
		`{"name":"other","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":9223372036854775807}}]}`)
	body := append(append([]byte{}, header...), make([]byte, 16)...)
	code, resp, _ := jsonInfer(t, ts.URL+"/v2/models/seed/infer", body, map[string]string{headerLength: strconv.Itoa(len(header))})
	if code != 400 || !strings.Contains(errorOf(t, resp), "binary_data_size") {
		t.Errorf("%d %s, want 400 about binary_data_size", code, resp)
	}
	if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "bad_request"}); n != 1 {
		t.Errorf("bad_request count %v, want 1", n)
	}
	if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "success"}); n != 0 {
		t.Errorf("success count %v, want 0", n)
	}
}

// Defect 3: --timeout was not enforced and nothing was cancelled; with
// batching a timed-out request's queue slot was freed while its work ran on.
func TestDefectTimeoutCancels(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			opts := Options{Timeout: 100 * time.Millisecond, MaxQueue: 2}
			if batching {
				opts.MaxBatch, opts.BatchTimeout = 8, time.Millisecond
			}
			_, ts := newTestServer(t, opts)
			// ~3 s of LSTM work uncancelled
			body, h := binaryRequest("input", randInput([]int{1, 400000, 1}, 0))
			code, resp, _ := jsonInfer(t, ts.URL+"/v2/models/seed/infer", body, h)
			if code != 504 {
				t.Fatalf("%d %s, want 504", code, resp)
			}
			if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "timeout"}); n != 1 {
				t.Errorf("timeout count %v, want 1", n)
			}
			// the slot comes back only once the computation stopped
			waitFor(t, "the queue to empty", func() bool {
				return scrape(t, ts.URL, "mtlrun_queue_depth", map[string]string{"model": "seed"}) == 0
			})
			if n := scrape(t, ts.URL, "mtlrun_memory_reserved_bytes", nil); n != 0 {
				t.Errorf("%v bytes still reserved after the request stopped", n)
			}
			// a client that disconnects is counted as canceled
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v2/models/seed/infer?x", bytes.NewReader(body))
			req.Header.Set(headerLength, h[headerLength])
			time.AfterFunc(30*time.Millisecond, cancel)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			waitFor(t, "the disconnected request to be counted", func() bool {
				return scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "canceled"})+
					scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "timeout"}) == 2
			})
			if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"outcome": "success"}); n != 0 {
				t.Errorf("success count %v, want 0", n)
			}
		})
	}
}

// Defect 3, the queue bound: requests that hold slots while computing make
// later ones 503 until they stop.
func TestDefectQueueSlotHeldUntilStopped(t *testing.T) {
	s, ts := newTestServer(t, Options{Timeout: 20 * time.Second, MaxQueue: 1, MaxBatch: 8, BatchTimeout: time.Millisecond})
	body, h := binaryRequest("input", randInput([]int{1, 400000, 1}, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v2/models/seed/infer", bytes.NewReader(body))
		req.Header.Set(headerLength, h[headerLength])
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the long request to be admitted", func() bool { return len(mustModel(t, s, "seed").queue) == 1 })
	x := randInput([]int{1, 3, 1}, 0)
	if code, resp, hdr := jsonInfer(t, ts.URL+"/v2/models/seed/infer", map[string]any{"inputs": []any{inputDoc("input", x)}}, nil); code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("second request while the slot is held: %d %s", code, resp)
	}
	cancel()
	<-done
	waitFor(t, "the slot to come back", func() bool { return len(mustModel(t, s, "seed").queue) == 0 })
	if code, resp, _ := jsonInfer(t, ts.URL+"/v2/models/seed/infer", map[string]any{"inputs": []any{inputDoc("input", x)}}, nil); code != 200 {
		t.Errorf("after the cancelled request stopped: %d %s", code, resp)
	}
}

// Defects 4 and 8: deflate means zlib-wrapped (raw deflate accepted too);
// decompression is bounded by --max-body and by the memory budget.
func TestDefectContentEncodings(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	x := randInput([]int{1, 4, 1}, 2)
	plain, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
	enc := map[string]func(io.Writer) io.WriteCloser{
		"gzip":    func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"deflate": func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
		"raw":     func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, 5); return z },
	}
	for name, mk := range enc {
		var buf bytes.Buffer
		z := mk(&buf)
		z.Write(plain)
		z.Close()
		header := name
		if name == "raw" {
			header = "deflate"
		}
		code, resp, _ := jsonInfer(t, ts.URL+"/v2/models/seed/infer", buf.Bytes(), map[string]string{"Content-Encoding": header})
		if code != 200 {
			t.Errorf("%s body: %d %s", name, code, resp)
		}
	}
	_ = s
	// a gzip bomb: 1 KiB that inflates to 64 MiB of zeros
	var bomb bytes.Buffer
	z, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	z.Write(make([]byte, 64<<20))
	z.Close()
	_, small := newTestServer(t, Options{MaxBody: 1 << 20})
	code, resp, _ := jsonInfer(t, small.URL+"/v2/models/seed/infer", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if code != 413 {
		t.Errorf("gzip bomb over --max-body: %d %s", code, resp)
	}
	s2, tight := newTestServer(t, Options{MaxBody: 64 << 20, MemoryBudget: 4 << 20})
	code, resp, _ = jsonInfer(t, tight.URL+"/v2/models/seed/infer", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if code != 503 || !strings.Contains(errorOf(t, resp), "memory budget") {
		t.Errorf("gzip bomb over the memory budget: %d %s", code, resp)
	}
	if u := s2.mem.inUse(); u != 0 {
		t.Errorf("%d bytes still reserved", u)
	}
}

// Defects 5 and 10: integer outputs as JSON numbers (never base64), empty
// outputs as [], int64 exact, numbers parsed per datatype, nesting checked.
func TestDefectJSONTypes(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if err := s.AddLoaded("ints", "", intsModel()); err != nil {
		t.Fatal(err)
	}
	url := ts.URL + "/v2/models/ints/infer"
	in := func(i64, f string, shape string) []byte {
		return []byte(`{"inputs":[{"name":"i64","shape":` + shape + `,"datatype":"INT64","data":` + i64 + `},` +
			`{"name":"f","shape":` + shape + `,"datatype":"FP32","data":` + f + `}]}`)
	}
	code, resp, _ := jsonInfer(t, url, in("[9007199254740993,-9223372036854775808]", "[3,250]", "[2]"), nil)
	if code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	for _, want := range []string{`"data":[9007199254740993,-9223372036854775808]`, `"data":[3,250]`, `"datatype":"UINT8"`, `"data":[true,true]`} {
		if !bytes.Contains(resp, []byte(want)) {
			t.Errorf("response lacks %s: %s", want, resp)
		}
	}
	code, resp, _ = jsonInfer(t, url, in("[]", "[]", "[0]"), nil)
	if code != 200 || !bytes.Contains(resp, []byte(`"data":[]`)) || bytes.Contains(resp, []byte("null")) {
		t.Errorf("empty batch: %d %s, want data []", code, resp)
	}
	bad := []struct {
		name, body, want string
	}{
		{"1e999", string(in("[1]", "[1e999]", "[1]")), "out of range for FP32"},
		{"fp32 overflow", string(in("[1]", "[1e39]", "[1]")), "out of range for FP32"},
		{"int64 non-integer", string(in("[1.5]", "[1]", "[1]")), "not an integer"},
		{"int64 overflow", string(in("[9223372036854775808]", "[1]", "[1]")), "out of range for INT64"},
		{"string value", string(in(`["7"]`, "[1]", "[1]")), "not a scalar"},
		{"nesting", `{"inputs":[{"name":"input","shape":[1,3,1],"datatype":"FP32","data":[[[1],[2]],[[3]]]}]}`, "nesting does not match"},
		{"nesting too deep", `{"inputs":[{"name":"input","shape":[1,2,1],"datatype":"FP32","data":[[[[1]],[2]]]}]}`, "too deep"},
		{"trailing", `{"inputs":[{"name":"input","shape":[1,1,1],"datatype":"FP32","data":[1] 2}]}`, "not valid JSON"},
	}
	for _, c := range bad {
		target := url
		if strings.Contains(c.body, `"input"`) {
			target = ts.URL + "/v2/models/seed/infer"
		}
		code, resp, _ := jsonInfer(t, target, []byte(c.body), nil)
		if msg := errorOf(t, resp); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s, want 400 containing %q", c.name, code, resp, c.want)
		}
	}
	// nested data matching the shape is accepted
	code, resp, _ = jsonInfer(t, ts.URL+"/v2/models/seed/infer", []byte(`{"inputs":[{"name":"input","shape":[1,3,1],"datatype":"FP32","data":[[[1],[2],[3]]]}]}`), nil)
	if code != 200 {
		t.Errorf("nested data: %d %s", code, resp)
	}
	// non-API paths and methods answer JSON too
	for _, c := range []struct{ method, path string }{{"GET", "/nope"}, {"DELETE", "/v2/health/live"}, {"GET", "/v2/models/seed/infer"}} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode < 400 || r.Header.Get("Content-Type") != "application/json" || errorOf(t, b) == "" {
			t.Errorf("%s %s: %d %q %s", c.method, c.path, r.StatusCode, r.Header.Get("Content-Type"), b)
		}
	}
}

// Defect 6: a client sending its body one byte at a time is cut off at
// the read timeout, not served forever.
func TestDefectSlowClientCutOff(t *testing.T) {
	opts := Options{ReadTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 300 * time.Millisecond, Logger: quietLogger()}
	s := New(opts)
	if err := s.AddModel("seed", seedModel); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, lis, nil) }()
	defer func() { stop(); <-served; s.Close() }()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v2/models/seed/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	closed := make(chan struct{})
	go func() { io.Copy(io.Discard, conn); close(closed) }()
	sent := 0
	for ; sent < 1000; sent++ {
		if _, err := conn.Write([]byte{'{'}); err != nil {
			break
		}
		select {
		case <-closed:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	if sent >= 1000 {
		t.Fatal("the server read a 1-byte-per-50ms body to the end: no read timeout")
	}
	t.Logf("slow client cut off after %d bytes", sent)
}

// Defect 7: on shutdown both protocols stop accepting at once, readiness
// goes false first, in-flight requests finish, and a slow client does not
// hold the exit beyond the drain timeout.
func TestDefectShutdown(t *testing.T) {
	r := startServe(t, Options{DrainTimeout: 2 * time.Second})
	s, rest, grpcLis, stop, served := r.s, r.rest, r.grpcLis, r.stop, r.served
	defer s.Close()
	base := "http://" + rest.Addr().String()
	// a slow client that never finishes its body
	slow, err := net.Dial("tcp", rest.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v2/models/seed/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	// an in-flight request of ~0.5 s
	body, h := binaryRequest("input", randInput([]int{1, 60000, 1}, 0))
	inflight := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v2/models/seed/infer", bytes.NewReader(body))
		req.Header.Set(headerLength, h[headerLength])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	waitFor(t, "the request to be admitted", func() bool { return len(mustModel(t, s, "seed").queue) == 1 })
	stop()
	waitFor(t, "readiness to go false", func() bool { return !s.Ready() })
	// both listeners refuse new connections while the request still runs
	waitFor(t, "REST to stop accepting", func() bool {
		c, err := net.Dial("tcp", rest.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	waitFor(t, "gRPC to stop accepting", func() bool {
		c, err := net.Dial("tcp", grpcLis.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if len(mustModel(t, s, "seed").queue) != 1 {
		t.Log("the in-flight request finished before both listeners were seen closed")
	}
	if code := <-inflight; code != 200 {
		t.Errorf("in-flight request during shutdown: %d", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return: the slow connection held the shutdown")
	}
	// the slow connection was closed
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, slow); err != nil {
		t.Errorf("slow connection not closed by the server: %v", err)
	}
}

// Defect 9: model names from request paths never become label values.
func TestDefectMetricLabels(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	for i := 0; i < 5; i++ {
		jsonInfer(t, fmt.Sprintf("%s/v2/models/rand%d/infer", ts.URL, i), []byte(`{}`), nil)
	}
	x := randInput([]int{2, 3, 1}, 0)
	jsonInfer(t, ts.URL+"/v2/models/seed/infer", map[string]any{"inputs": []any{inputDoc("input", x)}}, nil)
	resp, _ := http.Get(ts.URL + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(b, []byte("rand")) {
		t.Error("an unknown model name became a label value")
	}
	if n := scrape(t, ts.URL, "mtlrun_requests_total", map[string]string{"model": "unknown", "outcome": "unknown_model"}); n != 5 {
		t.Errorf("unknown bucket %v, want 5", n)
	}
	// Triton's names count the same requests
	for name, want := range map[string]float64{"nv_inference_request_success": 1, "nv_inference_count": 2, "nv_inference_exec_count": 1} {
		if n := scrape(t, ts.URL, name, map[string]string{"model": "seed"}); n != want {
			t.Errorf("%s{model=seed} = %v, want %v", name, n, want)
		}
	}
	if n := scrape(t, ts.URL, "nv_inference_request_failure", map[string]string{"model": "unknown"}); n != 5 {
		t.Errorf("nv_inference_request_failure{model=unknown} = %v, want 5", n)
	}
	if n := scrape(t, ts.URL, "nv_inference_compute_infer_duration_us", map[string]string{"model": "seed"}); n <= 0 || math.IsNaN(n) {
		t.Errorf("nv_inference_compute_infer_duration_us = %v", n)
	}
}

// Responses are gzip-compressed for clients that accept it.
func TestResponseGzip(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	x := randInput([]int{64, 3, 1}, 0)
	data, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
	req, _ := http.NewRequest("POST", ts.URL+"/v2/models/seed/infer", bytes.NewReader(data))
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc InferResponse
	if err := json.NewDecoder(zr).Decode(&doc); err != nil || len(doc.Outputs) != 2 {
		t.Errorf("decompressed response: %v %v", doc, err)
	}
}

// At the end of the drain, requests still computing are cancelled: they
// stop, free their slots, and are counted as canceled; Serve returns nil.
func TestShutdownCancelsAtDrainDeadline(t *testing.T) {
	r := startServe(t, Options{DrainTimeout: 100 * time.Millisecond, MaxRequestMemory: 4 << 30, MemoryBudget: 8 << 30})
	s, rest, stop, served := r.s, r.rest, r.stop, r.served
	defer s.Close()
	body, h := binaryRequest("input", randInput([]int{1, 1000000, 1}, 0)) // ~7 s of work
	go func() {
		req, _ := http.NewRequest("POST", "http://"+rest.Addr().String()+"/v2/models/seed/infer", bytes.NewReader(body))
		req.Header.Set(headerLength, h[headerLength])
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the request to be admitted", func() bool { return len(mustModel(t, s, "seed").queue) == 1 })
	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if n := len(mustModel(t, s, "seed").queue); n != 0 {
		t.Errorf("%d requests still hold slots after Serve returned", n)
	}
	var b strings.Builder
	reg := s.opts.Registry
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "mtlrun_requests_total" {
			for _, m := range mf.GetMetric() {
				fmt.Fprintf(&b, "%v=%v ", m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}
	if !strings.Contains(b.String(), `value:"canceled"`) {
		t.Errorf("the cancelled request is not counted as canceled: %s", b.String())
	}
}

// running is a Server serving the seed model on loopback REST and gRPC
// listeners through Serve, as `mtlrun serve` does.
type running struct {
	s             *Server
	rest, grpcLis net.Listener
	stop          context.CancelFunc // the SIGTERM
	served        chan error         // what Serve returned
}

func startServe(t *testing.T, opts Options) *running {
	t.Helper()
	opts.Logger = quietLogger()
	r := &running{s: New(opts), served: make(chan error, 1)}
	if err := r.s.AddModel("seed", seedModel); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.rest, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if r.grpcLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { r.served <- r.s.Serve(ctx, r.rest, r.grpcLis) }()
	waitFor(t, "readiness", r.s.Ready)
	return r
}

// Defect 8 as reported: 32 concurrent gzip bombs (64 MiB of zeros each)
// took the process to 3.6 GB. Under a 256 MiB budget every bomb is refused
// (413 at --max-body, or 503 when the budget is held by the others) and the
// process's resident memory grows by less than 1.25× the budget (the Go
// memory limit Serve sets; without it the collector lets garbage grow the
// heap to twice what is live).
func TestDefectConcurrentGzipBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	const budget = 256 << 20
	s, ts := newTestServer(t, Options{MemoryBudget: budget})
	var bomb bytes.Buffer
	z, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	z.Write(make([]byte, 64<<20+1)) // one byte over --max-body
	z.Close()
	defer debug.SetMemoryLimit(s.LimitHeap()) // what Serve does
	rssStart, rssPeak := rssBytes(), int64(0)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				rssPeak = max(rssPeak, rssBytes())
			}
		}
	}()
	codes := make(chan int, 32)
	for i := 0; i < 32; i++ {
		go func() {
			req, _ := http.NewRequest("POST", ts.URL+"/v2/models/seed/infer", bytes.NewReader(bomb.Bytes()))
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	count := map[int]int{}
	for i := 0; i < 32; i++ {
		count[<-codes]++
	}
	close(stop)
	<-sampled
	t.Logf("32 gzip bombs: status counts %v; RSS %d MiB before, peak %d MiB", count, rssStart>>20, rssPeak>>20)
	if count[413]+count[503] != 32 {
		t.Errorf("status counts %v, want only 413 and 503", count)
	}
	// the Go memory limit is what the process held plus 1.25× the budget
	if grew := rssPeak - rssStart; grew > budget+budget/4+64<<20 && !raceEnabled {
		t.Errorf("RSS grew by %d MiB under a %d MiB budget", grew>>20, budget>>20)
	}
	if u := s.mem.inUse(); u != 0 {
		t.Errorf("%d bytes still reserved", u)
	}
}
