// Package interop starts a real `mtlrun serve` process for the interop tests
// of kservepb and tritonpb (clients generated from KServe's and Triton's
// official protos) and computes the reference outputs they are checked
// against. It must not import package serve: see README.md.
package interop

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all" // the kernels Reference runs
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// SeedModel is the model the server serves as "seed": input "input"
// [batch, time, 1] FP32, outputs "output1" and "output2".
var SeedModel = filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx")

var (
	buildOnce sync.Once
	binPath   string
	binDir    string
	buildErr  error
)

// Binary builds cmd/mtlrun once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mtlrun-interop-")
		binDir = dir
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mtlrun")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mtlrun")
		cmd.Dir = fixtures.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("interop: building mtlrun: %v", buildErr)
	}
	return binPath
}

// Main runs a test binary's tests and removes the mtlrun it built.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Server is a running `mtlrun serve` process.
type Server struct {
	GRPCAddr string // host:port of the gRPC API
	HTTPAddr string // host:port of the REST API
}

// Start runs `mtlrun serve seed=SeedModel` with the gRPC API on a free
// loopback port and stops it when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	args := append([]string{"serve", "seed=" + SeedModel, "--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-level", "info"}, extra...)
	cmd := exec.Command(Binary(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	srv := &Server{}
	// the JSON log on stderr names the gRPC address before the server
	// prints its REST address on stdout
	logs := bufio.NewReader(stderr)
	for srv.GRPCAddr == "" {
		line, err := logs.ReadString('\n')
		if err != nil {
			t.Fatalf("interop: mtlrun serve exited before listening on gRPC: %v", err)
		}
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "grpc listening" {
			srv.GRPCAddr = rec.Addr
		}
	}
	go io.Copy(io.Discard, logs)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("interop: mtlrun serve printed no address: %v", err)
	}
	srv.HTTPAddr = strings.TrimPrefix(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]), "http://")
	go io.Copy(io.Discard, stdout)
	return srv
}

// Input is a deterministic FP32 input of the given shape.
func Input(shape []int, seed int) ([]float32, []int64) {
	n := 1
	dims := make([]int64, len(shape))
	for i, d := range shape {
		n *= d
		dims[i] = int64(d)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i*7+seed))) * 0.8
	}
	return v, dims
}

// Reference runs SeedModel on x through a plain runtime.Session.
func Reference(t testing.TB, x []float32, shape []int) map[string]*tensor.Tensor {
	t.Helper()
	m, err := importer.Load(SeedModel)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Run(map[string]*tensor.Tensor{"input": tensor.From(shape, append([]float32(nil), x...))})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckOutput fails t unless an output the server returned (shape and FP32
// values) equals the reference runtime.Session's. Both run the same kernels
// on one thread, so the values are expected to agree exactly; 1e-6 leaves
// room only for summation order.
func CheckOutput(t testing.TB, ref map[string]*tensor.Tensor, name string, shape []int64, got []float32) {
	t.Helper()
	want, ok := ref[name]
	if !ok {
		t.Errorf("output %q: not an output of the model", name)
		return
	}
	if len(shape) != len(want.Shape) {
		t.Errorf("output %q: shape %v, want %v", name, shape, want.Shape)
		return
	}
	for i, d := range shape {
		if int(d) != want.Shape[i] {
			t.Errorf("output %q: shape %v, want %v", name, shape, want.Shape)
			return
		}
	}
	w := want.Float32s()
	if len(got) != len(w) {
		t.Errorf("output %q: %d values, want %d", name, len(got), len(w))
		return
	}
	worst := 0.0
	for i := range w {
		worst = max(worst, math.Abs(float64(got[i])-float64(w[i])))
	}
	if worst > 1e-6 {
		t.Errorf("output %q: max |server - runtime.Session| = %g", name, worst)
	}
}

// Float32s decodes little-endian FP32 raw contents.
func Float32s(raw []byte) []float32 {
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// Raw encodes FP32 values as little-endian raw contents.
func Raw(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
