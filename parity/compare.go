package parity

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// OutputReport compares one output.
type OutputReport struct {
	Name      string  `json:"name"`
	Shape     []int   `json:"shape"`
	MaxAbsErr float64 `json:"max_abs_err"`
	MaxRelErr float64 `json:"max_rel_err"`
	Pass      bool    `json:"pass"`
	Reason    string  `json:"reason,omitempty"`
	// Kind is "softmax", "log_softmax" or "sigmoid" for classification-like
	// outputs; DecisionsAgree then says whether the argmax (or the 0.5
	// threshold) agrees on every row.
	Kind           string `json:"kind,omitempty"`
	DecisionsAgree *bool  `json:"decisions_agree,omitempty"`
}

// Report is a whole comparison.
type Report struct {
	Model   string         `json:"model"`
	Inputs  []string       `json:"inputs"`
	RTol    float64        `json:"rtol"`
	ATol    float64        `json:"atol"`
	Outputs []OutputReport `json:"outputs"`
	Pass    bool           `json:"pass"`
}

// Compare checks mtlrun's outputs (got) against onnxruntime's (want):
// |got − want| ≤ atol + rtol·|want| element-wise. kinds maps outputs to a
// classifier kind (see ClassifierKind).
func Compare(got, want map[string]*tensor.Tensor, names []string, kinds map[string]string, rtol, atol float64) []OutputReport {
	var out []OutputReport
	for _, name := range names {
		r := OutputReport{Name: name, Kind: kinds[name], Pass: true}
		g, w := got[name], want[name]
		switch {
		case g == nil || w == nil:
			r.Pass, r.Reason = false, "missing"
		case g.DType != w.DType:
			r.Pass, r.Reason = false, fmt.Sprintf("dtype %v vs %v", g.DType, w.DType)
		case !tensor.SameShape(g.Shape, w.Shape):
			r.Pass, r.Reason = false, fmt.Sprintf("shape %v vs %v", g.Shape, w.Shape)
		}
		if !r.Pass {
			out = append(out, r)
			continue
		}
		r.Shape = g.Shape
		gv, err1 := tensor.AsFloat64(g)
		wv, err2 := tensor.AsFloat64(w)
		if err1 != nil || err2 != nil {
			r.Pass, r.Reason = false, "not numeric"
			out = append(out, r)
			continue
		}
		for i := range wv {
			a, b := gv[i], wv[i]
			if a == b || math.IsNaN(a) && math.IsNaN(b) {
				continue
			}
			d := math.Abs(a - b)
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			r.MaxAbsErr = math.Max(r.MaxAbsErr, d)
			if b != 0 {
				r.MaxRelErr = math.Max(r.MaxRelErr, d/math.Abs(b))
			}
			if !(d <= atol+rtol*math.Abs(b)) {
				r.Pass = false
			}
		}
		if !r.Pass {
			r.Reason = "tolerance"
		}
		if r.Kind != "" && g.Rank() >= 1 {
			agree := decisionsAgree(r.Kind, gv, wv, g.Shape[g.Rank()-1])
			r.DecisionsAgree = &agree
		}
		out = append(out, r)
	}
	return out
}

func decisionsAgree(kind string, g, w []float64, width int) bool {
	if width < 1 {
		return true
	}
	if kind == "sigmoid" || width == 1 {
		for i := range g {
			if (g[i] >= 0.5) != (w[i] >= 0.5) {
				return false
			}
		}
		return true
	}
	for r := 0; r+width <= len(g); r += width {
		if argmax(g[r:r+width]) != argmax(w[r:r+width]) {
			return false
		}
	}
	return true
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// ClassifierKind says whether an output comes from a Softmax, LogSoftmax or
// Sigmoid, looking back through shape-only ops; "" otherwise.
func ClassifierKind(g *runtime.Graph, output string) string {
	producers := g.Producers()
	name := output
	for i := 0; i < 16; i++ {
		n := producers[name]
		if n == nil {
			return ""
		}
		switch n.OpType {
		case "Softmax":
			return "softmax"
		case "LogSoftmax":
			return "log_softmax"
		case "Sigmoid":
			return "sigmoid"
		case "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose":
			if len(n.Inputs) == 0 {
				return ""
			}
			name = n.Inputs[0]
		default:
			return ""
		}
	}
	return ""
}

// WriteText prints the report as an aligned table.
func (r Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "parity: %s against onnxruntime, inputs %s (rtol %g, atol %g)\n", r.Model, strings.Join(r.Inputs, ", "), r.RTol, r.ATol)
	fmt.Fprintf(w, "%-24s %-14s %12s %12s %-10s %s\n", "output", "shape", "max |abs|", "max rel", "decisions", "result")
	for _, o := range r.Outputs {
		dec := "-"
		if o.DecisionsAgree != nil {
			dec = o.Kind + ":"
			if *o.DecisionsAgree {
				dec += "same"
			} else {
				dec += "DIFFER"
			}
		}
		res := "ok"
		if !o.Pass {
			res = "FAIL " + o.Reason
		}
		fmt.Fprintf(w, "%-24s %-14s %12.3g %12.3g %-10s %s\n", o.Name, tensor.ShapeString(o.Shape), o.MaxAbsErr, o.MaxRelErr, dec, res)
	}
	if r.Pass {
		fmt.Fprintln(w, "all outputs agree with onnxruntime")
	} else {
		fmt.Fprintln(w, "some outputs differ from onnxruntime")
	}
}

// WriteJSON prints the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
