package parity

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// RunError says which runtime failed to run the inputs.
type RunError struct {
	Runtime string // "mtlrun" or "onnxruntime"
	Err     error
}

func (e *RunError) Error() string { return e.Runtime + " failed: " + e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

// Checker runs one model in mtlrun and in onnxruntime, for any number of
// input sets.
type Checker struct {
	Path    string
	Model   *graph.Model
	Outputs []string        // compared outputs, in graph order
	Kinds   map[string]Kind // classification-like outputs
	sess    *runtime.Session
	ort     *ORT
}

// NewChecker loads the model file (m may be nil: it is then imported from
// path) into both runtimes. It fails with ErrLibraryMissing (wrapped, with
// install instructions) when onnxruntime cannot be found.
func NewChecker(path string, m *graph.Model, opts Options) (*Checker, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if m == nil {
		var err error
		if m, err = importer.Load(path); err != nil {
			return nil, err
		}
	}
	if err := ortHazard(m.Graph); err != nil {
		return nil, &RunError{"onnxruntime", err}
	}
	sess, err := runtime.NewSession(m, runtime.Options{Threads: opts.Threads})
	if err != nil {
		return nil, &RunError{"mtlrun", err}
	}
	if os.Getenv("MTLRUN_PARITY_IN_PROCESS") != "1" {
		opts.Isolate = true
	}
	o, err := Open(path, opts)
	if err != nil {
		return nil, &RunError{"onnxruntime", err}
	}
	c := &Checker{Path: path, Model: m, Kinds: ClassifierKinds(m), sess: sess, ort: o}
	for _, v := range m.Graph.Outputs {
		c.Outputs = append(c.Outputs, v.Name)
	}
	return c, nil
}

// Close releases onnxruntime's sessions.
func (c *Checker) Close() error { return c.ort.Close() }

// Check runs both runtimes on the inputs and compares every output. A
// runtime that cannot run the inputs yields a *RunError naming it; when
// both refuse, the error names onnxruntime (inputs the reference refuses
// are not a fair test of mtlrun).
func (c *Checker) Check(inputs map[string]*tensor.Tensor, rtol, atol float64) (*Report, error) {
	start := time.Now()
	got, err := c.sess.Run(inputs, c.Outputs...)
	ourTime := time.Since(start)
	if err != nil {
		// inputs onnxruntime refuses too are not a fair test of mtlrun
		if _, ortErr := c.ort.Run(inputs, c.Outputs); ortErr != nil {
			return nil, &RunError{"onnxruntime", ortErr}
		}
		return nil, &RunError{"mtlrun", err}
	}
	shapes := make(map[string][]int, len(got))
	for k, t := range got {
		shapes[k] = t.Shape
	}
	start = time.Now()
	want, err := c.ort.RunWithShapes(inputs, c.Outputs, shapes)
	ortTime := time.Since(start)
	if err != nil {
		return nil, &RunError{"onnxruntime", err}
	}
	r := Compare(got, want, Criteria{RTol: rtol, ATol: atol, Kinds: c.Kinds, Order: c.Outputs})
	r.Model = c.Path
	r.Inputs = map[string][]int{}
	for k, t := range inputs {
		r.Inputs[k] = t.Shape
	}
	r.MtlrunMillis = float64(ourTime.Microseconds()) / 1e3
	r.ORTMillis = float64(ortTime.Microseconds()) / 1e3
	return r, nil
}

// Check is the one-shot form: load path into both runtimes, run them on the
// inputs, compare. m may be nil.
func Check(path string, m *graph.Model, inputs map[string]*tensor.Tensor, rtol, atol float64) (*Report, error) {
	c, err := NewChecker(path, m, Options{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Check(inputs, rtol, atol)
}

// InputsString describes the inputs of a report, e.g. "input[17 64 1]".
func (r *Report) InputsString() string {
	s := ""
	for _, name := range sortedKeys(r.Inputs) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s%s", name, tensor.ShapeString(r.Inputs[name]))
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrORTWouldCrash marks models that onnxruntime 1.24 is known to crash on
// (abort the whole process) rather than refuse; parity declines to run them.
var ErrORTWouldCrash = errors.New("onnxruntime 1.24 would abort the process on this model")

// ortHazard finds graph constructs that make onnxruntime abort instead of
// returning an error: an RNN (the plain one; GRU and LSTM are fine) whose
// activation_alpha or activation_beta list is shorter than its activations
// list. That is valid ONNX (the values go, in order, to the activations that
// take them), but onnxruntime's RNN kernel indexes them by activation
// position and fails an assertion that kills the process.
func ortHazard(g *graph.Graph) error {
	for _, n := range g.Nodes {
		if n.OpType == "RNN" && (n.Domain == "" || n.Domain == "ai.onnx") {
			acts := len(n.Attrs.Strings("activations"))
			for _, a := range []string{"activation_alpha", "activation_beta"} {
				if k := len(n.Attrs.Floats(a)); k > 0 && k < acts {
					return fmt.Errorf("%w: node %q (RNN) has %d %s value(s) for %d activations", ErrORTWouldCrash, n.Label(), k, a, acts)
				}
			}
		}
		for _, sg := range n.Subgraphs() {
			if err := ortHazard(sg.Graph); err != nil {
				return err
			}
		}
	}
	return nil
}
