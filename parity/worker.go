package parity

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mtlrun/mtlrun/tensor"
)

// onnxruntime can kill the process it runs in (SIGFPE on an integer
// division by zero, failed assertions in some kernels), so parity runs it in
// a child process: the running executable again, started with WorkerEnv=1
// and the hidden argument WorkerCommand. The child serves requests on its
// stdin/stdout as gob messages; when it dies, the parent reports an error
// naming the signal and the end of the child's stderr, and the next request
// starts a new child.

// WorkerEnv is set to "1" in the environment of an onnxruntime worker child.
const WorkerEnv = "MTLRUN_PARITY_WORKER"

// WorkerCommand is the hidden first argument of a worker child (so that
// it shows in process lists); the child is recognised by WorkerEnv.
const WorkerCommand = "__parity-ort-worker"

// workerHello is the first line a worker writes, so that the parent knows
// the executable serves the protocol (rather than, say, running a test
// binary's tests).
const workerHello = "mtlrun parity worker 1\n"

// IsWorker reports whether this process was started as a worker child.
func IsWorker() bool { return os.Getenv(WorkerEnv) == "1" }

// RunWorkerIfChild serves the worker protocol on stdin/stdout and exits when
// this process is a worker child; otherwise it returns at once. Executables
// that use isolated parity (mtlrun, and test binaries through TestMain)
// call it first thing.
func RunWorkerIfChild() {
	if !IsWorker() {
		return
	}
	if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "parity worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// wireTensor is a tensor on the worker pipe.
type wireTensor struct {
	DType   int32
	Shape   []int
	Raw     []byte
	Strings []string
}

func toWire(t *tensor.Tensor) (wireTensor, error) {
	w := wireTensor{DType: int32(t.DType), Shape: t.Shape}
	if s, ok := t.Data.([]string); ok {
		w.Strings = s
		return w, nil
	}
	raw, err := tensor.EncodeRaw(t)
	w.Raw = raw
	return w, err
}

func fromWire(w wireTensor) (*tensor.Tensor, error) {
	dt := tensor.DType(w.DType)
	if dt == tensor.String {
		return tensor.FromChecked(w.Shape, w.Strings)
	}
	n, err := tensor.NumElements(w.Shape)
	if err != nil {
		return nil, err
	}
	if len(w.Raw) != tensor.RawBytes(dt, n) {
		return nil, fmt.Errorf("parity worker: %v%v with %d bytes", dt, w.Shape, len(w.Raw))
	}
	data, err := tensor.DecodeRaw(dt, w.Raw, n)
	if err != nil {
		return nil, err
	}
	if w.Shape == nil {
		w.Shape = []int{}
	}
	return &tensor.Tensor{DType: dt, Shape: w.Shape, Data: data}, nil
}

func wireMap(ts map[string]*tensor.Tensor) (map[string]wireTensor, error) {
	out := make(map[string]wireTensor, len(ts))
	for k, t := range ts {
		w, err := toWire(t)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = w
	}
	return out, nil
}

func tensorMap(ws map[string]wireTensor) (map[string]*tensor.Tensor, error) {
	out := make(map[string]*tensor.Tensor, len(ws))
	for k, w := range ws {
		t, err := fromWire(w)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = t
	}
	return out, nil
}

type workerRequest struct {
	Op      string // "open" or "run"
	Path    string
	Opts    Options
	Inputs  map[string]wireTensor
	Outputs []string
	Shapes  map[string][]int
}

type workerResponse struct {
	Err         string
	InputNames  []string
	OutputNames []string
	Outputs     map[string]wireTensor
}

// ServeWorker answers requests from r on w until r ends: "open" loads a
// model in onnxruntime (in this process), "run" runs it.
func ServeWorker(r io.Reader, w io.Writer) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(workerHello); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	dec, enc := gob.NewDecoder(bufio.NewReader(r)), gob.NewEncoder(bw)
	var o *ORT
	defer func() {
		if o != nil {
			o.Close()
		}
	}()
	for {
		var req workerRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var resp workerResponse
		fail := func(err error) { resp.Err = err.Error() }
		switch req.Op {
		case "open":
			if o != nil {
				o.Close()
				o = nil
			}
			opts := req.Opts
			opts.Isolate = false
			var err error
			if o, err = Open(req.Path, opts); err != nil {
				fail(err)
			} else {
				resp.InputNames, resp.OutputNames = o.InputNames(), o.OutputNames()
			}
		case "run":
			if o == nil {
				fail(errors.New("parity worker: no model open"))
				break
			}
			in, err := tensorMap(req.Inputs)
			if err != nil {
				fail(err)
				break
			}
			out, err := o.RunWithShapes(in, req.Outputs, req.Shapes)
			if err != nil {
				fail(err)
				break
			}
			if resp.Outputs, err = wireMap(out); err != nil {
				fail(err)
			}
		default:
			fail(fmt.Errorf("parity worker: unknown request %q", req.Op))
		}
		if err := enc.Encode(&resp); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// WorkerTimeout bounds how long a worker child may take to start.
var WorkerTimeout = 30 * time.Second

// worker is the parent's handle on one child.
type worker struct {
	path string
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	enc    *gob.Encoder
	dec    *gob.Decoder
	stderr *tailBuffer
	done   chan error // the child's exit, once

	inputs, outputs []string
}

// tailBuffer keeps the first 8 KB and the last 2 KB written to it (the
// child's stderr: a crash report starts with its cause, a log ends with it).
type tailBuffer struct {
	mu         sync.Mutex
	head, tail []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 8192 - len(b.head); room > 0 {
		b.head = append(b.head, p[:min(room, len(p))]...)
		return len(p), nil
	}
	b.tail = append(b.tail, p...)
	if len(b.tail) > 2048 {
		b.tail = b.tail[len(b.tail)-2048:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.head) + "\n" + string(b.tail))
}

// ErrWorkerDied wraps the error of a request whose worker child died.
var ErrWorkerDied = errors.New("onnxruntime crashed")

// openWorker starts a child and opens the model in it.
func openWorker(path string, opts Options) (*worker, error) {
	if IsWorker() {
		return nil, errors.New("parity: a worker cannot start workers")
	}
	w := &worker{path: path, opts: opts}
	if err := w.start(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *worker) start() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("parity: finding the executable to run onnxruntime in: %w", err)
	}
	cmd := exec.Command(exe, WorkerCommand)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	w.stderr = &tailBuffer{}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("parity: starting the onnxruntime worker: %w", err)
	}
	w.done = make(chan error, 1)
	go func() { w.done <- cmd.Wait() }()
	br := bufio.NewReader(stdout)
	hello := make(chan error, 1)
	go func() {
		line, err := br.ReadString('\n')
		if err == nil && line != workerHello {
			err = fmt.Errorf("unexpected greeting %q", line)
		}
		hello <- err
	}()
	select {
	case err = <-hello:
	case <-time.After(WorkerTimeout):
		err = fmt.Errorf("no greeting within %v", WorkerTimeout)
	}
	if err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("parity: %s does not serve as an onnxruntime worker (does it call parity.RunWorkerIfChild?): %w", exe, err)
	}
	w.cmd, w.stdin = cmd, stdin
	w.enc, w.dec = gob.NewEncoder(stdin), gob.NewDecoder(br)
	resp, err := w.roundTrip(&workerRequest{Op: "open", Path: w.path, Opts: w.opts})
	if err != nil {
		return err
	}
	w.inputs, w.outputs = resp.InputNames, resp.OutputNames
	return nil
}

// roundTrip sends one request; a child that dies on it becomes an error
// wrapping ErrWorkerDied, and the handle is reset so that the next request
// starts a new child.
func (w *worker) roundTrip(req *workerRequest) (*workerResponse, error) {
	if w.cmd == nil {
		if err := w.start(); err != nil {
			return nil, err
		}
	}
	var resp workerResponse
	err := w.enc.Encode(req)
	if err == nil {
		err = w.dec.Decode(&resp)
	}
	if err != nil {
		w.stdin.Close()
		var exit error
		select {
		case exit = <-w.done:
		case <-time.After(5 * time.Second):
			w.cmd.Process.Kill()
			exit = <-w.done
		}
		w.cmd = nil
		msg := fmt.Sprintf("%v", exit)
		if why := crashLines(w.stderr.String()); why != "" {
			msg += ": " + why
		}
		return nil, fmt.Errorf("parity: %w while running %s (worker %s)", ErrWorkerDied, w.path, msg)
	}
	if resp.Err != "" {
		return nil, errors.New(resp.Err)
	}
	return &resp, nil
}

// crashLines picks what explains a crash from a child's stderr: the Go
// runtime's signal and fatal-error lines, C++ exception messages, else the
// last line.
func crashLines(s string) string {
	var keep []string
	lines := strings.Split(s, "\n")
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "SIG") || strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") ||
			strings.Contains(l, "terminate called") || strings.Contains(l, "what():") || strings.Contains(l, "Assertion") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 && len(lines) > 0 {
		keep = lines[len(lines)-1:]
	}
	if len(keep) > 3 {
		keep = keep[:3]
	}
	return strings.Join(keep, " | ")
}

func (w *worker) run(inputs map[string]*tensor.Tensor, outputs []string, shapes map[string][]int) (map[string]*tensor.Tensor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, err := wireMap(inputs)
	if err != nil {
		return nil, fmt.Errorf("parity: input %w", err)
	}
	resp, err := w.roundTrip(&workerRequest{Op: "run", Inputs: in, Outputs: outputs, Shapes: shapes})
	if err != nil {
		return nil, err
	}
	return tensorMap(resp.Outputs)
}

func (w *worker) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return nil
	}
	w.stdin.Close()
	var err error
	select {
	case err = <-w.done:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		err = <-w.done
	}
	w.cmd = nil
	if err != nil {
		var b bytes.Buffer
		fmt.Fprintf(&b, "parity: onnxruntime worker: %v", err)
		return errors.New(b.String())
	}
	return nil
}
