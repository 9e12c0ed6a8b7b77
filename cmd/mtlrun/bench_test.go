package main

import (
	"slices"
	"testing"
	"time"
)

func TestPairedRatios(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	for _, tc := range []struct {
		name string
		a, b []time.Duration
		want []float64
	}{
		{"sorted per pair", ms(10, 30, 20), ms(20, 30, 10), []float64{0.5, 1, 2}},
		// a drift that moves both runtimes alike leaves each pair's ratio alone
		{"drift", ms(9, 18, 27), ms(10, 20, 30), []float64{0.9, 0.9, 0.9}},
		{"zero divisor skipped", ms(5, 5), ms(0, 10), []float64{0.5}},
		{"shorter list bounds the pairs", ms(4, 4, 4), ms(2), []float64{2}},
		{"none", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pairedRatios(tc.a, tc.b)
			if !slices.EqualFunc(got, tc.want, func(x, y float64) bool { return x-y < 1e-12 && y-x < 1e-12 }) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    int
		want float64
	}{{0, 1}, {10, 2}, {50, 6}, {90, 10}, {100, 10}} {
		if got := quantile(v, tc.p); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := quantile(nil, 50); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}
