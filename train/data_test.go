package train

import (
	"math"
	"strings"
	"testing"
)

func TestLoadCSV(t *testing.T) {
	csv := "a,b,label,score\n1,2,0,0.5\n3,4,1,\n5,6,2,nan\n"
	d, err := LoadCSV(strings.NewReader(csv), map[string][]string{"x": {"a", "b"}, "label": {"label"}, "score": {"score"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows != 3 {
		t.Fatalf("rows %d", d.Rows)
	}
	x := d.Arrays["x"].Float32s()
	if d.Arrays["x"].Shape[1] != 2 || x[2] != 3 || x[5] != 6 {
		t.Errorf("x = %v %v", d.Arrays["x"].Shape, x)
	}
	s := d.Arrays["score"].Float32s()
	if s[0] != 0.5 || !math.IsNaN(float64(s[1])) || !math.IsNaN(float64(s[2])) {
		t.Errorf("empty and nan cells must be NaN (missing labels): %v", s)
	}
	if _, err := LoadCSV(strings.NewReader(csv), map[string][]string{"x": {"nope"}}); err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Errorf("unknown column: %v", err)
	}
	if _, err := LoadCSV(strings.NewReader("a\nzz\n"), map[string][]string{"x": {"a"}}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad number: %v", err)
	}
}

func TestBatchesAndSplit(t *testing.T) {
	d, _ := LoadCSV(strings.NewReader("a\n1\n2\n3\n4\n5\n"), map[string][]string{"a": {"a"}})
	b := d.Batches(2, false, 0, 0)
	if len(b) != 3 || len(b[2]) != 1 || b[0][0] != 0 || b[2][0] != 4 {
		t.Errorf("in-order batches %v", b)
	}
	s1, s2 := d.Batches(2, true, 7, 3), d.Batches(2, true, 7, 3)
	if strings.Join(strings.Fields(fmtInts(s1)), "") != strings.Join(strings.Fields(fmtInts(s2)), "") {
		t.Errorf("shuffled batches must depend only on seed and epoch")
	}
	tr, va, err := d.Split(0.4)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Rows != 3 || va.Rows != 2 || va.Arrays["a"].Float32s()[0] != 4 {
		t.Errorf("split: %d/%d %v", tr.Rows, va.Rows, va.Arrays["a"].Float32s())
	}
}

func fmtInts(b [][]int) string {
	var sb strings.Builder
	for _, r := range b {
		for _, v := range r {
			sb.WriteString(string(rune('a' + v)))
		}
		sb.WriteString(" ")
	}
	return sb.String()
}
