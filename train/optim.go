package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/ops/linalg"
)

// Optimizer updates parameters from their gradients with PyTorch's formulas
// (torch.optim.SGD, Adam, AdamW), in float32 like PyTorch on float32 models.
type Optimizer interface {
	// Step returns the new value of parameter name given its value and
	// gradient; it never modifies p in place, so kernels that cache packed
	// weights by slice identity never see stale data.
	Step(name string, p, g []float32) []float32
	// Tick advances the step counter once per optimisation step.
	Tick()
	SetLR(lr float64)
	LR() float64
	State() OptimizerState
	Restore(OptimizerState)
}

// OptimizerKind is an optimiser; its value is the name the command line
// uses. The zero value is SGD.
type OptimizerKind string

// The optimisers.
const (
	SGD   OptimizerKind = "sgd"   // torch.optim.SGD (momentum, L2 weight decay)
	Adam  OptimizerKind = "adam"  // torch.optim.Adam (L2 weight decay)
	AdamW OptimizerKind = "adamw" // torch.optim.AdamW (decoupled weight decay)
)

// OptimizerKinds lists the optimisers.
var OptimizerKinds = []OptimizerKind{SGD, Adam, AdamW}

// ParseOptimizer reads an optimiser name as the command line spells it.
// An empty name is the zero value, the default.
func ParseOptimizer(s string) (OptimizerKind, error) {
	k := OptimizerKind(s)
	if !k.valid() {
		return "", cfgErr("--optimizer", "unknown optimizer %q (want sgd, adam or adamw)", s)
	}
	return k, nil
}

func (k OptimizerKind) valid() bool { return k == "" || k == SGD || k == Adam || k == AdamW }

// orDefault spells the zero value out (checkpoints and messages name it).
func (k OptimizerKind) orDefault() OptimizerKind {
	if k == "" {
		return SGD
	}
	return k
}

// OptimizerState is the serialisable state of an optimiser (checkpoints).
type OptimizerState struct {
	Kind   OptimizerKind        `json:"kind"`
	Step   int                  `json:"step"`
	LR     float64              `json:"lr"`
	Slots1 map[string][]float32 `json:"slots1,omitempty"` // momentum buffer / Adam exp_avg
	Slots2 map[string][]float32 `json:"slots2,omitempty"` // Adam exp_avg_sq
}

// OptimizerConfig selects and tunes an optimiser. Zero values take
// PyTorch's defaults (Adam betas 0.9/0.999, eps 1e-8; AdamW weight decay 0.01).
type OptimizerConfig struct {
	Kind        OptimizerKind // SGD (the zero value), Adam or AdamW
	LR          float64
	Momentum    float64
	WeightDecay float64 // for adamw, < 0 means PyTorch's default 0.01
	Beta1       float64
	Beta2       float64
	Eps         float64
}

// NewOptimizer builds an optimiser.
func NewOptimizer(c OptimizerConfig) (Optimizer, error) {
	if c.LR <= 0 || math.IsNaN(c.LR) {
		return nil, fmt.Errorf("learning rate must be positive, got %v", c.LR)
	}
	switch c.Kind {
	case SGD, "":
		return &sgd{lr: c.LR, momentum: c.Momentum, wd: c.WeightDecay, buf: map[string][]float32{}}, nil
	case Adam, AdamW:
		a := &adam{decoupled: c.Kind == AdamW, lr: c.LR, wd: c.WeightDecay, b1: c.Beta1, b2: c.Beta2, eps: c.Eps,
			m: map[string][]float32{}, v: map[string][]float32{}}
		if a.b1 == 0 {
			a.b1 = 0.9
		}
		if a.b2 == 0 {
			a.b2 = 0.999
		}
		if a.eps == 0 {
			a.eps = 1e-8
		}
		if a.decoupled && a.wd < 0 {
			a.wd = 0.01
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (want sgd, adam or adamw)", c.Kind)
}

type sgd struct {
	lr, momentum, wd float64
	step             int
	buf              map[string][]float32
}

func (o *sgd) Step(name string, p, g []float32) []float32 {
	wd, mom, lr := float32(o.wd), float32(o.momentum), float32(o.lr)
	d := g
	if wd != 0 {
		d = make([]float32, len(g))
		for i := range g {
			d[i] = g[i] + wd*p[i]
		}
	}
	if mom != 0 {
		buf, ok := o.buf[name]
		if !ok {
			buf = append([]float32(nil), d...)
		} else {
			for i := range buf {
				buf[i] = buf[i]*mom + d[i]
			}
		}
		o.buf[name] = buf
		d = buf
	}
	out := make([]float32, len(p))
	for i := range p {
		out[i] = p[i] + (-lr)*d[i]
	}
	return out
}

func (o *sgd) Tick()            { o.step++ }
func (o *sgd) SetLR(lr float64) { o.lr = lr }
func (o *sgd) LR() float64      { return o.lr }
func (o *sgd) State() OptimizerState {
	return OptimizerState{Kind: SGD, Step: o.step, LR: o.lr, Slots1: o.buf}
}
func (o *sgd) Restore(s OptimizerState) {
	o.step, o.lr = s.Step, s.LR
	if s.Slots1 != nil {
		o.buf = s.Slots1
	}
}

type adam struct {
	decoupled           bool
	lr, wd, b1, b2, eps float64
	step                int
	m, v                map[string][]float32
}

func (o *adam) Step(name string, p, g []float32) []float32 {
	t := o.step + 1
	out := append([]float32(nil), p...)
	grad := g
	if o.decoupled {
		f := float32(1 - o.lr*o.wd)
		for i := range out {
			out[i] *= f
		}
	} else if o.wd != 0 {
		grad = make([]float32, len(g))
		for i := range g {
			grad[i] = g[i] + float32(o.wd)*p[i]
		}
	}
	m, ok := o.m[name]
	if !ok {
		m = make([]float32, len(p))
		o.m[name] = m
	}
	v, ok := o.v[name]
	if !ok {
		v = make([]float32, len(p))
		o.v[name] = v
	}
	// PyTorch forms 1-beta in double precision, then rounds to float32
	b1, b2, c1, c2 := float32(o.b1), float32(o.b2), float32(1-o.b1), float32(1-o.b2)
	bc1 := 1 - math.Pow(o.b1, float64(t))
	bc2 := 1 - math.Pow(o.b2, float64(t))
	stepSize := float32(o.lr / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	// m ← m·b1 + g·c1, v ← v·b2 + c2·g·g, out += -stepSize·m/(√v/bc2Sqrt + eps),
	// in float32 (vector kernels, bitwise the Go loop)
	linalg.AdamUpdate(out, grad, m, v, b1, c1, b2, c2, bc2Sqrt, float32(o.eps), stepSize)
	return out
}

func (o *adam) Tick()            { o.step++ }
func (o *adam) SetLR(lr float64) { o.lr = lr }
func (o *adam) LR() float64      { return o.lr }
func (o *adam) State() OptimizerState {
	kind := Adam
	if o.decoupled {
		kind = AdamW
	}
	return OptimizerState{Kind: kind, Step: o.step, LR: o.lr, Slots1: o.m, Slots2: o.v}
}
func (o *adam) Restore(s OptimizerState) {
	o.step, o.lr = s.Step, s.LR
	if s.Slots1 != nil {
		o.m = s.Slots1
	}
	if s.Slots2 != nil {
		o.v = s.Slots2
	}
}

// ClipGradNorm scales all gradients so their global L2 norm is at most
// maxNorm, exactly as torch.nn.utils.clip_grad_norm_ (coefficient
// maxNorm/(norm+1e-6), clamped at 1). It returns the norm before clipping.
func ClipGradNorm(grads map[string][]float32, maxNorm float64) float64 {
	var total float64
	for _, g := range grads {
		var s float64
		for _, v := range g {
			s += float64(v) * float64(v)
		}
		n := float32(math.Sqrt(s))
		total += float64(n) * float64(n)
	}
	norm := float32(math.Sqrt(total))
	coef := float32(maxNorm) / (norm + 1e-6)
	if coef > 1 {
		coef = 1
	}
	for _, g := range grads {
		for i := range g {
			g[i] *= coef
		}
	}
	return float64(norm)
}

// ScheduleKind is a learning-rate schedule; its value is the name the
// command line uses. The zero value is ScheduleNone.
type ScheduleKind string

// The learning-rate schedules.
const (
	ScheduleNone   ScheduleKind = "none"   // a constant rate
	ScheduleStep   ScheduleKind = "step"   // torch's StepLR
	ScheduleCosine ScheduleKind = "cosine" // torch's CosineAnnealingLR
	ScheduleExp    ScheduleKind = "exp"    // torch's ExponentialLR
)

// ScheduleKinds lists the learning-rate schedules.
var ScheduleKinds = []ScheduleKind{ScheduleNone, ScheduleStep, ScheduleCosine, ScheduleExp}

// ParseSchedule reads a schedule name as the command line spells it.
// An empty name is the zero value, the default.
func ParseSchedule(s string) (ScheduleKind, error) {
	k := ScheduleKind(s)
	if !oneOf(k, append([]ScheduleKind{""}, ScheduleKinds...)) {
		return "", cfgErr("--schedule", "unknown schedule %q (want %s)", s, strings.Join(kindStrings(ScheduleKinds), ", "))
	}
	return k, nil
}

// Schedule gives the learning rate of an epoch (0-based).
type Schedule struct {
	Kind     ScheduleKind // ScheduleNone (or ""), ScheduleStep, ScheduleCosine, ScheduleExp
	StepSize int          // step: epochs between decays
	Gamma    float64      // step, exp: decay factor (default 0.1 for step, 0.9 for exp)
	Epochs   int          // cosine: T_max
	MinLR    float64      // cosine: eta_min
}

// LR returns the rate for epoch e given the base rate, as torch's StepLR,
// CosineAnnealingLR and ExponentialLR (closed forms).
func (s Schedule) LR(base float64, e int) float64 {
	switch s.Kind {
	case ScheduleStep:
		g := s.Gamma
		if g == 0 {
			g = 0.1
		}
		step := max(s.StepSize, 1)
		return base * math.Pow(g, float64(e/step))
	case ScheduleExp:
		g := s.Gamma
		if g == 0 {
			g = 0.9
		}
		return base * math.Pow(g, float64(e))
	case ScheduleCosine:
		tmax := max(s.Epochs, 1)
		return s.MinLR + (base-s.MinLR)*(1+math.Cos(math.Pi*float64(e)/float64(tmax)))/2
	}
	return base
}
