package rnn

import (
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// actKind names one of the activation functions the recurrent ops accept.
type actKind int

const (
	actSigmoid actKind = iota
	actTanh
	actRelu
	actAffine
	actLeakyRelu
	actThresholdedRelu
	actScaledTanh
	actHardSigmoid
	actElu
	actSoftsign
	actSoftplus
)

// actInfo describes an activation: its kind, whether it consumes an entry of
// activation_alpha / activation_beta, and the defaults used when the lists run
// out (the same defaults as the stand-alone ONNX ops).
type actInfo struct {
	kind               actKind
	usesAlpha, usesBet bool
	alpha, beta        float64
}

var actTable = map[string]actInfo{
	"sigmoid":         {kind: actSigmoid},
	"tanh":            {kind: actTanh},
	"relu":            {kind: actRelu},
	"affine":          {kind: actAffine, usesAlpha: true, usesBet: true, alpha: 1, beta: 0},
	"leakyrelu":       {kind: actLeakyRelu, usesAlpha: true, alpha: 0.01},
	"thresholdedrelu": {kind: actThresholdedRelu, usesAlpha: true, alpha: 1},
	"scaledtanh":      {kind: actScaledTanh, usesAlpha: true, usesBet: true, alpha: 1, beta: 1},
	"hardsigmoid":     {kind: actHardSigmoid, usesAlpha: true, usesBet: true, alpha: 0.2, beta: 0.5},
	"elu":             {kind: actElu, usesAlpha: true, alpha: 1},
	"softsign":        {kind: actSoftsign},
	"softplus":        {kind: actSoftplus},
}

// act is one configured activation function.
type act struct {
	kind        actKind
	alpha, beta float64
}

// parseActs reads activations / activation_alpha / activation_beta. perDir
// is the number of functions one direction uses and defs their defaults.
// It returns numDir slices of perDir activations. A list holding exactly one
// direction's worth is shared by both directions of a bidirectional node.
func parseActs(a graph.Attrs, numDir int, defs []string) ([][]act, error) {
	perDir := len(defs)
	names := a.Strings("activations")
	if len(names) == 0 {
		for d := 0; d < numDir; d++ {
			names = append(names, defs...)
		}
	}
	if len(names) != perDir*numDir && !(numDir == 2 && len(names) == perDir) {
		return nil, ops.BadAttr("activations", "got %d functions %v, want %d (%d per direction)", len(names), names, perDir*numDir, perDir)
	}
	alphas := a.Floats("activation_alpha")
	betas := a.Floats("activation_beta")
	list := make([]act, len(names))
	for i, n := range names {
		info, ok := actTable[strings.ToLower(n)]
		if !ok {
			return nil, ops.BadAttr("activations", "unsupported activation %q", n)
		}
		ac := act{kind: info.kind, alpha: info.alpha, beta: info.beta}
		if info.usesAlpha && len(alphas) > 0 {
			ac.alpha = float64(alphas[0])
			alphas = alphas[1:]
		}
		if info.usesBet && len(betas) > 0 {
			ac.beta = float64(betas[0])
			betas = betas[1:]
		}
		list[i] = ac
	}
	out := make([][]act, numDir)
	for d := range out {
		if len(list) == perDir {
			out[d] = list
		} else {
			out[d] = list[d*perDir : (d+1)*perDir]
		}
	}
	return out, nil
}

func sigmoid[T tensor.Float](x T) T { return T(1 / (1 + math.Exp(-float64(x)))) }

func tanh[T tensor.Float](x T) T { return T(math.Tanh(float64(x))) }

// apply evaluates the activation at x.
func (f act) apply(x float64) float64 {
	switch f.kind {
	case actSigmoid:
		return 1 / (1 + math.Exp(-x))
	case actTanh:
		return math.Tanh(x)
	case actRelu:
		return math.Max(0, x)
	case actAffine:
		return f.alpha*x + f.beta
	case actLeakyRelu:
		if x >= 0 {
			return x
		}
		return f.alpha * x
	case actThresholdedRelu:
		if x >= f.alpha { // as the RNN spec text states
			return x
		}
		return 0
	case actScaledTanh:
		return f.alpha * math.Tanh(f.beta*x)
	case actHardSigmoid:
		return math.Max(0, math.Min(1, f.alpha*x+f.beta))
	case actElu:
		if x >= 0 {
			return x
		}
		return f.alpha * (math.Exp(x) - 1)
	case actSoftsign:
		return x / (1 + math.Abs(x))
	case actSoftplus:
		if x > 30 {
			return x + math.Log1p(math.Exp(-x))
		}
		return math.Log1p(math.Exp(x))
	}
	return x
}

// applyT evaluates the activation in the element type, with fast cases for
// the common functions.
func applyT[T tensor.Float](f act, x T) T {
	switch f.kind {
	case actSigmoid:
		return sigmoid(x)
	case actTanh:
		return tanh(x)
	case actRelu:
		if x > 0 {
			return x
		}
		return 0
	}
	return T(f.apply(float64(x)))
}

// Activation is one of a recurrent node's activation functions as its
// kernel applies it, for a training pass (Trace.Activations).
type Activation struct{ f act }

// String names the function with its parameters, as in error messages.
func (a Activation) String() string {
	for name, info := range actTable {
		if info.kind != a.f.kind {
			continue
		}
		switch {
		case info.usesAlpha && info.usesBet:
			return fmt.Sprintf("%s(alpha=%g, beta=%g)", name, a.f.alpha, a.f.beta)
		case info.usesAlpha:
			return fmt.Sprintf("%s(alpha=%g)", name, a.f.alpha)
		}
		return name
	}
	return fmt.Sprintf("activation %d", a.f.kind)
}

// ApplyActivation applies a to every element of x in place, as the
// kernel's general path does.
func ApplyActivation[T tensor.Float](a Activation, x []T) {
	for i, v := range x {
		x[i] = applyT(a.f, v)
	}
}

// Apply evaluates the function at x in float64.
func (a Activation) Apply(x float64) float64 { return a.f.apply(x) }

// SlopeFromOutput reports whether the function's derivative at a point is
// determined by its output there (Slope): true for every function but a
// LeakyRelu or Elu with a negative alpha, whose negative side also yields
// positive outputs.
func (a Activation) SlopeFromOutput() bool {
	switch a.f.kind {
	case actLeakyRelu, actElu:
		return a.f.alpha >= 0
	}
	return true
}

// Slope is the derivative at the point where the function's output is y
// (see SlopeFromOutput). At a kink it takes one of the two sides' slopes.
func (a Activation) Slope(y float64) float64 {
	f := a.f
	switch f.kind {
	case actSigmoid:
		return y * (1 - y)
	case actTanh:
		return 1 - y*y
	case actRelu:
		return unitStep(y > 0)
	case actAffine:
		return f.alpha
	case actLeakyRelu:
		if y > 0 {
			return 1
		}
		return f.alpha
	case actThresholdedRelu:
		return unitStep(y != 0)
	case actScaledTanh:
		if f.alpha == 0 {
			return 0
		}
		t := y / f.alpha
		return f.alpha * f.beta * (1 - t*t)
	case actHardSigmoid:
		if y > 0 && y < 1 {
			return f.alpha
		}
		return 0
	case actElu:
		if y > 0 {
			return 1
		}
		return y + f.alpha
	case actSoftsign:
		t := 1 - math.Abs(y)
		return t * t
	case actSoftplus:
		return -math.Expm1(-y)
	}
	return 1
}

func unitStep(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
