package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseClassWeights(t *testing.T) {
	got, err := parseClassWeights([]string{"kind=1,2.5, 0", " other =3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{"kind": {1, 2.5, 0}, "other": {3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"kind", "=1,2", "kind=", "kind=1,x"} {
		if _, err := parseClassWeights([]string{bad}); err == nil || !strings.Contains(err.Error(), "--class-weight") {
			t.Errorf("%q: got %v, want a --class-weight error", bad, err)
		}
	}
}
