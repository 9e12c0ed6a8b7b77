// Package train fine-tunes multi-task models: task losses with missing-label
// masks, task weighting (fixed, RLW, uncertainty, DWA, GradNorm, MGDA,
// PCGrad, CAGrad, IMTL-G), optimisers with PyTorch's formulas, freezing,
// data from NumPy and CSV files, checkpoints, and the Fit loop. Gradients
// come from package train/autodiff.
package train

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// LossKinds lists the supported task losses.
var LossKinds = []string{"mse", "mae", "huber", "bce", "bce_logits", "cce", "sparse_cce", "sparse_cce_logits", "nll"}

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

// IsClassification reports whether a loss kind has an accuracy metric.
func IsClassification(kind string) bool {
	switch kind {
	case "bce", "bce_logits", "cce", "sparse_cce", "sparse_cce_logits", "nll":
		return true
	}
	return false
}

// TaskLoss computes a loss and its gradient. pred is (batch, ...) float32;
// target is (batch, ...) for element-wise losses and cce, (batch) or
// (batch, 1) integer-valued labels for the sparse losses and nll. A NaN
// target anywhere in a row (or a negative sparse label) leaves that row out.
func TaskLoss(kind string, pred, target *tensor.Tensor) (LossResult, error) {
	return WeightedTaskLoss(kind, pred, target, nil)
}

// WeightedTaskLoss is TaskLoss with one weight per row (nil: all 1), as
// Keras' sample_weight: each row's loss and gradient are scaled by its
// weight and the mean still divides by the labelled rows (Keras'
// sum_over_batch_size reduction).
func WeightedTaskLoss(kind string, pred, target *tensor.Tensor, rowWeights []float64) (LossResult, error) {
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
	sparse := kind == "sparse_cce" || kind == "sparse_cce_logits" || kind == "nll"
	if sparse {
		if len(tv) != batch {
			return res, fmt.Errorf("%s needs one integer label per row: target shape %v, prediction %v", kind, target.Shape, pred.Shape)
		}
	} else if len(tv) != len(p) {
		return res, fmt.Errorf("%s needs targets shaped like the prediction: target %v, prediction %v", kind, target.Shape, pred.Shape)
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
				return res, &rowError{row: b, msg: fmt.Sprintf("label %v is not a class id (%s needs whole numbers)", l, kind)}
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
		switch kind {
		case "mse":
			for j, x := range pr {
				d := float64(x) - tr[j]
				total += d * d
				gr[j] = float32(2 * d * elemScale)
			}
		case "mae":
			for j, x := range pr {
				d := float64(x) - tr[j]
				total += math.Abs(d)
				gr[j] = float32(sign(d) * elemScale)
			}
		case "huber":
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
		case "bce":
			// PyTorch BCELoss: log terms clamped at -100
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
					res.Right++
				}
			}
		case "bce_logits":
			for j, x := range pr {
				z, y := float64(x), tr[j]
				total += math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
				gr[j] = float32((sigmoid(z) - y) * elemScale)
				if (z >= 0) == (y >= 0.5) {
					res.Right++
				}
			}
		case "cce":
			// Keras categorical_crossentropy on probabilities: normalise,
			// clip to [eps, 1-eps], −Σ y·log p
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
			if argmax32(pr) == argmax64(tr) {
				res.Right++
			}
		case "sparse_cce":
			l := int(tv[b])
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
			if argmax32(pr) == l {
				res.Right++
			}
		case "sparse_cce_logits":
			l := int(tv[b])
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
			if argmax32(pr) == l {
				res.Right++
			}
		case "nll":
			l := int(tv[b])
			total -= float64(pr[l])
			gr[l] = float32(-rowScale)
			if argmax32(pr) == l {
				res.Right++
			}
		default:
			return res, fmt.Errorf("unknown loss %q (want one of %v)", kind, LossKinds)
		}
		if rowWeights != nil {
			w := rowWeights[b]
			total = rowStart + (total-rowStart)*w
			for j := range gr {
				gr[j] *= float32(w)
			}
		}
	}
	res.Judged = res.Rows
	if kind == "bce" || kind == "bce_logits" {
		res.Judged = res.Rows * width
	}
	switch kind {
	case "mse", "mae", "huber", "bce", "bce_logits":
		res.Loss = total * elemScale
	default:
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
func RowWeights(kind string, target, sample *tensor.Tensor, class []float64) ([]float64, error) {
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
		switch kind {
		case "sparse_cce", "sparse_cce_logits", "nll", "bce", "bce_logits":
			if width != 1 {
				return nil, fmt.Errorf("class weights need one label per row; %s targets have %d per row", kind, width)
			}
			if math.IsNaN(row[0]) || row[0] < 0 {
				w[i] = 0 // no label: the row is out of the loss anyway
				continue
			}
			c = int(math.Round(row[0]))
		case "cce":
			c = argmax64(row)
		default:
			return nil, fmt.Errorf("class weights apply to classification losses, not %s", kind)
		}
		if c >= len(class) {
			return nil, fmt.Errorf("row %d has class %d but only %d class weights are given", i, c, len(class))
		}
		w[i] *= class[c]
	}
	return w, nil
}
