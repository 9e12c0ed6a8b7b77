// Package train fine-tunes multi-task models: task losses with missing-label
// masks, task weighting (fixed, RLW, uncertainty, DWA, GradNorm, MGDA,
// PCGrad, CAGrad, IMTL-G), optimisers with PyTorch's formulas, freezing,
// data from NumPy and CSV files, checkpoints, and the Fit loop. Gradients
// come from package train/autodiff.
package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

// Loss is a task loss: it scores a batch of predictions against targets
// and gives the gradient with respect to the predictions. The built-in
// losses are the LossKind constants (MSE, SparseCCELogits, ...);
// another implementation can be given per task in Config.Losses.
type Loss interface {
	// Name is the loss's name in reports and checkpoints.
	Name() string
	// Classification reports whether the loss is judged by accuracy
	// (otherwise by MSE and MAE).
	Classification() bool
	// Eval computes the mean loss over the labelled rows and its gradient.
	// pred is (batch, ...) float32; rowWeights holds one weight per row
	// (nil: all 1).
	Eval(pred, target *tensor.Tensor, rowWeights []float64) (LossResult, error)
}

// LossKind is a built-in loss; its value is the name the command line uses.
type LossKind string

// The built-in losses.
const (
	MSE             LossKind = "mse"               // mean squared error
	MAE             LossKind = "mae"               // mean absolute error
	Huber           LossKind = "huber"             // Huber (smooth L1), δ = 1
	BCE             LossKind = "bce"               // binary cross-entropy on probabilities (PyTorch BCELoss)
	BCELogits       LossKind = "bce_logits"        // binary cross-entropy on logits
	CCE             LossKind = "cce"               // categorical cross-entropy on probabilities, one-hot targets (Keras)
	SparseCCE       LossKind = "sparse_cce"        // categorical cross-entropy on probabilities, class-id targets
	SparseCCELogits LossKind = "sparse_cce_logits" // categorical cross-entropy on logits, class-id targets
	NLL             LossKind = "nll"               // negative log-likelihood of log-probabilities, class-id targets
)

// LossKinds lists the built-in losses.
var LossKinds = []LossKind{MSE, MAE, Huber, BCE, BCELogits, CCE, SparseCCE, SparseCCELogits, NLL}

// ParseLoss reads a loss name as the command line spells it.
func ParseLoss(s string) (LossKind, error) {
	k := LossKind(s)
	if _, ok := lossDefs[k]; !ok {
		return "", cfgErr("--loss", "unknown loss %q (want one of %s)", s, kindList(LossKinds))
	}
	return k, nil
}

// kindList joins kinds with spaces.
func kindList[K ~string](kinds []K) string { return strings.Join(kindStrings(kinds), " ") }

func kindStrings[K ~string](kinds []K) []string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return s
}

// lossDef is how a built-in loss treats targets and scores one row.
type lossDef struct {
	sparse  bool // one class id per row (else targets are shaped like the prediction)
	perUnit bool // the mean runs over rows × units (else over rows)
	class   bool // judged by accuracy
	// row adds one labelled row's loss to total and writes its gradient
	// into gr; tr is the row's target (dense losses), label its class id
	// (sparse losses). It returns the new total and the correct predictions.
	row func(total float64, pr []float32, tr []float64, label int, gr []float32, elemScale, rowScale float64) (float64, int)
}

var lossDefs = map[LossKind]lossDef{
	MSE: {perUnit: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, elemScale, _ float64) (float64, int) {
		for j, x := range pr {
			d := float64(x) - tr[j]
			total += d * d
			gr[j] = float32(2 * d * elemScale)
		}
		return total, 0
	}},
	MAE: {perUnit: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, elemScale, _ float64) (float64, int) {
		for j, x := range pr {
			d := float64(x) - tr[j]
			total += math.Abs(d)
			gr[j] = float32(sign(d) * elemScale)
		}
		return total, 0
	}},
	Huber: {perUnit: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, elemScale, _ float64) (float64, int) {
		for j, x := range pr {
			d := float64(x) - tr[j]
			if math.Abs(d) < 1 {
				total += 0.5 * d * d
				gr[j] = float32(d * elemScale)
			} else {
				total += math.Abs(d) - 0.5
				gr[j] = float32(sign(d) * elemScale)
			}
		}
		return total, 0
	}},
	// PyTorch BCELoss: log terms clamped at -100
	BCE: {perUnit: true, class: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, elemScale, _ float64) (float64, int) {
		right := 0
		for j, x := range pr {
			q, y := float64(x), tr[j]
			lp, l1p := math.Max(math.Log(q), -100), math.Max(math.Log(1-q), -100)
			total -= y*lp + (1-y)*l1p
			var d float64
			if q > 0 && q < 1 {
				d = -y/q + (1-y)/(1-q)
			}
			gr[j] = float32(d * elemScale)
			if (q >= 0.5) == (y >= 0.5) {
				right++
			}
		}
		return total, right
	}},
	BCELogits: {perUnit: true, class: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, elemScale, _ float64) (float64, int) {
		right := 0
		for j, x := range pr {
			z, y := float64(x), tr[j]
			total += math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
			gr[j] = float32((sigmoid(z) - y) * elemScale)
			if (z >= 0) == (y >= 0.5) {
				right++
			}
		}
		return total, right
	}},
	// Keras categorical_crossentropy on probabilities: normalise, clip to
	// [eps, 1-eps], −Σ y·log p
	CCE: {class: true, row: func(total float64, pr []float32, tr []float64, _ int, gr []float32, _, rowScale float64) (float64, int) {
		var s float64
		for _, x := range pr {
			s += float64(x)
		}
		for j, x := range pr {
			q := float64(x) / s
			qc := math.Min(math.Max(q, probEps), 1-probEps)
			total -= tr[j] * math.Log(qc)
		}
		// gradient through the normalisation (clip is flat outside)
		var dot float64
		for j, x := range pr {
			q := float64(x) / s
			if q > probEps && q < 1-probEps {
				dot += tr[j] / q * q
			}
		}
		for j, x := range pr {
			q := float64(x) / s
			var d float64
			if q > probEps && q < 1-probEps {
				d = -tr[j] / q / s
			}
			gr[j] = float32((d + dot/s) * rowScale)
		}
		return total, boolInt(argmax32(pr) == argmax64(tr))
	}},
	SparseCCE: {sparse: true, class: true, row: func(total float64, pr []float32, _ []float64, l int, gr []float32, _, rowScale float64) (float64, int) {
		var s float64
		for _, x := range pr {
			s += float64(x)
		}
		q := float64(pr[l]) / s
		qc := math.Min(math.Max(q, probEps), 1-probEps)
		total -= math.Log(qc)
		if q > probEps && q < 1-probEps {
			for j := range pr {
				gr[j] = float32(1 / s * rowScale)
			}
			gr[l] -= float32(1 / q / s * rowScale)
		}
		return total, boolInt(argmax32(pr) == l)
	}},
	SparseCCELogits: {sparse: true, class: true, row: func(total float64, pr []float32, _ []float64, l int, gr []float32, _, rowScale float64) (float64, int) {
		mx := float64(pr[argmax32(pr)])
		var s float64
		for _, x := range pr {
			s += math.Exp(float64(x) - mx)
		}
		lse := mx + math.Log(s)
		total += lse - float64(pr[l])
		for j, x := range pr {
			gr[j] = float32(math.Exp(float64(x)-lse) * rowScale)
		}
		gr[l] -= float32(rowScale)
		return total, boolInt(argmax32(pr) == l)
	}},
	NLL: {sparse: true, class: true, row: func(total float64, pr []float32, _ []float64, l int, gr []float32, _, rowScale float64) (float64, int) {
		total -= float64(pr[l])
		gr[l] = float32(-rowScale)
		return total, boolInt(argmax32(pr) == l)
	}},
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Name returns the loss's name as the command line spells it.
func (k LossKind) Name() string { return string(k) }

// String returns the loss's name.
func (k LossKind) String() string { return string(k) }

// Classification reports whether the loss has an accuracy metric.
func (k LossKind) Classification() bool { return lossDefs[k].class }

// sparse reports whether the loss takes one class id per row.
func (k LossKind) sparse() bool { return lossDefs[k].sparse }

// keras' epsilon for probability losses: probabilities are clipped to
// [eps, 1-eps] before the log, as tf.keras does.
const probEps = 1e-7

// LossResult is one task's loss on a batch.
type LossResult struct {
	Loss   float64        // mean over the rows that have a label
	Rows   int            // rows with a label
	Grad   *tensor.Tensor // dLoss/dPrediction, float32, shaped like the prediction
	Right  int            // correct predictions (classification losses)
	Judged int            // predictions judged for Right (rows, or rows×units for bce)
}

// TaskLoss computes a loss and its gradient (loss.Eval without row weights).
func TaskLoss(loss Loss, pred, target *tensor.Tensor) (LossResult, error) {
	return loss.Eval(pred, target, nil)
}

// Eval computes the loss and its gradient. pred is (batch, ...) float32;
// target is (batch, ...) for element-wise losses and cce, (batch) or
// (batch, 1) integer-valued labels for the sparse losses and nll. A NaN
// target anywhere in a row (or a negative sparse label) leaves that row
// out. With one weight per row (nil: all 1), as Keras' sample_weight, each
// row's loss and gradient are scaled by its weight and the mean still
// divides by the labelled rows (Keras' sum_over_batch_size reduction).
func (k LossKind) Eval(pred, target *tensor.Tensor, rowWeights []float64) (LossResult, error) {
	def, known := lossDefs[k]
	if !known {
		return LossResult{}, fmt.Errorf("unknown loss %q (want one of %s)", string(k), kindList(LossKinds))
	}
	if pred.DType != tensor.Float32 {
		return LossResult{}, fmt.Errorf("prediction is %v, want float32", pred.DType)
	}
	if pred.Rank() == 0 {
		return LossResult{}, fmt.Errorf("prediction must have a batch axis, got a scalar")
	}
	p := pred.Float32s()
	tv, err := tensor.AsFloat64(target)
	if err != nil {
		return LossResult{}, fmt.Errorf("target: %w", err)
	}
	batch := pred.Shape[0]
	if target.Rank() == 0 || target.Shape[0] != batch {
		return LossResult{}, fmt.Errorf("target shape %v does not match prediction %v (batch %d)", target.Shape, pred.Shape, batch)
	}
	width := len(p) / max(batch, 1)
	if rowWeights != nil && len(rowWeights) != batch {
		return LossResult{}, fmt.Errorf("%d row weights for %d rows", len(rowWeights), batch)
	}
	g := make([]float32, len(p))
	res := LossResult{Grad: tensor.From(pred.Shape, g)}
	sparse := def.sparse
	if sparse {
		if len(tv) != batch {
			return res, fmt.Errorf("%s needs one integer label per row: target shape %v, prediction %v", k, target.Shape, pred.Shape)
		}
	} else if len(tv) != len(p) {
		return res, fmt.Errorf("%s needs targets shaped like the prediction: target %v, prediction %v", k, target.Shape, pred.Shape)
	}
	// rows with a label
	valid := make([]bool, batch)
	for b := 0; b < batch; b++ {
		valid[b] = true
		if sparse {
			l := tv[b]
			if math.IsNaN(l) || l < 0 {
				valid[b] = false
			} else if math.IsInf(l, 0) || l != math.Trunc(l) {
				return res, &rowError{row: b, msg: fmt.Sprintf("label %v is not a class id (%s needs whole numbers)", l, k)}
			} else if l >= float64(width) {
				return res, &rowError{row: b, msg: fmt.Sprintf("label %v is out of range for %d classes", l, width)}
			}
			continue
		}
		for _, v := range tv[b*width : (b+1)*width] {
			if math.IsNaN(v) {
				valid[b] = false
			}
		}
	}
	for _, v := range valid {
		if v {
			res.Rows++
		}
	}
	if res.Rows == 0 {
		return res, nil
	}
	// element-wise losses average over rows × units, like PyTorch's
	// reduction='mean' and Keras' mean over the last axis then the batch
	elemScale := 1 / float64(res.Rows*width)
	rowScale := 1 / float64(res.Rows)
	var total float64
	for b := 0; b < batch; b++ {
		if !valid[b] {
			continue
		}
		pr, tr, gr := p[b*width:(b+1)*width], tv[:0], g[b*width:(b+1)*width]
		rowStart := total
		if !sparse {
			tr = tv[b*width : (b+1)*width]
		}
		label := 0
		if sparse {
			label = int(tv[b])
		}
		var right int
		total, right = def.row(total, pr, tr, label, gr, elemScale, rowScale)
		res.Right += right
		if rowWeights != nil {
			w := rowWeights[b]
			total = rowStart + (total-rowStart)*w
			for j := range gr {
				gr[j] *= float32(w)
			}
		}
	}
	res.Judged = res.Rows
	if def.perUnit && def.class {
		res.Judged = res.Rows * width
	}
	if def.perUnit {
		res.Loss = total * elemScale
	} else {
		res.Loss = total * rowScale
	}
	return res, nil
}

// rowError is a bad target in one row of a batch; the training loop turns
// the batch row into the file row.
type rowError struct {
	row int
	msg string
}

func (e *rowError) Error() string { return fmt.Sprintf("row %d: %s", e.row, e.msg) }

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func argmax32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func argmax64(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// SampleWeightPrefix starts the name of a data array holding one task's
// per-row weights: "sample_weight/OUT" (Keras' sample_weight per output).
const SampleWeightPrefix = "sample_weight/"

// RowWeights combines a task's sample weights (nil: 1 per row) and class
// weights (nil: none; Keras' class_weight) into one weight per row, or nil
// when there are neither. A row's class is its label for sparse_cce,
// sparse_cce_logits and nll, the largest target for cce, and the 0/1 target
// for bce and bce_logits with one unit. Rows without a label get weight 0.
func RowWeights(loss Loss, target, sample *tensor.Tensor, class []float64) ([]float64, error) {
	if sample == nil && class == nil {
		return nil, nil
	}
	if target == nil || target.Rank() == 0 {
		return nil, fmt.Errorf("weights need a target with a row axis")
	}
	rows := target.Shape[0]
	w := make([]float64, rows)
	for i := range w {
		w[i] = 1
	}
	if sample != nil {
		sv, err := tensor.AsFloat64(sample)
		if err != nil {
			return nil, fmt.Errorf("sample weights: %w", err)
		}
		if len(sv) != rows {
			return nil, fmt.Errorf("sample weights have shape %v, want one per row (%d)", sample.Shape, rows)
		}
		for i, v := range sv {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, fmt.Errorf("sample weight %v in row %d is not a finite non-negative number", v, i)
			}
			w[i] = v
		}
	}
	if class == nil {
		return w, nil
	}
	tv, err := tensor.AsFloat64(target)
	if err != nil {
		return nil, err
	}
	width := len(tv) / max(rows, 1)
	for i := range w {
		row := tv[i*width : (i+1)*width]
		var c int
		kind, _ := loss.(LossKind)
		def, builtin := lossDefs[kind]
		switch {
		case builtin && def.class && (def.sparse || def.perUnit):
			if width != 1 {
				return nil, fmt.Errorf("class weights need one label per row; %s targets have %d per row", kind, width)
			}
			if math.IsNaN(row[0]) || row[0] < 0 {
				w[i] = 0 // no label: the row is out of the loss anyway
				continue
			}
			c = int(math.Round(row[0]))
		case builtin && def.class:
			c = argmax64(row)
		default:
			return nil, fmt.Errorf("class weights apply to the built-in classification losses, not %s", loss.Name())
		}
		if c >= len(class) {
			return nil, fmt.Errorf("row %d has class %d but only %d class weights are given", i, c, len(class))
		}
		w[i] *= class[c]
	}
	return w, nil
}

// ParseLosses reads task losses as the command line spells them
// (output → loss name).
func ParseLosses(names map[string]string) (map[string]Loss, error) {
	out := make(map[string]Loss, len(names))
	for _, task := range sortedKeys(names) {
		k, err := ParseLoss(names[task])
		if err != nil {
			return nil, cfgErr("--loss", "output %q: %s", task, err.(*ConfigError).Msg)
		}
		out[task] = k
	}
	return out, nil
}
