package serve

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mtlrun/mtlrun/runtime"
	pb "github.com/mtlrun/mtlrun/serve/inferencepb"
	"github.com/mtlrun/mtlrun/tensor"
)

// seqClient sends one step of a sequence over REST or gRPC.
type seqClient struct {
	url  string
	grpc pb.GRPCInferenceServiceClient
}

// step sends x ([1, k, 1]) for sequence id with the given flags and
// returns output1 and output2, or the error (status code in the message).
func (c *seqClient) step(useGRPC bool, id any, start, end bool, x *tensor.Tensor) (map[string][]float32, error) {
	if useGRPC {
		p := map[string]*pb.InferParameter{
			"sequence_start": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: start}},
			"sequence_end":   {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: end}},
		}
		switch v := id.(type) {
		case uint64:
			p["sequence_id"] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: v}}
		case string:
			p["sequence_id"] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
		}
		raw, _ := tensor.EncodeRaw(x)
		resp, err := c.grpc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "seed", Parameters: p,
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: int64Shape(x.Shape)}},
			RawInputContents: [][]byte{raw}})
		if err != nil {
			return nil, err
		}
		out := map[string][]float32{}
		for i, o := range resp.Outputs {
			d, err := tensor.DecodeRaw(tensor.Float32, resp.RawOutputContents[i], 1)
			if err != nil {
				return nil, err
			}
			out[o.Name] = d.([]float32)
		}
		return out, nil
	}
	params := map[string]any{"sequence_id": id}
	if start {
		params["sequence_start"] = true
	}
	if end {
		params["sequence_end"] = true
	}
	body, _ := json.Marshal(map[string]any{"parameters": params, "inputs": []any{inputDoc("input", x)}})
	resp, err := http.Post(c.url+"/v2/models/seed/infer", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	var doc struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	for _, o := range doc.Outputs {
		out[o.Name] = o.Data
	}
	return out, nil
}

func newSeqServer(t *testing.T, opts Options) (*Server, *seqClient) {
	t.Helper()
	s, ts := newTestServer(t, opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := s.ServeGRPC(lis)
	t.Cleanup(stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, &seqClient{url: ts.URL, grpc: pb.NewGRPCInferenceServiceClient(conn)}
}

// TestSequencesConcurrent: 100 sequences of 50 steps at once, each step
// alternating REST and gRPC; every step's outputs equal a full run over
// the sequence's steps so far.
func TestSequencesConcurrent(t *testing.T) {
	for _, maxBatch := range []int{1, 16} {
		t.Run(fmt.Sprintf("max-batch=%d", maxBatch), func(t *testing.T) { testSequencesConcurrent(t, maxBatch) })
	}
}

func testSequencesConcurrent(t *testing.T, maxBatch int) {
	s, c := newSeqServer(t, Options{MaxBatch: maxBatch})
	m, _ := s.Model("seed")
	ref, err := runtime.NewSession(m.model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const nSeq, T = 100, 50
	var wg sync.WaitGroup
	errs := make(chan error, nSeq)
	for q := 0; q < nSeq; q++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id any = uint64(1000 + q)
			if q%2 == 1 {
				id = fmt.Sprintf("sensor-%d", q)
			}
			x := randInput([]int{1, T, 1}, q)
			xs := x.Float32s()
			for step := 0; step < T; step++ {
				got, err := c.step((step+q)%2 == 1, id, step == 0, step == T-1, tensor.From([]int{1, 1, 1}, []float32{xs[step]}))
				if err != nil {
					errs <- fmt.Errorf("sequence %v step %d: %v", id, step, err)
					return
				}
				want, err := ref.Run(map[string]*tensor.Tensor{"input": tensor.From([]int{1, step + 1, 1}, append([]float32(nil), xs[:step+1]...))})
				if err != nil {
					errs <- err
					return
				}
				for _, o := range []string{"output1", "output2"} {
					w := want[o].Float32s()
					if len(got[o]) != 1 || math.Abs(float64(got[o][0]-w[0])) > 1e-6 {
						errs <- fmt.Errorf("sequence %v step %d %s: served %v, prefix run %v", id, step, o, got[o], w)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.seq.table(m).lru.Len(); n != 0 {
		t.Errorf("%d sequences still live after every sequence_end", n)
	}
	if maxBatch > 1 {
		n := s.seq.table(m).batch.batched.Load()
		if n == 0 {
			t.Error("no two sequences' steps ran as one batch")
		}
		t.Logf("%d batched runs", n)
	}
}

// TestSequenceLifecycle: eviction, idle expiry, end, and the errors of
// requests for sequences the server does not hold.
func TestSequenceLifecycle(t *testing.T) {
	s, c := newSeqServer(t, Options{MaxSequences: 2, SequenceIdleTimeout: time.Minute})
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	s.seq.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	x := tensor.From([]int{1, 1, 1}, []float32{0.5})
	expect := func(useGRPC bool, id any, start, end bool, in *tensor.Tensor, want string) {
		t.Helper()
		_, err := c.step(useGRPC, id, start, end, in)
		if want == "" {
			if err != nil {
				t.Fatalf("sequence %v: %v", id, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("sequence %v: got %v, want an error containing %q", id, err, want)
		}
		if useGRPC && status.Code(err) != codes.InvalidArgument {
			t.Fatalf("sequence %v: gRPC code %v, want InvalidArgument", id, status.Code(err))
		}
		if !useGRPC && !strings.Contains(err.Error(), "status 400") {
			t.Fatalf("sequence %v: %v, want status 400", id, err)
		}
	}
	expect(false, uint64(5), false, false, x, "was never started")
	expect(true, uint64(5), false, true, x, "was never started") // sequence_end for an unknown id
	expect(false, 0, true, false, x, "need a non-zero sequence_id")
	expect(false, uint64(1), true, false, x, "")
	expect(true, "two", true, false, x, "")
	expect(false, uint64(1), false, false, tensor.From([]int{1, 1, 2}, []float32{1, 2}), "dim 2 must be 1")
	expect(false, uint64(3), true, false, x, "") // evicts "two" (1 was used last)
	expect(true, "two", false, false, x, "was evicted")
	expect(false, uint64(1), false, false, x, "")
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	expect(false, uint64(1), false, false, x, "expired after 1m0s")
	expect(true, uint64(4), true, true, x, "")
	expect(false, uint64(4), false, false, x, "ended (sequence_end)")
	expect(false, uint64(4), true, false, x, "") // restarts

	resp, err := http.Get(c.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mtlrun_sequences_ended_total{model="seed",reason="evicted"} 1`,
		`mtlrun_sequences_ended_total{model="seed",reason="idle"} 2`,
		`mtlrun_sequences_ended_total{model="seed",reason="end"} 1`,
		`mtlrun_sequences_live{model="seed"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestSequenceIDs(t *testing.T) {
	for _, c := range []struct {
		p    map[string]any
		want string
		bad  bool
	}{
		{nil, "", false},
		{map[string]any{"sequence_id": json.Number("18446744073709551615")}, "#18446744073709551615", false},
		{map[string]any{"sequence_id": json.Number("0")}, "", false},
		{map[string]any{"correlation_id": "abc"}, "$abc", false},
		{map[string]any{"sequence_id": ""}, "", false},
		{map[string]any{"sequence_id": uint64(7)}, "#7", false},
		{map[string]any{"sequence_id": json.Number("-3")}, "", true},
		{map[string]any{"sequence_id": 1.5}, "", true},
		{map[string]any{"sequence_id": true}, "", true},
	} {
		got, err := sequenceID(c.p)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("sequenceID(%v) = %q, %v; want %q (error %v)", c.p, got, err, c.want, c.bad)
		}
	}
}

// TestSequenceStateDir: with a state folder, a sequence continues across a
// server restart exactly; a state file of another model is refused.
func TestSequenceStateDir(t *testing.T) {
	dir := t.TempDir()
	x := randInput([]int{1, 20, 1}, 42)
	xs := x.Float32s()
	s1, c1 := newSeqServer(t, Options{StateDir: dir})
	m, _ := s1.Model("seed")
	ref, err := runtime.NewSession(m.model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(c *seqClient, step int, start bool) {
		t.Helper()
		got, err := c.step(step%2 == 0, "restartable", start, false, tensor.From([]int{1, 1, 1}, []float32{xs[step]}))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want, err := ref.Run(map[string]*tensor.Tensor{"input": tensor.From([]int{1, step + 1, 1}, append([]float32(nil), xs[:step+1]...))})
		if err != nil {
			t.Fatal(err)
		}
		if w := want["output1"].Float32s(); got["output1"][0] != w[0] {
			t.Fatalf("step %d: served %v, prefix run %v", step, got["output1"], w)
		}
	}
	for step := 0; step < 10; step++ {
		check(c1, step, step == 0)
	}
	// a new server on the same folder: the sequence continues
	_, c2 := newSeqServer(t, Options{StateDir: dir})
	for step := 10; step < 20; step++ {
		check(c2, step, false)
	}
	// seed's state file under gru3's name is refused, naming the reason
	src := filepath.Join(dir, "seed", "1", hex.EncodeToString([]byte("$restartable"))+".state")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "gru3", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// the same stream state, relabelled with an output gru3 has
	n := binary.LittleEndian.Uint32(data)
	forged := binary.LittleEndian.AppendUint32(nil, uint32(len("regression")))
	forged = append(append(forged, "regression"...), data[4+n:]...)
	if err := os.WriteFile(filepath.Join(dir, "gru3", "1", filepath.Base(src)), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"parameters": map[string]any{"sequence_id": "restartable"},
		"inputs": []any{inputDoc("input", randInput([]int{1, 1, 8}, 1))}})
	resp, err := http.Post(c2.url+"/v2/models/gru3/infer", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "another model") {
		t.Fatalf("gru3 with seed's state: %d %s", resp.StatusCode, msg)
	}
}
