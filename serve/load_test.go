package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/tensor"
)

// The load test is bounded: a fixed number of clients for a fixed time,
// against a server on loopback only. Defaults keep CI short; docs/SERVING.md
// reports runs with -load.clients=32 -load.duration=10s.
var (
	loadClients  = flag.Int("load.clients", 8, "load test: concurrent clients")
	loadDuration = flag.Duration("load.duration", 2*time.Second, "load test: duration of each run")
	loadTime     = flag.Int("load.time", 100, "load test: sequence length of each batch-1 request")
)

type loadReport struct {
	requests, errors int
	rps              float64
	p50, p99         time.Duration
}

func (r loadReport) String() string {
	return fmt.Sprintf("%d requests, %d errors, %.0f req/s, p50 %v, p99 %v", r.requests, r.errors, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
}

// runLoad sends batch-1 seed-model requests from n clients for d and checks
// every answer against a direct Session.Run of the same input.
func runLoad(t testing.TB, s *Server, url string, clients int, d time.Duration) loadReport {
	const variants = 16
	type sample struct {
		body []byte
		want map[string][]float32
	}
	samples := make([]sample, variants)
	for i := range samples {
		x := randInput([]int{1, *loadTime, 1}, i)
		want := direct(t, s, "seed", map[string]*tensor.Tensor{"input": x})
		body, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
		samples[i] = sample{body, map[string][]float32{}}
		for k, v := range want {
			samples[i].want[k] = v.Float32s()
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			for i := c; time.Now().Before(deadline); i++ {
				sm := samples[i%variants]
				start := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(sm.body))
				if err != nil {
					errs.Add(1)
					continue
				}
				var r struct {
					Outputs []struct {
						Name string    `json:"name"`
						Data []float32 `json:"data"`
					} `json:"outputs"`
				}
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				mine = append(mine, time.Since(start))
				if err != nil || resp.StatusCode != 200 || !sameOutputs(r.Outputs, sm.want) {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rep := loadReport{requests: len(lat), errors: int(errs.Load()), rps: float64(len(lat)) / d.Seconds()}
	if len(lat) > 0 {
		rep.p50, rep.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return rep
}

func sameOutputs(got []struct {
	Name string    `json:"name"`
	Data []float32 `json:"data"`
}, want map[string][]float32) bool {
	if len(got) != len(want) {
		return false
	}
	for _, o := range got {
		w := want[o.Name]
		if len(w) != len(o.Data) {
			return false
		}
		for i := range w {
			// batched rows may round differently in the last bit
			if d := o.Data[i] - w[i]; d > 1e-6 || d < -1e-6 {
				return false
			}
		}
	}
	return true
}

func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	for _, batching := range []bool{false, true} {
		opts := Options{MaxQueue: 4096}
		if batching {
			opts.MaxBatch, opts.BatchTimeout = 32, 100*time.Microsecond
		}
		s, ts := newTestServer(t, opts)
		rep := runLoad(t, s, ts.URL+"/v2/models/seed/infer", *loadClients, *loadDuration)
		t.Logf("dynamic batching %v, %d clients, %v: %v", batching, *loadClients, *loadDuration, rep)
		if rep.errors > 0 || rep.requests == 0 {
			t.Errorf("load run had %d errors in %d requests", rep.errors, rep.requests)
		}
	}
}

// TestGracefulShutdown sends SIGTERM to a real `mtlrun serve` under load:
// every request the server accepted must get a complete 200 response.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "mtlrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mtlrun")
	build.Dir = fixtures.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "seed="+seedModel, "--addr", "127.0.0.1:0", "--max-batch", "8")
	stdout, _ := cmd.StdoutPipe()
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(line[strings.Index(line, "http://"):])
	x := randInput([]int{1, 200, 1}, 1)
	body, _ := json.Marshal(map[string]any{"inputs": []any{inputDoc("input", x)}})
	var ok, refused, broken atomic.Int64
	var wg sync.WaitGroup
	stopAt := time.Now().Add(1500 * time.Millisecond)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// one connection per request: a request is "accepted" exactly
			// when its connection is, so refusals are cleanly separated from
			// broken responses (keep-alive races at close are not the
			// server's to answer)
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for time.Now().Before(stopAt) {
				resp, err := client.Post(base+"/v2/models/seed/infer", "application/json", bytes.NewReader(body))
				if err != nil {
					if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
						refused.Add(1)
						time.Sleep(10 * time.Millisecond)
					} else {
						broken.Add(1)
					}
					continue
				}
				data, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var doc map[string]any
				if err != nil || resp.StatusCode != 200 || json.Unmarshal(data, &doc) != nil || doc["outputs"] == nil {
					broken.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := cmd.Wait()
	wg.Wait()
	// the server's last log line says how many requests its handler
	// accepted; each of those must have reached a client complete. Client
	// errors beyond that are connections the kernel queued but the server
	// never accepted before closing its listener.
	var accepted, answered int64 = -1, -1
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "stopped" {
			accepted, answered = int64(rec["requests_accepted"].(float64)), int64(rec["requests_answered"].(float64))
		}
	}
	t.Logf("SIGTERM under load: server accepted %d and answered %d requests; clients got %d complete responses, %d refused, %d cut before acceptance",
		accepted, answered, ok.Load(), refused.Load(), broken.Load())
	if waitErr != nil {
		t.Errorf("server exit: %v", waitErr)
	}
	if accepted < 0 {
		t.Fatalf("no shutdown summary in the server log:\n%s", logs.String())
	}
	if accepted != answered || ok.Load() != accepted {
		t.Errorf("accepted %d, answered %d, complete at the clients %d: an accepted request lost its response", accepted, answered, ok.Load())
	}
	if ok.Load() == 0 {
		t.Error("no request completed before shutdown")
	}
}
