package serve

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

// seqReq is a REST request body for one step of sequence id.
func seqReq(id any, start, end bool, x *tensor.Tensor) map[string]any {
	p := map[string]any{"sequence_id": id}
	if start {
		p["sequence_start"] = true
	}
	if end {
		p["sequence_end"] = true
	}
	return map[string]any{"parameters": p, "inputs": []any{inputDoc("input", x)}}
}

// TestSequenceAdmission: sequence steps go through the memory and queue
// admission (refused before the sequence changes), honour a cancelled
// context (the state is kept), and are counted under their real outcome.
func TestSequenceAdmission(t *testing.T) {
	for _, maxBatch := range []int{1, 4} {
		s, c := newSeqServer(t, Options{MaxBatch: maxBatch, MaxQueue: 2})
		m, _ := s.Model("seed")
		x := tensor.From([]int{1, 1, 1}, []float32{0.5})
		if _, err := c.step(false, uint64(9), true, false, x); err != nil {
			t.Fatal(err)
		}
		// 413: far more steps than the per-request limit allows; the
		// sequence is untouched (its step count stays 1)
		big := tensor.From([]int{1, 1, 1}, []float32{0.1})
		est := m.mem.estimate(map[string]*tensor.Tensor{"input": big})
		s.opts.MaxRequestMemory = int64(est) - 1
		code, body, _ := jsonInfer(t, c.url+"/v2/models/seed/infer", seqReq(9, false, false, big), nil)
		if code != 413 || !strings.Contains(string(body), "max-request-memory") {
			t.Fatalf("over the request limit: %d %s", code, body)
		}
		code, body, _ = jsonInfer(t, c.url+"/v2/models/seed/infer", seqReq(77, true, false, big), nil)
		if code != 413 {
			t.Fatalf("a start over the request limit: %d %s", code, body)
		}
		s.opts.MaxRequestMemory = 1 << 40
		if _, err := c.step(false, uint64(77), false, false, x); err == nil || !strings.Contains(err.Error(), "never started") {
			t.Fatalf("a start refused with 413 created the sequence: %v", err)
		}
		// 503: the model's queue is full
		for i := 0; i < cap(m.queue); i++ {
			m.queue <- struct{}{}
		}
		code, body, hdr := jsonInfer(t, c.url+"/v2/models/seed/infer", seqReq(9, false, false, x), nil)
		for i := 0; i < cap(m.queue); i++ {
			<-m.queue
		}
		if code != 503 || hdr.Get("Retry-After") == "" {
			t.Fatalf("queue full: %d %s", code, body)
		}
		// 503: the memory budget is held by others
		held := &reservation{b: &s.mem}
		if !held.grow(s.mem.limit - est/2) {
			t.Fatal("could not hold the budget")
		}
		code, body, _ = jsonInfer(t, c.url+"/v2/models/seed/infer", seqReq(9, false, false, x), nil)
		held.release()
		if code != 503 || !strings.Contains(string(body), "memory budget") {
			t.Fatalf("budget held: %d %s", code, body)
		}
		// a cancelled request: context.Canceled, the state kept
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		in := map[string]*tensor.Tensor{"input": x}
		_, err := s.InferParams(ctx, m, map[string]any{"sequence_id": uint64(9)}, in, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled step: %v", err)
		}
		tbl := s.seq.table(m)
		tbl.mu.Lock()
		e := tbl.byID["#9"].Value.(*seqEntry)
		tbl.mu.Unlock()
		// a step whose deadline (the timeout parameter, µs) passes while
		// it waits for the sequence's previous request (held here)
		e.lock <- struct{}{}
		req := seqReq(9, false, false, x)
		req["parameters"].(map[string]any)["timeout"] = 2000
		code, body, _ = jsonInfer(t, c.url+"/v2/models/seed/infer", req, nil)
		e.unlock()
		if code != 504 || !strings.Contains(string(body), "timed out") {
			t.Fatalf("timed-out step: %d %s", code, body)
		}
		if n := e.st.Steps(); n != 1 {
			t.Errorf("after refused, timed-out and cancelled steps the sequence has %d steps, want 1", n)
		}
		if len(m.queue) != 0 || s.mem.inUse() != 0 {
			t.Errorf("queue slots %d and %d reserved bytes left after the steps", len(m.queue), s.mem.inUse())
		}
		for outcome, want := range map[string]float64{"success": 1, "too_large": 2, "overloaded": 2, "bad_request": 1, "timeout": 1} {
			if got := scrape(t, c.url, "mtlrun_requests_total", map[string]string{"model": "seed", "protocol": "rest", "outcome": outcome}); got != want {
				t.Errorf("max-batch %d: mtlrun_requests_total outcome %s = %v, want %v", maxBatch, outcome, got, want)
			}
		}
		if got := scrape(t, c.url, "nv_inference_exec_count", map[string]string{"model": "seed"}); got != 1 {
			t.Errorf("max-batch %d: nv_inference_exec_count %v, want 1 (one step ran)", maxBatch, got)
		}
	}
}

// TestSequenceRepository: a sequence is bound to the version it started
// on; reloading or unloading the model ends its sequences (and removes
// their state files) with a clear error.
func TestSequenceRepository(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	copyFile(t, seedModel, filepath.Join(dir, "s", "1", "model.onnx"))
	copyFile(t, seedModel, filepath.Join(dir, "s", "2", "model.onnx"))
	s := New(Options{Logger: quietLogger(), StateDir: state})
	if err := s.LoadRepository(dir); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewServer(s.Handler())
	defer func() { ts.Close(); s.Close() }()
	x := tensor.From([]int{1, 1, 1}, []float32{0.5})
	step := func(path string, id any, start bool) (int, string) {
		code, body, _ := jsonInfer(t, ts.URL+path, seqReq(id, start, false, x), nil)
		if code == 200 {
			var r InferResponse
			json.Unmarshal(body, &r)
			return code, r.ModelVersion
		}
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		return code, e.Error
	}
	if code, v := step("/v2/models/s/versions/1/infer", "a", true); code != 200 || v != "1" {
		t.Fatalf("start on version 1: %d %s", code, v)
	}
	if code, v := step("/v2/models/s/infer", "b", true); code != 200 || v != "2" {
		t.Fatalf("start on the latest: %d %s", code, v)
	}
	if code, msg := step("/v2/models/s/infer", "a", false); code != 400 || !strings.Contains(msg, "bound to version 1") {
		t.Fatalf("sequence of version 1 sent to the latest: %d %s", code, msg)
	}
	if code, v := step("/v2/models/s/versions/1/infer", "a", false); code != 200 || v != "1" {
		t.Fatalf("sequence on its version: %d %s", code, v)
	}
	file := filepath.Join(state, "s", "1", hex.EncodeToString([]byte("$a"))+".state")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	if err := s.LoadFromRepository("s"); err != nil {
		t.Fatal(err)
	}
	if code, msg := step("/v2/models/s/versions/1/infer", "a", false); code != 400 || !strings.Contains(msg, `model "s" version 1 was reloaded`) {
		t.Fatalf("after a reload: %d %s", code, msg)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the state file of a sequence ended by a reload is still there (%v)", err)
	}
	if code, v := step("/v2/models/s/infer", "c", true); code != 200 || v != "2" {
		t.Fatalf("start after the reload: %d %s", code, v)
	}
	old, _ := s.Model("s")
	if err := s.Unload("s"); err != nil {
		t.Fatal(err)
	}
	// a request that found the version just before the unload starts no
	// sequence on it
	_, err := s.InferParams(context.Background(), old, map[string]any{"sequence_id": "d", "sequence_start": true}, map[string]*tensor.Tensor{"input": x}, nil)
	if err == nil || !strings.Contains(err.Error(), "no longer served") {
		t.Fatalf("a start on an unloaded version: %v", err)
	}
	s.seq.mu.Lock()
	_, kept := s.seq.tables[old]
	s.seq.mu.Unlock()
	if kept {
		t.Error("an unloaded version got a sequence table")
	}
	if code, msg := step("/v2/models/s/infer", "c", false); code != 404 {
		t.Fatalf("unloaded model: %d %s", code, msg)
	}
	if err := s.LoadFromRepository("s"); err != nil {
		t.Fatal(err)
	}
	if code, msg := step("/v2/models/s/infer", "c", false); code != 400 || !strings.Contains(msg, "was unloaded") {
		t.Fatalf("after unload and load: %d %s", code, msg)
	}
	if got := scrape(t, ts.URL, "mtlrun_sequences_ended_total", map[string]string{"model": "s", "reason": "unloaded"}); got != 3 {
		t.Errorf("sequences ended by reload/unload: %v, want 3", got)
	}
	if got := scrape(t, ts.URL, "mtlrun_sequences_live", map[string]string{"model": "s"}); got != 0 {
		t.Errorf("live sequences: %v, want 0", got)
	}
}
