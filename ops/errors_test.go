package ops

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestInputChecks(t *testing.T) {
	f := tensor.From([]int{1}, []float32{1})
	i := tensor.From([]int{1}, []int64{1})
	cases := []struct {
		name  string
		err   error
		index int    // the *InputError's Index, or -2 for a plain error, -3 for nil
		want  string // in the message
	}{
		{"enough inputs", NeedInputs([]*tensor.Tensor{f, nil}, 1), -3, ""},
		{"too few", NeedInputs([]*tensor.Tensor{f}, 2), -2, "need at least 2 inputs, got 1"},
		{"required missing", NeedInputs([]*tensor.Tensor{f, nil, f}, 2), 1, "input 1: required input is missing"},
		{"dtype allowed", NeedDType([]*tensor.Tensor{f, i}, 1, tensor.Float32, tensor.Int64), -3, ""},
		{"dtype refused", NeedDType([]*tensor.Tensor{f, i}, 1, tensor.Float32), 1, "input 1: dtype int64 not supported"},
		{"caller's feed", BadFeed("x", "nil tensor"), -1, `input "x": nil tensor`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.index == -3 {
				if c.err != nil {
					t.Fatalf("err = %v, want nil", c.err)
				}
				return
			}
			if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", c.err, c.want)
			}
			var ie *InputError
			if got := errors.As(c.err, &ie); got != (c.index != -2) {
				t.Fatalf("errors.As(*InputError) = %v for %v", got, c.err)
			}
			if ie != nil && ie.Index != c.index {
				t.Errorf("Index = %d, want %d", ie.Index, c.index)
			}
		})
	}
}

func TestRegisteredListsTheRegistry(t *testing.T) {
	Define(Desc{Domain: "test.ops", Type: "Probe", Since: 1, Kernel: func(*Config) (Op, error) { return nil, nil }})
	got := Registered()
	if !sort.StringsAreSorted(got) {
		t.Errorf("Registered() is not sorted: %v", got)
	}
	found := false
	for _, n := range got {
		if n == "test.ops:Probe" {
			found = true
		}
	}
	if !found {
		t.Errorf("Registered() = %v, missing test.ops:Probe", got)
	}
}
