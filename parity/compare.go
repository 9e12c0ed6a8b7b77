package parity

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mtlrun/mtlrun/tensor"
)

// Kind says how an output's values turn into decisions.
type Kind int

// Output kinds. Softmax and LogSoftmax outputs decide by the argmax of each
// row (the last axis); Sigmoid outputs decide each element by value >= 0.5.
const (
	KindNone Kind = iota
	KindSoftmax
	KindLogSoftmax
	KindSigmoid
)

func (k Kind) String() string {
	switch k {
	case KindSoftmax:
		return "softmax"
	case KindLogSoftmax:
		return "log-softmax"
	case KindSigmoid:
		return "sigmoid"
	}
	return "none"
}

// Criteria say what Compare accepts.
type Criteria struct {
	// An element passes when |got-want| <= ATol + RTol*|want|.
	RTol, ATol float64
	// Kinds marks classification-like outputs by name.
	Kinds map[string]Kind
	// Order lists the outputs to compare, in report order; empty means every
	// output of want, sorted by name.
	Order []string
}

// OutputReport is the comparison of one output.
type OutputReport struct {
	Name     string `json:"name"`
	DType    string `json:"dtype"`
	Shape    []int  `json:"shape"`
	Elements int    `json:"elements"`
	// MaxAbsErr is the largest |got-want|. MaxRelErr is the largest
	// |got-want|/|want| over elements whose |want| exceeds ATol (smaller
	// values are judged by the absolute error alone).
	MaxAbsErr float64 `json:"max_abs_err"`
	MaxRelErr float64 `json:"max_rel_err"`
	// OutOfTolerance counts elements outside ATol + RTol*|want|; Worst is the
	// flat index of the element furthest outside (or with the largest error),
	// with both runtimes' values there.
	OutOfTolerance int     `json:"out_of_tolerance"`
	Worst          int     `json:"worst_index"`
	WorstGot       float64 `json:"worst_mtlrun"`
	WorstWant      float64 `json:"worst_onnxruntime"`
	// Kind, Decisions and Agree describe classification-like outputs: the
	// number of rows (argmax) or elements (sigmoid threshold) and how many
	// decisions agree.
	Kind      string `json:"kind,omitempty"`
	Decisions int    `json:"decisions,omitempty"`
	Agree     int    `json:"agree,omitempty"`
	Pass      bool   `json:"pass"`
	// Reason explains a failure that is not a plain tolerance excess (shape
	// or dtype mismatch, missing output, NaN/Inf disagreement).
	Reason string `json:"reason,omitempty"`
}

// DecisionsAgree reports whether every classification decision agrees (true
// for outputs that are not classification-like).
func (o OutputReport) DecisionsAgree() bool { return o.Agree == o.Decisions }

// Report is a whole parity check.
type Report struct {
	Model   string           `json:"model,omitempty"`
	Inputs  map[string][]int `json:"inputs,omitempty"`
	RTol    float64          `json:"rtol"`
	ATol    float64          `json:"atol"`
	Outputs []OutputReport   `json:"outputs"`
	Pass    bool             `json:"pass"`
	// MtlrunMillis and ORTMillis time one run of each (informational).
	MtlrunMillis float64 `json:"mtlrun_ms,omitempty"`
	ORTMillis    float64 `json:"onnxruntime_ms,omitempty"`
}

// Failed lists the outputs that failed.
func (r *Report) Failed() []OutputReport {
	var out []OutputReport
	for _, o := range r.Outputs {
		if !o.Pass {
			out = append(out, o)
		}
	}
	return out
}

// Compare checks got (mtlrun) against want (onnxruntime) output by output.
func Compare(got, want map[string]*tensor.Tensor, c Criteria) *Report {
	names := c.Order
	if len(names) == 0 {
		for k := range want {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	r := &Report{RTol: c.RTol, ATol: c.ATol, Pass: true}
	for _, name := range names {
		o := compareOne(name, got[name], want[name], c)
		if !o.Pass {
			r.Pass = false
		}
		r.Outputs = append(r.Outputs, o)
	}
	return r
}

func compareOne(name string, g, w *tensor.Tensor, c Criteria) OutputReport {
	o := OutputReport{Name: name, Worst: -1}
	switch {
	case w == nil && g == nil:
		o.Reason = "neither runtime produced this output"
		return o
	case w == nil:
		o.Reason = "onnxruntime produced no value"
		return o
	case g == nil:
		o.Reason = "mtlrun produced no value"
		o.DType, o.Shape = w.DType.String(), w.Shape
		return o
	}
	o.DType, o.Shape, o.Elements = w.DType.String(), append([]int{}, w.Shape...), w.Len()
	if g.DType != w.DType {
		o.Reason = fmt.Sprintf("dtype: mtlrun %v, onnxruntime %v", g.DType, w.DType)
		return o
	}
	if !tensor.SameShape(g.Shape, w.Shape) {
		o.Reason = fmt.Sprintf("shape: mtlrun %v, onnxruntime %v", g.Shape, w.Shape)
		return o
	}
	if w.DType == tensor.String {
		gs, ws := tensor.Data[string](g), tensor.Data[string](w)
		for i := range ws {
			if gs[i] != ws[i] {
				o.OutOfTolerance++
				if o.Worst < 0 {
					o.Worst = i
					o.Reason = fmt.Sprintf("string %d: mtlrun %q, onnxruntime %q", i, gs[i], ws[i])
				}
			}
		}
		o.Pass = o.OutOfTolerance == 0
		return o
	}
	gv, err1 := tensor.AsFloat64(g)
	wv, err2 := tensor.AsFloat64(w)
	if err1 != nil || err2 != nil {
		o.Reason = fmt.Sprintf("cannot compare %v values", w.DType)
		return o
	}
	exact := !w.DType.IsFloat()
	var gi, wi []int64
	if exact {
		gi, _ = tensor.AsInt64(g)
		wi, _ = tensor.AsInt64(w)
	}
	worstExcess := math.Inf(-1)
	for i := range wv {
		a, b := gv[i], wv[i]
		var diff float64
		ok := true
		switch {
		case exact:
			if gi != nil && wi != nil && gi[i] != wi[i] {
				ok = false
			}
			diff = math.Abs(a - b)
		case math.IsNaN(a) || math.IsNaN(b):
			ok = math.IsNaN(a) && math.IsNaN(b)
			if !ok && o.Reason == "" {
				o.Reason = fmt.Sprintf("NaN at element %d: mtlrun %v, onnxruntime %v", i, a, b)
			}
		case math.IsInf(a, 0) || math.IsInf(b, 0):
			ok = a == b
			if !ok && o.Reason == "" {
				o.Reason = fmt.Sprintf("Inf at element %d: mtlrun %v, onnxruntime %v", i, a, b)
			}
		default:
			diff = math.Abs(a - b)
			ok = diff <= c.ATol+c.RTol*math.Abs(b)
			if math.Abs(b) > c.ATol {
				o.MaxRelErr = math.Max(o.MaxRelErr, diff/math.Abs(b))
			}
		}
		o.MaxAbsErr = math.Max(o.MaxAbsErr, diff)
		excess := diff - (c.ATol + c.RTol*math.Abs(b))
		if !ok {
			o.OutOfTolerance++
			excess = math.Inf(1)
			if !math.IsNaN(diff) && !math.IsInf(diff, 0) {
				excess = diff - (c.ATol + c.RTol*math.Abs(b))
			}
		}
		if excess > worstExcess || o.Worst < 0 {
			if !(math.IsNaN(excess)) {
				worstExcess = excess
				o.Worst, o.WorstGot, o.WorstWant = i, finite(a), finite(b)
			}
		}
	}
	o.Pass = o.OutOfTolerance == 0
	if k := c.Kinds[name]; k != KindNone && len(wv) > 0 {
		o.Kind = k.String()
		o.Decisions, o.Agree = decisions(k, w.Shape, gv, wv)
	}
	return o
}

// finite keeps JSON encodable: NaN and ±Inf become 0 (the Reason says which).
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// decisions counts classification decisions and agreements: argmax over the
// last axis per row for (log-)softmax, value >= 0.5 per element for sigmoid.
func decisions(k Kind, shape []int, g, w []float64) (n, agree int) {
	if k == KindSigmoid {
		for i := range w {
			n++
			if (g[i] >= 0.5) == (w[i] >= 0.5) {
				agree++
			}
		}
		return n, agree
	}
	cols := 1
	if len(shape) > 0 {
		cols = shape[len(shape)-1]
	}
	if cols == 0 {
		return 0, 0
	}
	for r := 0; r+cols <= len(w); r += cols {
		n++
		if argmax(g[r:r+cols]) == argmax(w[r:r+cols]) {
			agree++
		}
	}
	return n, agree
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] || (math.IsNaN(v) && !math.IsNaN(x[best])) {
			best = i
		}
	}
	return best
}

// JSON renders the report as indented JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// String renders the report as a text table.
func (r *Report) String() string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// WriteText writes the aligned text table: one row per output with its
// largest absolute and relative error, the count of elements out of
// tolerance, classification agreement and the verdict.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "output\tdtype\tshape\tmax abs err\tmax rel err\tout of tol\tdecisions\tresult")
	for _, o := range r.Outputs {
		dec := "-"
		if o.Kind != "" {
			what := "argmax"
			if o.Kind == KindSigmoid.String() {
				what = ">=0.5"
			}
			dec = fmt.Sprintf("%s %d/%d", what, o.Agree, o.Decisions)
		}
		res := "ok"
		if !o.Pass {
			res = "FAIL"
		}
		shape := "-"
		if o.Shape != nil {
			shape = tensor.ShapeString(o.Shape)
		}
		dtype := o.DType
		if dtype == "" {
			dtype = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3g\t%.3g\t%d/%d\t%s\t%s\n", o.Name, dtype, shape, o.MaxAbsErr, o.MaxRelErr, o.OutOfTolerance, o.Elements, dec, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Outputs {
		switch {
		case o.Reason != "":
			fmt.Fprintf(w, "  %s: %s\n", o.Name, o.Reason)
		case !o.Pass && o.Worst >= 0:
			fmt.Fprintf(w, "  %s: worst element %d: mtlrun %.9g, onnxruntime %.9g (|diff| %.3g > %.3g)\n", o.Name, o.Worst,
				o.WorstGot, o.WorstWant, math.Abs(o.WorstGot-o.WorstWant), r.ATol+r.RTol*math.Abs(o.WorstWant))
		}
		if o.Kind != "" && o.Agree != o.Decisions {
			fmt.Fprintf(w, "  %s: %d of %d %s decisions differ\n", o.Name, o.Decisions-o.Agree, o.Decisions, o.Kind)
		}
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "%s: %d output(s) within rtol %g, atol %g: %d of %d\n", verdict, len(r.Outputs), r.RTol, r.ATol, len(r.Outputs)-len(r.Failed()), len(r.Outputs))
	return err
}
