package train

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

// TestParseKinds: every kind's name parses back to the kind (the command
// line and checkpoints use the names); an unknown name is a *ConfigError
// naming the flag.
func TestParseKinds(t *testing.T) {
	for _, k := range LossKinds {
		if got, err := ParseLoss(string(k)); got != k || err != nil {
			t.Errorf("ParseLoss(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range Weightings {
		if got, err := ParseWeighting(string(k)); got != k || err != nil {
			t.Errorf("ParseWeighting(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range OptimizerKinds {
		if got, err := ParseOptimizer(string(k)); got != k || err != nil {
			t.Errorf("ParseOptimizer(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range ScheduleKinds {
		if got, err := ParseSchedule(string(k)); got != k || err != nil {
			t.Errorf("ParseSchedule(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range []OnNaNAction{OnNaNStop, OnNaNSkipBatch} {
		if got, err := ParseOnNaN(string(k)); got != k || err != nil {
			t.Errorf("ParseOnNaN(%q) = %q, %v", k, got, err)
		}
	}
	for _, c := range []struct {
		parse func(string) error
		field string
		want  string
	}{
		{func(s string) error { _, err := ParseLoss(s); return err }, "--loss", `unknown loss "hinge"`},
		{func(s string) error { _, err := ParseWeighting(s); return err }, "--weighting", `unknown method "hinge"`},
		{func(s string) error { _, err := ParseOptimizer(s); return err }, "--optimizer", `unknown optimizer "hinge"`},
		{func(s string) error { _, err := ParseSchedule(s); return err }, "--schedule", `unknown schedule "hinge"`},
		{func(s string) error { _, err := ParseOnNaN(s); return err }, "--on-nan", `unknown action "hinge"`},
		{func(s string) error { _, err := ParseLosses(map[string]string{"a": "mse", "b": s}); return err }, "--loss", `output "b": unknown loss "hinge"`},
	} {
		err := c.parse("hinge")
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s hinge: got %v, want a ConfigError for %s", c.field, err, c.field)
		} else if !strings.Contains(ce.Msg, c.want) {
			t.Errorf("%s: %q does not say %q", c.field, ce.Msg, c.want)
		}
	}
	// an empty name is the zero value, the default, as Validate takes it;
	// a loss has no default
	if _, err := ParseLoss(""); err == nil {
		t.Error(`ParseLoss("") gave no error`)
	}
	for name, err := range map[string]error{
		"weighting": func() error { _, err := ParseWeighting(""); return err }(),
		"optimizer": func() error { _, err := ParseOptimizer(""); return err }(),
		"schedule":  func() error { _, err := ParseSchedule(""); return err }(),
		"on-nan":    func() error { _, err := ParseOnNaN(""); return err }(),
	} {
		if err != nil {
			t.Errorf("%s \"\": %v, want the default", name, err)
		}
	}
}

// doubledMSE is a loss from outside the built-in table: twice MSE.
type doubledMSE struct{}

func (doubledMSE) Name() string         { return "doubled_mse" }
func (doubledMSE) Classification() bool { return false }
func (doubledMSE) Eval(pred, target *tensor.Tensor, rw []float64) (LossResult, error) {
	r, err := MSE.Eval(pred, target, rw)
	if err != nil {
		return r, err
	}
	r.Loss *= 2
	g := r.Grad.Float32s()
	for i := range g {
		g[i] *= 2
	}
	return r, nil
}

// TestCustomLoss: a Loss implemented outside the package trains like the
// built-in loss it equals: twice MSE under SGD at half the rate takes
// exactly the steps of MSE (scaling by 2 commutes with float32 rounding),
// and is reported under its own name with regression metrics.
func TestCustomLoss(t *testing.T) {
	d := tinyData(12, 3, 2, 1)
	run := func(losses map[string]Loss, lr float64) (map[string][]float32, *Result) {
		m := tinyModel(2, 3, 4, "Tanh", 1)
		res, err := Fit(context.Background(), m, Config{Losses: losses, Optimizer: OptimizerConfig{Kind: SGD, LR: lr},
			BatchSize: 4, Epochs: 2, Seed: 2}, d, nil, Callbacks{})
		if err != nil {
			t.Fatal(err)
		}
		return floatParams(m), res
	}
	want, ref := run(map[string]Loss{"task1": MSE, "task2": MSE}, 0.1)
	got, res := run(map[string]Loss{"task1": doubledMSE{}, "task2": doubledMSE{}}, 0.05)
	if len(want) == 0 {
		t.Fatal("no parameters")
	}
	sameWeights(t, "doubled MSE at half the rate", want, got)
	last := res.Epochs[len(res.Epochs)-1].Train["task1"]
	refLast := ref.Epochs[len(ref.Epochs)-1].Train["task1"]
	if last.Kind != "doubled_mse" || last.MSE != refLast.MSE || last.Loss != 2*refLast.Loss {
		t.Errorf("custom loss reported as %+v, want kind doubled_mse, mse %v, loss %v", last, refLast.MSE, 2*refLast.Loss)
	}
}
