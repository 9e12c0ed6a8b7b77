package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

// The soak test is bounded and loopback-only. Defaults fit CI under -race;
// docs/SERVING.md reports -soak.clients=64 -soak.duration=60s.
var (
	soakClients  = flag.Int("soak.clients", 16, "soak test: concurrent clients")
	soakDuration = flag.Duration("soak.duration", 3*time.Second, "soak test: duration")
)

// soakCounts is what clients saw, by outcome as the server names them.
type soakCounts struct {
	mu        sync.Mutex
	byOutcome map[string]int // requests that were not cancelled by the client
	cancelled int            // requests the client gave up on (any outcome, or none)
	wrong     []string       // answers that were not what they should be
}

func (c *soakCounts) add(outcome string) {
	c.mu.Lock()
	c.byOutcome[outcome]++
	c.mu.Unlock()
}

func (c *soakCounts) fail(format string, args ...any) {
	c.mu.Lock()
	if len(c.wrong) < 20 {
		c.wrong = append(c.wrong, fmt.Sprintf(format, args...))
	}
	c.mu.Unlock()
}

func outcomeOfStatus(code int) string {
	switch code {
	case 200:
		return "success"
	case 400:
		return "bad_request"
	case 404:
		return "unknown_model"
	case 413:
		return "too_large"
	case 503:
		return "overloaded"
	case 504:
		return "timeout"
	}
	return fmt.Sprintf("status_%d", code)
}

func outcomeOfGRPC(err error) string {
	switch status.Code(err) {
	case codes.OK:
		return "success"
	case codes.InvalidArgument:
		return "bad_request"
	case codes.NotFound:
		return "unknown_model"
	case codes.ResourceExhausted:
		return "too_large"
	case codes.Unavailable:
		return "overloaded"
	case codes.DeadlineExceeded:
		return "timeout"
	}
	return "grpc_" + status.Code(err).String()
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestSoak: many clients of mixed REST JSON, REST binary and gRPC traffic,
// with random cancellations, oversized, malformed and compressed-bomb
// requests, against one server. Every answer is checked (values against a
// direct Session.Run); at the end the server's metrics must equal what the
// clients saw, no memory is reserved, and no goroutine is left.
func TestSoak(t *testing.T) {
	clients, duration := *soakClients, *soakDuration
	if testing.Short() {
		clients, duration = 8, time.Second
	}
	before := goruntime.NumGoroutine()
	opts := Options{MaxBatch: 8, BatchTimeout: 200 * time.Microsecond, Timeout: 2 * time.Second, MaxQueue: 32,
		MaxBody: 4 << 20, MemoryBudget: 512 << 20, MaxRequestMemory: 128 << 20, DrainTimeout: 5 * time.Second}
	r := startServe(t, opts)
	s, rest, grpcLis, stop, served := r.s, r.rest, r.grpcLis, r.stop, r.served
	base := "http://" + rest.Addr().String()

	// a few valid requests with their direct answers
	type sample struct {
		x    *tensor.Tensor
		want map[string][]float32
		json []byte
		bin  []byte
		hlen string
	}
	samples := make([]sample, 8)
	for i := range samples {
		x := randInput([]int{1 + i%3, 20 + 7*i, 1}, i)
		want := direct(t, s, "seed", map[string]*tensor.Tensor{"input": x})
		sm := sample{x: x, want: map[string][]float32{}}
		for k, v := range want {
			sm.want[k] = v.Float32s()
		}
		sm.json, _ = json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
		var h map[string]string
		sm.bin, h = binaryRequest("input", x)
		sm.hlen = h[headerLength]
		samples[i] = sm
	}
	long := randInput([]int{1, 30000, 1}, 99)
	longJSON, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", long)}})
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(make([]byte, 16<<20))
	zw.Close()

	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport}
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	gc := pb.NewGRPCInferenceServiceClient(conn)

	counts := &soakCounts{byOutcome: map[string]int{}}
	checkJSON := func(body []byte, sm sample) {
		var r InferResponse
		if err := json.Unmarshal(body, &r); err != nil || len(r.Outputs) != len(sm.want) {
			counts.fail("bad 200 body: %.200s", body)
			return
		}
		for _, o := range r.Outputs {
			var got []float32
			json.Unmarshal(o.Data, &got)
			want := sm.want[o.Name]
			if len(got) != len(want) {
				counts.fail("output %s: %d values, want %d", o.Name, len(got), len(want))
				return
			}
			for i := range want {
				if got[i] != want[i] {
					counts.fail("output %s[%d] = %v, direct run %v", o.Name, i, got[i], want[i])
					return
				}
			}
		}
	}
	post := func(ctx context.Context, path string, body []byte, hdr map[string]string) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp.StatusCode, data, err
	}
	heapStart := liveHeap()
	rssStart, rssPeak := rssBytes(), int64(0)
	var wg sync.WaitGroup
	end := time.Now().Add(duration)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c)))
			for time.Now().Before(end) {
				sm := samples[rng.Intn(len(samples))]
				switch k := rng.Intn(20); {
				case k < 6: // REST JSON
					code, body, err := post(context.Background(), "/v2/models/seed/infer", sm.json, nil)
					if err != nil {
						counts.fail("REST JSON: %v", err)
						continue
					}
					counts.add(outcomeOfStatus(code))
					if code == 200 {
						checkJSON(body, sm)
					}
				case k < 10: // REST binary in, JSON out
					code, body, err := post(context.Background(), "/v2/models/seed/infer", sm.bin, map[string]string{headerLength: sm.hlen})
					if err != nil {
						counts.fail("REST binary: %v", err)
						continue
					}
					counts.add(outcomeOfStatus(code))
					if code == 200 {
						checkJSON(body, sm)
					}
				case k < 14: // gRPC
					raw, _ := tensor.EncodeRaw(sm.x)
					resp, err := gc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "seed",
						Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: int64Shape(sm.x.Shape)}},
						RawInputContents: [][]byte{raw}})
					counts.add(outcomeOfGRPC(err))
					if err == nil {
						for i, o := range resp.Outputs {
							got, _ := tensor.DecodeRaw(tensor.Float32, resp.RawOutputContents[i], len(sm.want[o.Name]))
							if fmt.Sprint(got) != fmt.Sprint(sm.want[o.Name]) {
								counts.fail("gRPC output %s differs", o.Name)
							}
						}
					}
				case k < 16: // a long request the client cancels at a random point
					cctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.Intn(20000))*time.Microsecond)
					if rng.Intn(2) == 0 {
						post(cctx, "/v2/models/seed/infer", longJSON, nil)
					} else {
						raw, _ := tensor.EncodeRaw(long)
						gc.ModelInfer(cctx, &pb.ModelInferRequest{ModelName: "seed",
							Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: int64Shape(long.Shape)}},
							RawInputContents: [][]byte{raw}})
					}
					cancel()
					counts.mu.Lock()
					counts.cancelled++
					counts.mu.Unlock()
				case k == 16: // oversized by memory
					code, _, err := post(context.Background(), "/v2/models/seed/infer",
						[]byte(`{"inputs":[{"name":"input","shape":[16777216,0,1],"datatype":"FP32","data":[]}]}`), nil)
					if err != nil {
						counts.fail("oversized: %v", err)
						continue
					}
					counts.add(outcomeOfStatus(code))
				case k == 17: // malformed: a cut or corrupted body
					b := append([]byte{}, sm.json[:rng.Intn(len(sm.json))]...)
					if len(b) > 0 {
						b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
					}
					code, _, err := post(context.Background(), "/v2/models/seed/infer", b, nil)
					if err != nil {
						counts.fail("malformed: %v", err)
						continue
					}
					counts.add(outcomeOfStatus(code))
				case k == 18: // a gzip bomb over --max-body
					code, _, err := post(context.Background(), "/v2/models/seed/infer", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"})
					if err != nil {
						counts.fail("bomb: %v", err)
						continue
					}
					counts.add(outcomeOfStatus(code))
				default: // an unknown model, over gRPC or REST
					if rng.Intn(2) == 0 {
						_, err := gc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "m" + strconv.Itoa(rng.Int())})
						counts.add(outcomeOfGRPC(err))
					} else {
						code, _, err := post(context.Background(), "/v2/models/m"+strconv.Itoa(rng.Int())+"/infer", sm.json, nil)
						if err != nil {
							counts.fail("unknown model: %v", err)
							continue
						}
						counts.add(outcomeOfStatus(code))
					}
				}
			}
		}(c)
	}
	for done := false; !done; {
		time.Sleep(100 * time.Millisecond)
		rssPeak = max(rssPeak, rssBytes())
		done = time.Now().After(end)
	}
	wg.Wait()
	// the server has answered everything it will: the cancelled requests
	// it saw stop computing within a bounded time
	waitFor(t, "the queue to empty", func() bool { return len(mustModel(t, s, "seed").queue) == 0 && s.mem.inUse() == 0 })

	server := map[string]float64{}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(metricsText), "\n") {
		if !strings.HasPrefix(line, "mtlrun_requests_total{") {
			continue
		}
		i := strings.Index(line, `outcome="`) + len(`outcome="`)
		j := strings.IndexByte(line[i:], '"')
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		server[line[i:i+j]] += v
	}
	total := 0
	for _, n := range counts.byOutcome {
		total += n
	}
	t.Logf("%d clients, %v: %d requests answered to clients %v, %d cancelled by clients; server counted %v; RSS %d MiB at start, peak %d MiB",
		clients, duration, total, counts.byOutcome, counts.cancelled, server, rssStart>>20, rssPeak>>20)
	for _, w := range counts.wrong {
		t.Error(w)
	}
	// outcomes a cancelled request cannot have must match exactly; the
	// others may be raised by cancelled requests the server saw
	extra := 0.0
	for outcome, n := range server {
		c := float64(counts.byOutcome[outcome])
		switch outcome {
		case "bad_request", "too_large", "unknown_model":
			if n != c {
				t.Errorf("server counted %v %s, clients saw %v", n, outcome, c)
			}
		default:
			if n < c {
				t.Errorf("server counted %v %s, clients saw %v", n, outcome, c)
			}
			extra += n - c
		}
	}
	for outcome, c := range counts.byOutcome {
		if _, ok := server[outcome]; !ok && c > 0 {
			t.Errorf("clients saw %d %s, the server counted none", c, outcome)
		}
	}
	if extra > float64(counts.cancelled) {
		t.Errorf("the server counted %v requests beyond what clients saw, more than the %d cancelled", extra, counts.cancelled)
	}
	if counts.byOutcome["success"] == 0 {
		t.Error("no request succeeded")
	}

	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	s.Close()
	conn.Close()
	transport.CloseIdleConnections()
	// nothing the traffic made is still alive: the live heap is back
	// where it started (pooled executors and their arenas are dropped by
	// the collections liveHeap runs)
	if end := liveHeap(); end > heapStart+32<<20 {
		t.Errorf("live heap %s at the end, %s before the traffic", humanBytes(end), humanBytes(heapStart))
	} else {
		t.Logf("live heap %s before the traffic, %s at the end", humanBytes(heapStart), humanBytes(end))
	}
	for deadline := time.Now().Add(10 * time.Second); goruntime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:goruntime.Stack(buf, true)]
		t.Errorf("%d goroutines at the end, %d before:\n%s", n, before, buf)
	}
	if s.mem.inUse() != 0 {
		t.Errorf("%d bytes of the memory budget still reserved", s.mem.inUse())
	}
}

// liveHeap is the heap in use after two garbage collections (sync.Pool
// keeps its objects through one).
func liveHeap() uint64 {
	var m goruntime.MemStats
	goruntime.GC()
	goruntime.GC()
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc
}
