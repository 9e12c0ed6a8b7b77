package train

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// WeightingKind is a task-weighting method; its value is the name the
// command line uses. The zero value is Fixed.
type WeightingKind string

// The task-weighting methods.
const (
	Fixed       WeightingKind = "fixed"       // fixed weights (Config.LossWeights, default 1)
	RLW         WeightingKind = "rlw"         // random loss weighting
	Uncertainty WeightingKind = "uncertainty" // homoscedastic uncertainty (Kendall et al.)
	DWA         WeightingKind = "dwa"         // dynamic weight average
	GradNorm    WeightingKind = "gradnorm"    // gradient normalisation (Chen et al.)
	MGDA        WeightingKind = "mgda"        // multiple-gradient descent (min-norm)
	PCGrad      WeightingKind = "pcgrad"      // projecting conflicting gradients
	CAGrad      WeightingKind = "cagrad"      // conflict-averse gradient descent
	IMTL        WeightingKind = "imtl"        // impartial MTL, gradient form (IMTL-G)
)

// Weightings lists the task-weighting methods.
var Weightings = []WeightingKind{Fixed, RLW, Uncertainty, DWA, GradNorm, MGDA, PCGrad, CAGrad, IMTL}

// ParseWeighting reads a method name as the command line spells it.
// An empty name is the zero value, the default.
func ParseWeighting(s string) (WeightingKind, error) {
	k := WeightingKind(s)
	if !oneOf(k, append([]WeightingKind{""}, Weightings...)) {
		return "", cfgErr("--weighting", "unknown method %q (want one of %s)", s, kindList(Weightings))
	}
	return k, nil
}

// orDefault spells the zero value out (checkpoints and messages name it).
func (k WeightingKind) orDefault() WeightingKind {
	if k == "" {
		return Fixed
	}
	return k
}

// Weighting decides how task losses (or their gradients) combine.
//
// Loss-level methods (fixed, rlw, uncertainty, dwa, gradnorm) return
// per-task multipliers of the task losses. Gradient-level methods (mgda,
// pcgrad, cagrad, imtl) combine the per-task gradients of the shared
// (trunk) parameters; head parameters receive their own task's gradient.
type Weighting interface {
	Kind() WeightingKind
	// TaskGrads reports whether Combine needs per-task trunk gradients.
	TaskGrads() bool
	// Weights returns this step's loss multipliers given the task losses.
	Weights(losses []float64) []float64
	// Combine merges per-task gradients (one flat vector per task over the
	// trunk parameters) into one; it also returns the multipliers applied
	// to each task's head gradients.
	Combine(grads [][]float64) (combined []float64, headWeights []float64)
	// Observe gives the method what it learns from after a step: task
	// losses and, for GradNorm, the norms of each weighted task gradient on
	// the last shared layer.
	Observe(losses []float64, lastLayerNorms []float64)
	// EndEpoch passes each task's mean training loss of the epoch.
	EndEpoch(epochLosses []float64)
	// State and Restore support checkpoints: State is the method's whole
	// learned or drawn state (JSON), Restore puts it back exactly.
	State() json.RawMessage
	Restore(json.RawMessage) error
}

// learner is a weighting with parameters of its own (uncertainty's
// log-variances), trained by the run's optimiser: Learned gives their
// values and the gradient of the total loss given this step's task losses;
// the trainer steps them and hands back the new values with SetLearned.
type learner interface {
	Learned(losses []float64) (name string, value, grad []float32)
	SetLearned([]float32)
}

// marshalState encodes a method's state; nil when it cannot be encoded
// (a non-finite number), which makes the checkpoint write fail.
func marshalState(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func restoreState(name string, s json.RawMessage, v any) error {
	if len(s) == 0 {
		return fmt.Errorf("%s: the checkpoint has no weighting state", name)
	}
	if err := json.Unmarshal(s, v); err != nil {
		return fmt.Errorf("%s weighting state: %w", name, err)
	}
	return nil
}

// WeightingConfig selects a method and its hyper-parameters.
type WeightingConfig struct {
	Kind    WeightingKind // Fixed (the zero value), RLW, Uncertainty, ...
	Fixed   []float64     // per-task weights for "fixed" (default 1)
	Alpha   float64       // GradNorm asymmetry (default 1.5)
	LR      float64       // learning rate of GradNorm's weights (and of uncertainty's log-variances outside a Trainer, whose optimiser trains them)
	Temp    float64       // DWA temperature (default 2)
	CAGradC float64       // CAGrad c (default 0.5)
	Seed    uint64
}

// NewWeighting builds the method for k tasks.
func NewWeighting(c WeightingConfig, k int) (Weighting, error) {
	if k < 1 {
		return nil, fmt.Errorf("weighting needs at least one task")
	}
	ones := func() []float64 {
		w := make([]float64, k)
		for i := range w {
			w[i] = 1
		}
		return w
	}
	fixed := ones()
	if c.Fixed != nil {
		if len(c.Fixed) != k {
			return nil, fmt.Errorf("%d fixed weights for %d tasks", len(c.Fixed), k)
		}
		copy(fixed, c.Fixed)
	}
	switch c.Kind {
	case "", Fixed:
		return &fixedW{w: fixed}, nil
	case RLW:
		return &rlw{k: k, seed: c.Seed}, nil
	case Uncertainty:
		lr := c.LR
		if lr == 0 {
			lr = 0.01
		}
		return &uncertainty{logVar: make([]float32, k), grad: make([]float32, k), lr: lr}, nil
	case DWA:
		t := c.Temp
		if t == 0 {
			t = 2
		}
		return &dwa{k: k, temp: t, w: ones()}, nil
	case GradNorm:
		a := c.Alpha
		if a == 0 {
			a = 1.5
		}
		lr := c.LR
		if lr == 0 {
			lr = 0.025
		}
		return &gradNorm{alpha: a, lr: lr, w: ones()}, nil
	case MGDA:
		return &gradMethod{kind: MGDA, combine: mgda}, nil
	case PCGrad:
		// the projection order is drawn per step from (seed, step), so a
		// resumed run continues the same sequence
		m := &gradMethod{kind: PCGrad}
		m.combine = func(g [][]float64) ([]float64, []float64) {
			rng := rand.New(rand.NewPCG(c.Seed, uint64(m.step)))
			m.step++
			return pcgrad(g, rng)
		}
		return m, nil
	case CAGrad:
		cc := c.CAGradC
		if cc == 0 {
			cc = 0.5
		}
		return &gradMethod{kind: CAGrad, combine: func(g [][]float64) ([]float64, []float64) { return cagrad(g, cc) }}, nil
	case IMTL:
		return &gradMethod{kind: IMTL, combine: imtlG}, nil
	}
	return nil, fmt.Errorf("unknown weighting %q (want one of %s)", c.Kind, kindList(Weightings))
}

type fixedW struct{ w []float64 }

func (f *fixedW) Kind() WeightingKind                        { return Fixed }
func (f *fixedW) TaskGrads() bool                            { return false }
func (f *fixedW) Weights([]float64) []float64                { return f.w }
func (f *fixedW) Combine([][]float64) ([]float64, []float64) { return nil, nil }
func (f *fixedW) Observe([]float64, []float64)               {}
func (f *fixedW) EndEpoch([]float64)                         {}
func (f *fixedW) State() json.RawMessage                     { return json.RawMessage("{}") }
func (f *fixedW) Restore(json.RawMessage) error              { return nil }

// rlw draws fresh weights softmax(z), z ~ N(0, I), every step (Lin et al.,
// "Reasonable effectiveness of random weighting", TMLR 2022).
type rlw struct {
	k    int
	seed uint64
	step int // draws so far: each draw's generator derives from (seed, step), so a resumed run continues the sequence
}

func (r *rlw) Kind() WeightingKind { return RLW }
func (r *rlw) TaskGrads() bool     { return false }
func (r *rlw) Weights([]float64) []float64 {
	rng := rand.New(rand.NewPCG(r.seed, uint64(r.step)))
	r.step++
	z := make([]float64, r.k)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	return softmax(z, 1)
}
func (r *rlw) Combine([][]float64) ([]float64, []float64) { return nil, nil }
func (r *rlw) Observe([]float64, []float64)               {}
func (r *rlw) EndEpoch([]float64)                         {}
func (r *rlw) State() json.RawMessage {
	return marshalState(stepState{Step: r.step})
}
func (r *rlw) Restore(s json.RawMessage) error {
	var st stepState
	if err := restoreState("rlw", s, &st); err != nil {
		return err
	}
	r.step = st.Step
	return nil
}

type stepState struct {
	Step int `json:"step"`
}

// uncertainty learns s_i = log σ_i² with total loss Σ L_i/(2·e^{s_i}) + s_i/2
// (Kendall, Gal and Cipolla, CVPR 2018, in LibMTL's form). The weight of
// task i is 1/(2e^{s_i}). In training the s_i are parameters of the run's
// optimiser (same kind, same learning rate and schedule, as LibMTL puts
// them in the model's optimiser); used on its own, Observe takes a plain
// gradient step of size lr.
type uncertainty struct {
	logVar  []float32
	grad    []float32
	lr      float64
	managed bool // the trainer's optimiser steps logVar
}

// uncertaintyParam names uncertainty's log-variances in the optimiser.
const uncertaintyParam = "weighting/uncertainty.log_var"

func (u *uncertainty) Learned(losses []float64) (string, []float32, []float32) {
	u.gradient(losses)
	return uncertaintyParam, u.logVar, u.grad
}
func (u *uncertainty) SetLearned(v []float32) { u.logVar = v }

// gradient sets d/ds_i [L_i/(2e^{s_i}) + s_i/2] = ½ − L_i/(2e^{s_i}).
func (u *uncertainty) gradient(losses []float64) {
	for i, l := range losses {
		u.grad[i] = float32(0.5 - l/(2*math.Exp(float64(u.logVar[i]))))
	}
}

func (u *uncertainty) Kind() WeightingKind { return Uncertainty }
func (u *uncertainty) TaskGrads() bool     { return false }
func (u *uncertainty) Weights([]float64) []float64 {
	w := make([]float64, len(u.logVar))
	for i, s := range u.logVar {
		w[i] = 1 / (2 * math.Exp(float64(s)))
	}
	return w
}
func (u *uncertainty) Combine([][]float64) ([]float64, []float64) { return nil, nil }
func (u *uncertainty) Observe(losses []float64, _ []float64) {
	if u.managed {
		return // the trainer's optimiser has stepped them
	}
	u.gradient(losses)
	next := make([]float32, len(u.logVar))
	for i := range next {
		next[i] = float32(float64(u.logVar[i]) - u.lr*float64(u.grad[i]))
	}
	u.logVar = next
}
func (u *uncertainty) EndEpoch([]float64) {}

type uncertaintyState struct {
	LogVar []float32 `json:"log_var"`
}

func (u *uncertainty) State() json.RawMessage {
	return marshalState(uncertaintyState{LogVar: u.logVar})
}
func (u *uncertainty) Restore(s json.RawMessage) error {
	var st uncertaintyState
	if err := restoreState("uncertainty", s, &st); err != nil {
		return err
	}
	if len(st.LogVar) != len(u.logVar) {
		return fmt.Errorf("uncertainty: the checkpoint has %d log-variances for %d tasks", len(st.LogVar), len(u.logVar))
	}
	u.logVar = st.LogVar
	return nil
}

// dwa sets w_i = K·softmax(r/T)_i with r_i = L_i(e−1)/L_i(e−2), the ratio of
// the last two epochs' mean losses (Liu, Johns and Davison, CVPR 2019);
// weights are 1 for the first two epochs.
type dwa struct {
	k       int
	temp    float64
	history [][]float64
	w       []float64
}

func (d *dwa) Kind() WeightingKind                        { return DWA }
func (d *dwa) TaskGrads() bool                            { return false }
func (d *dwa) Weights([]float64) []float64                { return d.w }
func (d *dwa) Combine([][]float64) ([]float64, []float64) { return nil, nil }
func (d *dwa) Observe([]float64, []float64)               {}
func (d *dwa) EndEpoch(l []float64) {
	d.history = append(d.history, append([]float64(nil), l...))
	n := len(d.history)
	if n < 2 {
		return
	}
	r := make([]float64, d.k)
	for i := range r {
		r[i] = d.history[n-1][i] / math.Max(d.history[n-2][i], 1e-12)
	}
	s := softmax(r, d.temp)
	for i := range s {
		d.w[i] = float64(d.k) * s[i]
	}
}

type dwaState struct {
	History [][]float64 `json:"history"`
	W       []float64   `json:"w"`
}

func (d *dwa) State() json.RawMessage {
	return marshalState(dwaState{History: d.history, W: d.w})
}
func (d *dwa) Restore(s json.RawMessage) error {
	var st dwaState
	if err := restoreState("dwa", s, &st); err != nil {
		return err
	}
	if len(st.W) != d.k {
		return fmt.Errorf("dwa: the checkpoint has %d weights for %d tasks", len(st.W), d.k)
	}
	d.history, d.w = st.History, st.W
	return nil
}

// gradNorm learns weights so that each task's weighted gradient norm on the
// last shared layer, G_i = ‖∇_W w_i L_i‖, tracks mean(G)·r_i^α with r_i the
// task's relative inverse training rate L_i(t)/L_i(0) over its mean (Chen
// et al., ICML 2018). The targets are constants; weights are renormalised to
// sum to the number of tasks after every update.
type gradNorm struct {
	alpha, lr float64
	w         []float64
	initial   []float64
}

func (g *gradNorm) Kind() WeightingKind                        { return GradNorm }
func (g *gradNorm) TaskGrads() bool                            { return false }
func (g *gradNorm) Weights([]float64) []float64                { return g.w }
func (g *gradNorm) Combine([][]float64) ([]float64, []float64) { return nil, nil }
func (g *gradNorm) Observe(losses, norms []float64) {
	k := len(g.w)
	if g.initial == nil {
		g.initial = append([]float64(nil), losses...)
	}
	if len(norms) != k {
		return
	}
	ratio := make([]float64, k)
	var meanRatio, meanNorm float64
	for i := range ratio {
		ratio[i] = losses[i] / math.Max(g.initial[i], 1e-12)
		meanRatio += ratio[i] / float64(k)
		meanNorm += norms[i] / float64(k)
	}
	for i := range g.w {
		target := meanNorm * math.Pow(ratio[i]/math.Max(meanRatio, 1e-12), g.alpha)
		// norms[i] = w_i·‖∇L_i‖, so d|G_i − target|/dw_i = sign(·)·‖∇L_i‖
		unit := norms[i] / math.Max(g.w[i], 1e-12)
		g.w[i] -= g.lr * sign(norms[i]-target) * unit
		g.w[i] = math.Max(g.w[i], 1e-3)
	}
	var s float64
	for _, v := range g.w {
		s += v
	}
	for i := range g.w {
		g.w[i] *= float64(k) / s
	}
}
func (g *gradNorm) EndEpoch([]float64) {}

type gradNormState struct {
	W       []float64 `json:"w"`
	Initial []float64 `json:"initial_losses,omitempty"`
}

func (g *gradNorm) State() json.RawMessage {
	return marshalState(gradNormState{W: g.w, Initial: g.initial})
}
func (g *gradNorm) Restore(s json.RawMessage) error {
	var st gradNormState
	if err := restoreState("gradnorm", s, &st); err != nil {
		return err
	}
	if len(st.W) != len(g.w) {
		return fmt.Errorf("gradnorm: the checkpoint has %d weights for %d tasks", len(st.W), len(g.w))
	}
	g.w, g.initial = st.W, st.Initial
	return nil
}

// gradMethod adapts a per-task-gradient combiner.
type gradMethod struct {
	kind    WeightingKind
	combine func([][]float64) ([]float64, []float64)
	step    int // combines so far (pcgrad's random order depends on it)
}

func (m *gradMethod) Kind() WeightingKind { return m.kind }
func (m *gradMethod) TaskGrads() bool     { return true }
func (m *gradMethod) Weights(l []float64) []float64 {
	w := make([]float64, len(l))
	for i := range w {
		w[i] = 1
	}
	return w
}
func (m *gradMethod) Combine(g [][]float64) ([]float64, []float64) { return m.combine(g) }
func (m *gradMethod) Observe([]float64, []float64)                 {}
func (m *gradMethod) EndEpoch([]float64)                           {}
func (m *gradMethod) State() json.RawMessage                       { return marshalState(stepState{Step: m.step}) }
func (m *gradMethod) Restore(s json.RawMessage) error {
	var st stepState
	if err := restoreState(string(m.kind), s, &st); err != nil {
		return err
	}
	m.step = st.Step
	return nil
}

func softmax(z []float64, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v/temp)
	}
	out := make([]float64, len(z))
	var s float64
	for i, v := range z {
		out[i] = math.Exp(v/temp - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func weightedSum(g [][]float64, w []float64) []float64 {
	out := make([]float64, len(g[0]))
	for i, gi := range g {
		for j, v := range gi {
			out[j] += w[i] * v
		}
	}
	return out
}

// minNormWeights finds α on the simplex minimising ‖Σ αᵢ gᵢ‖²: the closed
// form for two tasks, Frank-Wolfe beyond (Sener and Koltun, NeurIPS 2018).
func minNormWeights(g [][]float64) []float64 {
	k := len(g)
	gram := make([][]float64, k)
	for i := range gram {
		gram[i] = make([]float64, k)
		for j := range gram[i] {
			gram[i][j] = dot(g[i], g[j])
		}
	}
	if k == 1 {
		return []float64{1}
	}
	if k == 2 {
		return minNorm2(gram[0][0], gram[0][1], gram[1][1])
	}
	alpha := make([]float64, k)
	for i := range alpha {
		alpha[i] = 1 / float64(k)
	}
	for it := 0; it < 250; it++ {
		// gradient of αᵀMα is 2Mα: move toward the vertex with the smallest
		grad := make([]float64, k)
		for i := range grad {
			grad[i] = dot(gram[i], alpha)
		}
		t := 0
		for i := range grad {
			if grad[i] < grad[t] {
				t = i
			}
		}
		// line search between the current point v1 = Σαg and the vertex g_t
		v1v1 := 0.0
		for i := range alpha {
			v1v1 += alpha[i] * grad[i]
		}
		v1v2 := grad[t]
		v2v2 := gram[t][t]
		gamma := minNorm2(v1v1, v1v2, v2v2)[0]
		done := true
		for i := range alpha {
			na := gamma * alpha[i]
			if i == t {
				na += 1 - gamma
			}
			if math.Abs(na-alpha[i]) > 1e-10 {
				done = false
			}
			alpha[i] = na
		}
		if done {
			break
		}
	}
	return alpha
}

// minNorm2 solves min_γ‖γ·a + (1−γ)·b‖² for γ in [0,1] from a·a, a·b, b·b.
func minNorm2(aa, ab, bb float64) []float64 {
	denom := aa - 2*ab + bb
	var gamma float64
	switch {
	case ab >= aa:
		gamma = 1
	case ab >= bb:
		gamma = 0
	case denom <= 0:
		gamma = 0.5
	default:
		gamma = (bb - ab) / denom
	}
	return []float64{gamma, 1 - gamma}
}

func mgda(g [][]float64) ([]float64, []float64) {
	a := minNormWeights(g)
	return weightedSum(g, a), a
}

// pcgrad projects each task gradient off the normal plane of every other
// task gradient it conflicts with (negative dot product), visiting the
// others in random order, then sums (Yu et al., NeurIPS 2020).
func pcgrad(g [][]float64, rng *rand.Rand) ([]float64, []float64) {
	k := len(g)
	out := make([]float64, len(g[0]))
	for i := range g {
		gi := append([]float64(nil), g[i]...)
		for _, j := range rng.Perm(k) {
			if j == i {
				continue
			}
			if d := dot(gi, g[j]); d < 0 {
				nn := dot(g[j], g[j])
				if nn > 0 {
					for p := range gi {
						gi[p] -= d / nn * g[j][p]
					}
				}
			}
		}
		for p, v := range gi {
			out[p] += v
		}
	}
	ones := make([]float64, k)
	for i := range ones {
		ones[i] = 1
	}
	return out, ones
}

// cagrad finds the update within a ball of radius c‖g₀‖ around the average
// gradient g₀ that maximises the worst task's improvement (Liu et al.,
// NeurIPS 2021): w = argmin_{w∈simplex} g_wᵀg₀ + √φ‖g_w‖, φ = c²‖g₀‖²,
// d = (g₀ + √φ/‖g_w‖·g_w)/(1+c²), as the authors' implementation. The simplex
// problem is solved by exponentiated-gradient descent on the task Gram matrix.
func cagrad(g [][]float64, c float64) ([]float64, []float64) {
	k := len(g)
	gram := make([][]float64, k)
	for i := range gram {
		gram[i] = make([]float64, k)
		for j := range gram[i] {
			gram[i][j] = dot(g[i], g[j])
		}
	}
	// g₀ = mean gradient; g_wᵀg₀ = Σ_i w_i (Σ_j G_ij)/k; ‖g_w‖² = wᵀGw
	g0g0 := 0.0
	b := make([]float64, k)
	for i := range gram {
		for j := range gram[i] {
			b[i] += gram[i][j] / float64(k)
			g0g0 += gram[i][j] / float64(k*k)
		}
	}
	sqrtPhi := c * math.Sqrt(g0g0)
	w := make([]float64, k)
	for i := range w {
		w[i] = 1 / float64(k)
	}
	for it := 0; it < 500; it++ {
		gw := make([]float64, k) // G·w
		for i := range gw {
			gw[i] = dot(gram[i], w)
		}
		nw := math.Sqrt(math.Max(dot(w, gw), 1e-20))
		obj := make([]float64, k)
		for i := range obj {
			obj[i] = b[i] + sqrtPhi*gw[i]/nw
		}
		// exponentiated gradient step keeps w on the simplex
		step := 1.0 / (1 + math.Sqrt(float64(it)))
		mx := math.Inf(-1)
		for i := range obj {
			mx = math.Max(mx, math.Abs(obj[i]))
		}
		if mx == 0 {
			break
		}
		s := 0.0
		for i := range w {
			w[i] *= math.Exp(-step * obj[i] / mx)
			s += w[i]
		}
		for i := range w {
			w[i] /= s
		}
	}
	gwVec := weightedSum(g, w)
	g0 := make([]float64, len(g[0]))
	for _, gi := range g {
		for p, v := range gi {
			g0[p] += v / float64(k)
		}
	}
	nw := math.Sqrt(dot(gwVec, gwVec))
	lambda := 0.0
	if nw > 0 {
		lambda = sqrtPhi / nw
	}
	out := make([]float64, len(g0))
	for p := range out {
		out[p] = (g0[p] + lambda*gwVec[p]) / (1 + c*c)
	}
	ones := make([]float64, k)
	for i := range ones {
		ones[i] = 1
	}
	return out, ones
}

// imtlG finds weights α (summing to 1) whose combined gradient has equal
// projections onto every task's unit gradient (Liu et al., ICLR 2021):
// α_{2..K} = g₁Uᵀ(DUᵀ)⁻¹ with D = [g₁−g_i], U = [u₁−u_i], α₁ = 1 − Σα.
func imtlG(g [][]float64) ([]float64, []float64) {
	k := len(g)
	if k == 1 {
		return append([]float64(nil), g[0]...), []float64{1}
	}
	n := len(g[0])
	unit := make([][]float64, k)
	for i := range g {
		nn := math.Sqrt(dot(g[i], g[i]))
		unit[i] = make([]float64, n)
		for p := range unit[i] {
			if nn > 0 {
				unit[i][p] = g[i][p] / nn
			}
		}
	}
	D := mat.NewDense(k-1, n, nil)
	U := mat.NewDense(k-1, n, nil)
	for i := 1; i < k; i++ {
		for p := 0; p < n; p++ {
			D.Set(i-1, p, g[0][p]-g[i][p])
			U.Set(i-1, p, unit[0][p]-unit[i][p])
		}
	}
	var DU mat.Dense
	DU.Mul(D, U.T())
	var inv mat.Dense
	alpha := make([]float64, k)
	if err := inv.Inverse(&DU); err != nil {
		// degenerate (e.g. parallel gradients): fall back to equal weights
		for i := range alpha {
			alpha[i] = 1 / float64(k)
		}
		return weightedSum(g, alpha), alpha
	}
	g1U := mat.NewVecDense(k-1, nil)
	g1U.MulVec(U, mat.NewVecDense(n, g[0]))
	var a mat.VecDense
	a.MulVec(inv.T(), g1U)
	s := 0.0
	for i := 1; i < k; i++ {
		alpha[i] = a.AtVec(i - 1)
		s += alpha[i]
	}
	alpha[0] = 1 - s
	return weightedSum(g, alpha), alpha
}
