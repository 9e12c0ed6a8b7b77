// Package testset runs models against reference data stored in the ONNX
// model-zoo layout: DIR/model.onnx with DIR/test_data_set_*/input_N.pb and
// output_N.pb, matched to the graph's inputs and outputs by position. It is
// the engine behind `mtlrun test` and the conformance suite.
package testset

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	_ "github.com/mtlrun/mtlrun/ops/all" // the full op set
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Tolerance is the comparison rule: |got − want| ≤ ATol + RTol·|want|.
type Tolerance struct{ RTol, ATol float64 }

// Default is the tolerance of `mtlrun test`.
var Default = Tolerance{RTol: 1e-3, ATol: 1e-5}

// Result is the outcome of one test set.
type Result struct {
	Dir       string  `json:"dir"` // the test_data_set folder (or the model folder on load errors)
	Pass      bool    `json:"pass"`
	MaxAbsErr float64 `json:"max_abs_err"`
	Output    string  `json:"output,omitempty"` // the failing output's name
	Reason    string  `json:"reason,omitempty"` // error, shape, dtype or tolerance
	Detail    string  `json:"detail,omitempty"`
}

// RunDir loads DIR/model.onnx and runs every DIR/test_data_set_*; a load or
// session error yields one failing Result for the whole folder.
func RunDir(dir string, tol Tolerance) []Result {
	fail := func(reason string, err error) []Result {
		return []Result{{Dir: dir, Reason: reason, Detail: err.Error()}}
	}
	m, err := importer.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return fail("error", err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		return fail("error", err)
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	sort.Slice(sets, func(i, j int) bool { return setIndex(sets[i]) < setIndex(sets[j]) })
	if len(sets) == 0 {
		return fail("error", errors.New("no test_data_set_* folders"))
	}
	var out []Result
	for _, s := range sets {
		out = append(out, RunSet(sess, s, tol))
	}
	return out
}

func setIndex(path string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(path), "test_data_set_"))
	return n
}

// ReadIndexed reads prefix_0.pb, prefix_1.pb, ... from dir in order.
func ReadIndexed(dir, prefix string) ([]*tensor.Tensor, error) { return readIndexed(dir, prefix, nil) }

// readIndexed is ReadIndexed with the kind of each value ("tensor",
// "sequence", "optional"; tensor past the list).
func readIndexed(dir, prefix string, infos []graph.ValueInfo) ([]*tensor.Tensor, error) {
	var ts []*tensor.Tensor
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i))
		if _, err := os.Stat(p); err != nil {
			break
		}
		kind := "tensor"
		if i < len(infos) {
			kind = infos[i].Kind
		}
		t, err := importer.ReadValueFile(p, kind)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// RunSet runs one test_data_set folder through an open session.
func RunSet(sess *runtime.Session, dir string, tol Tolerance) Result {
	r := Result{Dir: dir}
	g := sess.Model().Graph
	ins, err := readIndexed(dir, "input", g.FeedInputs())
	if err != nil {
		r.Reason, r.Detail = "error", err.Error()
		return r
	}
	wants, err := readIndexed(dir, "output", g.Outputs)
	if err != nil {
		r.Reason, r.Detail = "error", err.Error()
		return r
	}
	feeds := g.FeedInputs()
	if len(ins) > len(feeds) {
		r.Reason, r.Detail = "error", fmt.Sprintf("%d input files but the model has %d inputs", len(ins), len(feeds))
		return r
	}
	if len(wants) > len(g.Outputs) {
		r.Reason, r.Detail = "error", fmt.Sprintf("%d output files but the model has %d outputs", len(wants), len(g.Outputs))
		return r
	}
	inputs := map[string]*tensor.Tensor{}
	for i, t := range ins {
		inputs[feeds[i].Name] = asBFloat16(t, feeds[i].DType)
	}
	names := make([]string, len(wants))
	for i := range wants {
		names[i] = g.Outputs[i].Name
	}
	got, err := sess.Run(inputs, names...)
	if err != nil {
		r.Reason, r.Detail = "error", err.Error()
		return r
	}
	r.Pass = true
	for i, want := range wants {
		if g := got[names[i]]; g != nil {
			want = asBFloat16(want, g.DType)
		}
		c := Compare(got[names[i]], want, tol)
		r.MaxAbsErr = math.Max(r.MaxAbsErr, c.MaxAbsErr)
		if !c.Pass && r.Pass {
			r.Pass = false
			r.Output, r.Reason, r.Detail = names[i], c.Reason, c.Detail
		}
	}
	return r
}

// Comparison is the outcome of comparing one tensor with its reference.
type Comparison struct {
	Pass      bool
	MaxAbsErr float64
	MaxRelErr float64
	Reason    string // shape, dtype or tolerance
	Detail    string
}

// Compare checks got against want element by element. NaN matches NaN and
// infinities must match exactly.
func Compare(got, want *tensor.Tensor, tol Tolerance) Comparison {
	if got != nil && want != nil && (got.DType.IsBoxed() || want.DType.IsBoxed()) {
		return compareBoxed(got, want, tol)
	}
	c := Comparison{}
	if got == nil {
		return Comparison{Reason: "error", Detail: "no value"}
	}
	if got.DType != want.DType {
		return Comparison{Reason: "dtype", Detail: fmt.Sprintf("got %v, want %v", got.DType, want.DType)}
	}
	if !tensor.SameShape(got.Shape, want.Shape) {
		return Comparison{Reason: "shape", Detail: fmt.Sprintf("got %v, want %v", got.Shape, want.Shape)}
	}
	if got.DType == tensor.String {
		g, w := tensor.Data[string](got), tensor.Data[string](want)
		for i := range w {
			if g[i] != w[i] {
				return Comparison{Reason: "tolerance", Detail: fmt.Sprintf("element %d: got %q, want %q", i, g[i], w[i])}
			}
		}
		return Comparison{Pass: true}
	}
	g, err1 := tensor.AsFloat64(got)
	w, err2 := tensor.AsFloat64(want)
	if err := errors.Join(err1, err2); err != nil {
		return Comparison{Reason: "error", Detail: err.Error()}
	}
	c.Pass = true
	worst := -1
	for i := range w {
		a, b := g[i], w[i]
		if math.IsNaN(a) && math.IsNaN(b) || a == b {
			continue
		}
		d := math.Abs(a - b)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			d = math.Inf(1)
		}
		if d > c.MaxAbsErr {
			c.MaxAbsErr = d
		}
		if b != 0 {
			c.MaxRelErr = math.Max(c.MaxRelErr, d/math.Abs(b))
		}
		if !(d <= tol.ATol+tol.RTol*math.Abs(b)) {
			if c.Pass || d > math.Abs(g[worst]-w[worst]) {
				worst = i
			}
			c.Pass = false
		}
	}
	if !c.Pass {
		c.Reason = "tolerance"
		c.Detail = fmt.Sprintf("element %d (index %v): got %g, want %g (|diff| %.3g > %.3g)", worst, unravel(worst, want.Shape), g[worst], w[worst], math.Abs(g[worst]-w[worst]), tol.ATol+tol.RTol*math.Abs(w[worst]))
	}
	return c
}

func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] > 0 {
			idx[k] = i % shape[k]
			i /= shape[k]
		}
	}
	return idx
}

// asBFloat16 reinterprets a uint16 tensor as bfloat16 bits when bfloat16 is
// what the model has: numpy has no bfloat16, so the ONNX test generator
// stores such tensors as UINT16 with the same bit patterns.
func asBFloat16(t *tensor.Tensor, want tensor.DType) *tensor.Tensor {
	if want != tensor.BFloat16 || t.DType != tensor.Uint16 {
		return t
	}
	u := tensor.Data[uint16](t)
	b := make([]tensor.BFloat16Bits, len(u))
	for i, v := range u {
		b[i] = tensor.BFloat16Bits(v)
	}
	return &tensor.Tensor{DType: tensor.BFloat16, Shape: t.Shape, Data: b}
}

// compareBoxed compares sequence or optional values element by element.
func compareBoxed(got, want *tensor.Tensor, tol Tolerance) Comparison {
	if got.DType != want.DType {
		return Comparison{Reason: "dtype", Detail: fmt.Sprintf("got %v, want %v", got.DType, want.DType)}
	}
	g, w := got.Elements(), want.Elements()
	if len(g) != len(w) {
		return Comparison{Reason: "shape", Detail: fmt.Sprintf("%v of %d elements, want %d", got.DType, len(g), len(w))}
	}
	c := Comparison{Pass: true}
	for i := range g {
		e := Compare(g[i], w[i], tol)
		c.MaxAbsErr, c.MaxRelErr = math.Max(c.MaxAbsErr, e.MaxAbsErr), math.Max(c.MaxRelErr, e.MaxRelErr)
		if !e.Pass {
			e.Detail = fmt.Sprintf("%v element %d: %s", got.DType, i, e.Detail)
			return e
		}
	}
	return c
}
