package train

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// ConfigError is a recipe setting that cannot work as given. Field names the
// setting as the command line spells it (e.g. "--batch"); the message says
// how to fix it.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "train: " + e.Field + ": " + e.Msg }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// OnNaNAction is what a non-finite loss or gradient does during training;
// its value is the name the command line uses. The zero value is OnNaNStop.
type OnNaNAction string

// The OnNaN actions.
const (
	OnNaNStop      OnNaNAction = "stop"       // stop with an error naming the step and task (the default)
	OnNaNSkipBatch OnNaNAction = "skip-batch" // leave the weights unchanged for that batch and go on
)

// ParseOnNaN reads an OnNaN action as the command line spells it.
// An empty name is the zero value, the default.
func ParseOnNaN(s string) (OnNaNAction, error) {
	a := OnNaNAction(s)
	if !oneOf(a, []OnNaNAction{"", OnNaNStop, OnNaNSkipBatch}) {
		return "", cfgErr("--on-nan", "unknown action %q (want %s or %s)", s, OnNaNStop, OnNaNSkipBatch)
	}
	return a, nil
}

// Validate checks the recipe on its own (without a model or data): every
// setting must be in range and must have an effect. Zero values keep their
// documented defaults. NewTrainer calls it.
func (c Config) Validate() error {
	if len(c.Losses) == 0 {
		return cfgErr("--loss", "no task has a loss: give --loss OUTPUT=KIND (kinds: %s)", kindList(LossKinds))
	}
	for _, name := range sortedKeys(c.Losses) {
		if err := checkLoss(c.Losses[name]); err != nil {
			return cfgErr("--loss", "output %q: %s", name, err)
		}
	}
	if !oneOf(c.Weighting.Kind, append([]WeightingKind{""}, Weightings...)) {
		return cfgErr("--weighting", "unknown method %q (want one of %s)", c.Weighting.Kind, kindList(Weightings))
	}
	for _, name := range sortedKeys(c.LossWeights) {
		w := c.LossWeights[name]
		if _, ok := c.Losses[name]; !ok {
			return cfgErr("--loss-weights", "names %q, which has no loss (give it one with --loss %s=KIND, or drop the weight)", name, name)
		}
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return cfgErr("--loss-weights", "%s=%v: a weight must be a finite number ≥ 0", name, w)
		}
	}
	for _, name := range sortedKeys(c.ClassWeights) {
		loss, ok := c.Losses[name]
		if !ok {
			return cfgErr("--class-weight", "names %q, which has no loss (give it one with --loss %s=KIND, or drop the weights)", name, name)
		}
		if k, builtin := loss.(LossKind); !builtin || !k.Classification() {
			return cfgErr("--class-weight", "%s: class weights apply to the built-in classification losses, not %s", name, loss.Name())
		}
		for c, w := range c.ClassWeights[name] {
			if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
				return cfgErr("--class-weight", "%s: weight %v of class %d is not a finite number ≥ 0", name, w, c)
			}
		}
	}
	if len(c.LossWeights) > 0 && c.Weighting.Kind != "" && c.Weighting.Kind != "fixed" {
		return cfgErr("--loss-weights", "fixed task weights only apply to --weighting fixed; %s sets the weights itself (drop --loss-weights, or use --weighting fixed)", c.Weighting.Kind)
	}
	o := c.Optimizer
	if !o.Kind.valid() {
		return cfgErr("--optimizer", "unknown optimizer %q (want sgd, adam or adamw)", o.Kind)
	}
	if !(o.LR > 0) || math.IsInf(o.LR, 0) {
		return cfgErr("--lr", "the learning rate must be a positive number, got %v", o.LR)
	}
	if math.IsNaN(o.Momentum) || o.Momentum < 0 || o.Momentum >= 1 {
		return cfgErr("--momentum", "want 0 ≤ momentum < 1, got %v", o.Momentum)
	}
	if o.Momentum != 0 && o.Kind != "" && o.Kind != SGD {
		return cfgErr("--momentum", "momentum applies to --optimizer sgd only; %s keeps its own moment estimates (drop --momentum, or use sgd)", o.Kind)
	}
	if math.IsNaN(o.WeightDecay) || math.IsInf(o.WeightDecay, 0) || (o.WeightDecay < 0 && o.Kind != AdamW) {
		return cfgErr("--weight-decay", "want a finite number ≥ 0, got %v", o.WeightDecay)
	}
	for _, b := range []struct {
		name string
		v    float64
	}{{"beta1", o.Beta1}, {"beta2", o.Beta2}} {
		if math.IsNaN(b.v) || b.v < 0 || b.v >= 1 {
			return cfgErr(b.name, "want 0 ≤ %s < 1, got %v", b.name, b.v)
		}
	}
	if math.IsNaN(o.Eps) || o.Eps < 0 {
		return cfgErr("eps", "want eps ≥ 0, got %v", o.Eps)
	}
	if err := c.Schedule.validate(); err != nil {
		return err
	}
	if c.BatchSize < 0 {
		return cfgErr("--batch", "the batch size must be at least 1, got %d", c.BatchSize)
	}
	if c.Epochs < 0 {
		return cfgErr("--epochs", "the number of epochs must be at least 1, got %d", c.Epochs)
	}
	if math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0) || c.ClipNorm < 0 {
		return cfgErr("--clip-norm", "want a finite norm > 0, or 0 for no clipping; got %v", c.ClipNorm)
	}
	if math.IsNaN(c.SoftShare) || math.IsInf(c.SoftShare, 0) || c.SoftShare < 0 {
		return cfgErr("--soft-share", "want a finite λ > 0, or 0 for no soft sharing; got %v", c.SoftShare)
	}
	if c.EarlyStop < 0 {
		return cfgErr("--early-stop", "the patience must be at least 1 epoch (0: off), got %d", c.EarlyStop)
	}
	if c.CheckpointEvery < 0 {
		return cfgErr("--checkpoint-every", "want a number of steps ≥ 1 (0: at the end of every epoch only), got %d", c.CheckpointEvery)
	}
	if c.CheckpointEvery > 0 && c.Checkpoint == "" {
		return cfgErr("--checkpoint-every", "needs --checkpoint DIR to say where checkpoints go")
	}
	if !oneOf(c.OnNaN, []OnNaNAction{"", OnNaNStop, OnNaNSkipBatch}) {
		return cfgErr("--on-nan", "unknown action %q (want %s or %s)", c.OnNaN, OnNaNStop, OnNaNSkipBatch)
	}
	switch c.Freeze {
	case "", "none", "trunk", "heads":
	default:
		if _, err := regexp.Compile(c.Freeze); err != nil {
			return cfgErr("--freeze", "%q is neither none/trunk/heads nor a valid regular expression: %v", c.Freeze, err)
		}
	}
	w := c.Weighting
	for _, v := range []struct {
		name string
		x    float64
	}{{"weighting alpha", w.Alpha}, {"weighting lr", w.LR}, {"weighting temperature", w.Temp}, {"cagrad c", w.CAGradC}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) || v.x < 0 {
			return cfgErr(v.name, "want a finite number ≥ 0 (0: the default), got %v", v.x)
		}
	}
	return nil
}

func (s Schedule) validate() error {
	if !oneOf(s.Kind, append([]ScheduleKind{""}, ScheduleKinds...)) {
		return cfgErr("--schedule", "unknown schedule %q (want %s)", s.Kind, strings.Join(kindStrings(ScheduleKinds), ", "))
	}
	if s.StepSize < 0 {
		return cfgErr("--step-size", "want at least 1 epoch between decays, got %d", s.StepSize)
	}
	if math.IsNaN(s.Gamma) || math.IsInf(s.Gamma, 0) || s.Gamma < 0 {
		return cfgErr("--gamma", "want a decay factor > 0, got %v", s.Gamma)
	}
	if math.IsNaN(s.MinLR) || math.IsInf(s.MinLR, 0) || s.MinLR < 0 {
		return cfgErr("min lr", "want a finite rate ≥ 0, got %v", s.MinLR)
	}
	return nil
}

// checkLoss refuses a missing loss and an unknown built-in kind.
func checkLoss(l Loss) error {
	if l == nil {
		return fmt.Errorf("no loss given (nil)")
	}
	if k, ok := l.(LossKind); ok {
		if _, known := lossDefs[k]; !known {
			return fmt.Errorf("unknown loss %q (want one of %s)", string(k), kindList(LossKinds))
		}
	}
	return nil
}

func oneOf[K comparable](s K, set []K) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
