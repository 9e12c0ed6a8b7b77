package train

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// DataError is data that cannot be trained on: Array names the array, Row
// (when one row is at fault) its file position as Dataset.RowName gives it.
type DataError struct {
	Array string
	Row   string
	Msg   string
}

func (e *DataError) Error() string {
	s := "train: array " + fmt.Sprintf("%q", e.Array)
	if e.Row != "" {
		s += " at " + e.Row
	}
	return s + ": " + e.Msg
}

// CheckData checks a data set against the model and recipe before any step
// is taken: every model input and task target is present, shapes and types
// agree with the model's declared inputs, inputs are finite (targets may
// hold NaN: a missing label), sparse labels are whole numbers within the
// class count, and there is at least one row. It returns the data set
// restricted to the arrays in use and a note for each array it ignores.
// role ("training", "validation") goes into the messages.
func (t *Trainer) CheckData(d *Dataset, role string) (*Dataset, []string, error) {
	if d == nil {
		return nil, nil, fmt.Errorf("train: no %s data", role)
	}
	var need []string
	inputs := t.model.Graph.FeedInputs()
	for _, v := range inputs {
		if _, ok := d.Arrays[v.Name]; !ok {
			return nil, nil, fmt.Errorf("train: the %s data has no array for model input %q (arrays: %s)", role, v.Name, strings.Join(d.Names(), ", "))
		}
		need = append(need, v.Name)
	}
	for _, task := range t.tasks {
		if _, ok := d.Arrays[task]; !ok {
			return nil, nil, fmt.Errorf("train: the %s data has no target array for task %q (arrays: %s)", role, task, strings.Join(d.Names(), ", "))
		}
		need = append(need, task)
		if _, ok := d.Arrays[SampleWeightPrefix+task]; ok {
			need = append(need, SampleWeightPrefix+task)
		}
	}
	sel, ignored, err := d.Select(need)
	if err != nil {
		return nil, nil, fmt.Errorf("train: %s data: %w", role, err)
	}
	var notes []string
	for _, n := range ignored {
		notes = append(notes, fmt.Sprintf("ignoring array %q in the %s data: it is neither a model input nor a task with a loss", n, role))
	}
	if sel.Rows == 0 {
		return nil, notes, fmt.Errorf("train: the %s data has no rows", role)
	}
	for _, v := range inputs {
		if err := checkInput(sel, v); err != nil {
			return nil, notes, err
		}
	}
	outShape := map[string]graph.ValueInfo{}
	for _, o := range t.model.Graph.Outputs {
		outShape[o.Name] = o
	}
	// a forward pass over the first rows finds what declared shapes cannot
	// (symbolic dimensions, the width of each prediction)
	probe := sel.Take(firstRows(min(sel.Rows, 2)))
	preds, err := t.dryRun(probe)
	if err != nil {
		return nil, notes, fmt.Errorf("train: the model cannot run on the first rows of the %s data: %w", role, err)
	}
	for i, task := range t.tasks {
		if err := checkTarget(sel, task, t.cfg.Losses[task], outShape[task], preds[i]); err != nil {
			return nil, notes, err
		}
		if _, err := TaskLoss(t.cfg.Losses[task], preds[i], probe.Arrays[task]); err != nil {
			var re *rowError
			if errors.As(err, &re) {
				return nil, notes, &DataError{Array: task, Row: sel.RowName(re.row), Msg: re.msg}
			}
			return nil, notes, &DataError{Array: task, Msg: fmt.Sprintf("target for loss %s: %v", t.cfg.Losses[task], err)}
		}
		// sample and class weights (all rows: a bad weight deep in the data
		// would otherwise stop the run mid-epoch)
		if _, err := RowWeights(t.cfg.Losses[task], sel.Arrays[task], sel.Arrays[SampleWeightPrefix+task], t.cfg.ClassWeights[task]); err != nil {
			return nil, notes, &DataError{Array: SampleWeightPrefix + task, Msg: err.Error()}
		}
	}
	return sel, notes, nil
}

func firstRows(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// dryRun runs the training forward pass on a few rows and returns each
// task's prediction. A failure deep in a kernel is reported, not raised.
func (t *Trainer) dryRun(b *Dataset) (preds []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("forward pass failed: %v", r)
		}
	}()
	inputs := map[string]*tensor.Tensor{}
	for _, v := range t.model.Graph.FeedInputs() {
		inputs[v.Name] = b.Arrays[v.Name]
	}
	tape, err := t.prog.Forward(inputs)
	if err != nil {
		return nil, err
	}
	for _, task := range t.tasks {
		p := tape.Value(task)
		if p == nil {
			return nil, fmt.Errorf("the forward pass computed no value for task %q", task)
		}
		preds = append(preds, p)
	}
	return preds, nil
}

// shapeMismatch compares an array's shape with a declared shape, leaving
// out the row axis; it describes the first difference, or returns "".
func shapeMismatch(got []int, want []graph.Dim) string {
	if len(got) != len(want) {
		return fmt.Sprintf("rank %d, want rank %d", len(got), len(want))
	}
	for i := 1; i < len(want); i++ {
		if want[i].Known() && int64(got[i]) != want[i].Value {
			return fmt.Sprintf("axis %d is %d, want %d", i, got[i], want[i].Value)
		}
	}
	return ""
}

func dimsString(d []graph.Dim) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = x.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func checkInput(d *Dataset, v graph.ValueInfo) error {
	x := d.Arrays[v.Name]
	if v.DType != 0 && x.DType != v.DType {
		return &DataError{Array: v.Name, Msg: fmt.Sprintf("model input %q is %v, the data array is %v", v.Name, v.DType, x.DType)}
	}
	if v.HasShape {
		if why := shapeMismatch(x.Shape, v.Shape); why != "" {
			return &DataError{Array: v.Name, Msg: fmt.Sprintf("shape %v does not fit model input %q, declared %s: %s", x.Shape, v.Name, dimsString(v.Shape), why)}
		}
	}
	if x.DType == tensor.Float32 {
		vals := x.Float32s()
		per := len(vals) / max(d.Rows, 1)
		for i, f := range vals {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return &DataError{Array: v.Name, Row: d.RowName(i / max(per, 1)),
					Msg: fmt.Sprintf("input value %v; inputs must be finite (only targets may be NaN, meaning a missing label)", f)}
			}
		}
	}
	return nil
}

// checkTarget checks a task's targets against what its loss needs (the
// built-in losses; another Loss gets the checks of a dense loss).
func checkTarget(d *Dataset, task string, loss Loss, out graph.ValueInfo, pred *tensor.Tensor) error {
	kind, _ := loss.(LossKind)
	y := d.Arrays[task]
	vals, err := tensor.AsFloat64(y)
	if err != nil {
		return &DataError{Array: task, Msg: fmt.Sprintf("target of type %v is not numeric", y.DType)}
	}
	per := len(vals) / max(d.Rows, 1)
	rowOf := func(i int) string { return d.RowName(i / max(per, 1)) }
	if kind.sparse() {
		if per != 1 {
			return &DataError{Array: task, Msg: fmt.Sprintf("%s needs one class id per row, shape (rows) or (rows, 1); got %v", kind, y.Shape)}
		}
		classes := 0
		if pred != nil && pred.Rank() >= 1 {
			classes = pred.Len() / max(pred.Shape[0], 1)
		}
		for i, v := range vals {
			switch {
			case math.IsNaN(v) || v < 0:
				// a missing label
			case math.IsInf(v, 0) || v != math.Trunc(v):
				return &DataError{Array: task, Row: rowOf(i), Msg: fmt.Sprintf("label %v is not a class id: %s needs whole numbers (NaN or a negative id marks a missing label)", v, kind)}
			case classes > 0 && v >= float64(classes):
				return &DataError{Array: task, Row: rowOf(i), Msg: fmt.Sprintf("label %v is out of range: the model predicts %d classes (ids 0 to %d)", v, classes, classes-1)}
			}
		}
		return nil
	}
	if out.HasShape {
		if why := shapeMismatch(y.Shape, out.Shape); why != "" {
			return &DataError{Array: task, Msg: fmt.Sprintf("target shape %v does not fit output %q, declared %s: %s", y.Shape, task, dimsString(out.Shape), why)}
		}
	}
	if pred != nil && pred.Rank() >= 1 && pred.Len()/max(pred.Shape[0], 1) != per {
		return &DataError{Array: task, Msg: fmt.Sprintf("%s needs targets shaped like the prediction: target %v per row %d values, the model predicts %v (%d per row)", loss.Name(), y.Shape, per, pred.Shape, pred.Len()/max(pred.Shape[0], 1))}
	}
	for i, v := range vals {
		if math.IsInf(v, 0) {
			return &DataError{Array: task, Row: rowOf(i), Msg: fmt.Sprintf("target %v is infinite (NaN marks a missing label; Inf is not allowed)", v)}
		}
		if (kind == BCE || kind == BCELogits) && !math.IsNaN(v) && (v < 0 || v > 1) {
			return &DataError{Array: task, Row: rowOf(i), Msg: fmt.Sprintf("target %v is outside [0, 1], which %s needs", v, kind)}
		}
	}
	return nil
}
