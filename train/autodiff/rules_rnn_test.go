package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// recurrentGradCases are the finite-difference checks of the LSTM, GRU and
// RNN rules.
func recurrentGradCases() []gradCase {
	rng := rand.New(rand.NewPCG(3, 4))
	r := func(shape ...int) *tensor.Tensor {
		x := randT(rng, false, shape...)
		for i, v := range x.Float64s() {
			x.Float64s()[i] = v * 0.5
		}
		return x
	}
	lens := tensor.From([]int{3}, []int32{4, 2, 3})
	str := func(s string) graph.Attr { return graph.Attr{Type: graph.AttrString, String: s} }
	const T, B, I, H = 4, 3, 2, 3
	return []gradCase{
		{name: "lstm_forward", op: "LSTM", outputs: 3, attrs: graph.Attrs{"hidden_size": attrInt(H)},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H)}},
		{name: "lstm_bidirectional_lens_states_peepholes", op: "LSTM", outputs: 3,
			attrs:  graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional")},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, 4*H, I), r(2, 4*H, H), r(2, 8*H), lens, r(2, B, H), r(2, B, H), r(2, 3*H)}},
		{name: "lstm_reverse_layout1", op: "LSTM", outputs: 2, opset: 14,
			attrs:  graph.Attrs{"hidden_size": attrInt(H), "direction": str("reverse"), "layout": attrInt(1)},
			inputs: []*tensor.Tensor{r(B, T, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H), lens}},
		{name: "gru_lbr1_bidirectional", op: "GRU", outputs: 2,
			attrs:  graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional"), "linear_before_reset": attrInt(1)},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, 3*H, I), r(2, 3*H, H), r(2, 6*H), lens, r(2, B, H)}},
		{name: "gru_lbr0", op: "GRU", outputs: 2,
			attrs:  graph.Attrs{"hidden_size": attrInt(H)},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 3*H, I), r(1, 3*H, H), r(1, 6*H), nil, r(1, B, H)}},
		{name: "rnn_bidirectional_lens_state", op: "RNN", outputs: 2,
			attrs:  graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional")},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, H, I), r(2, H, H), r(2, 2*H), lens, r(2, B, H)}},
		{name: "rnn_forward_layout1", op: "RNN", outputs: 2, opset: 14,
			attrs:  graph.Attrs{"hidden_size": attrInt(H), "layout": attrInt(1)},
			inputs: []*tensor.Tensor{r(B, T, I), r(1, H, I), r(1, H, H), r(1, 2*H)}},
		// X data, not differentiated: the rules skip its gradient (dX)
		{name: "lstm_x_constant", op: "LSTM", outputs: 3, attrs: graph.Attrs{"hidden_size": attrInt(H)}, constant: map[int]bool{0: true},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H)}},
		// float32: gate gradients packed and multiplied in blocks of
		// gradBlockRows rows as the steps go (350 rows: a short block, then a full one)
		{name: "lstm_x_constant_long", op: "LSTM", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H)}, constant: map[int]bool{0: true},
			inputs: []*tensor.Tensor{r(70, 5, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H), nil, r(1, 5, H), r(1, 5, H)}},
		// the same with [H | X | 1] 8 wide (a 6-row block and 2 leftover
		// rows of the packed zᵀ) and 7 batch rows (blocks of 27, 27 and 6
		// steps)
		{name: "lstm_x_constant_wide_long", op: "LSTM", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(4)}, constant: map[int]bool{0: true},
			inputs: []*tensor.Tensor{r(60, 7, 3), r(1, 16, 3), r(1, 16, 4), r(1, 32), nil, r(1, 7, 4), r(1, 7, 4)}},
		{name: "gru_x_constant_lens", op: "GRU", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H)}, constant: map[int]bool{0: true},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 3*H, I), r(1, 3*H, H), r(1, 6*H), lens, r(1, B, H)}},
		{name: "rnn_x_constant", op: "RNN", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H)}, constant: map[int]bool{0: true},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, H, I), r(1, H, H), r(1, 2*H)}},
		// functions other than the defaults: every derivative is taken from
		// the function's output (alpha and beta consumed in order by the
		// functions that have them)
		{name: "lstm_activations", op: "LSTM", outputs: 3, attrs: graph.Attrs{"hidden_size": attrInt(H),
			"activations": strs("HardSigmoid", "Elu", "ScaledTanh"), "activation_alpha": attrFloats(0.3, 0.7, 1.3), "activation_beta": attrFloats(0.45, 0.8)},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H), nil, r(1, B, H), r(1, B, H)}},
		{name: "lstm_activations_bidirectional_lens_peepholes", op: "LSTM", outputs: 3, attrs: graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional"),
			"activations": strs("Sigmoid", "Softplus", "Softsign", "LeakyRelu", "Affine", "Tanh"), "activation_alpha": attrFloats(0.1, 0.9), "activation_beta": attrFloats(0.2)},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, 4*H, I), r(2, 4*H, H), r(2, 8*H), lens, r(2, B, H), r(2, B, H), r(2, 3*H)}},
		// float32 tapes: the weight gradients in blocks as the steps go
		{name: "lstm_activations_x_constant_long", op: "LSTM", outputs: 2, constant: map[int]bool{0: true}, attrs: graph.Attrs{"hidden_size": attrInt(4),
			"activations": strs("HardSigmoid", "Softsign", "Softplus")},
			inputs: []*tensor.Tensor{r(60, 7, 3), r(1, 16, 3), r(1, 16, 4), r(1, 32), nil, r(1, 7, 4), r(1, 7, 4)}},
		{name: "gru_lbr1_activations", op: "GRU", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H), "linear_before_reset": attrInt(1),
			"activations": strs("HardSigmoid", "Relu")},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, 3*H, I), r(1, 3*H, H), r(1, 6*H), lens, r(1, B, H)}},
		{name: "gru_lbr0_activations_bidirectional", op: "GRU", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional"),
			"activations": strs("Sigmoid", "Softsign", "HardSigmoid", "Tanh")},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, 3*H, I), r(2, 3*H, H), r(2, 6*H), nil, r(2, B, H)}},
		{name: "rnn_relu", op: "RNN", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H), "activations": strs("Relu")},
			inputs: []*tensor.Tensor{r(T, B, I), r(1, H, I), r(1, H, H), r(1, 2*H), nil, r(1, B, H)}},
		{name: "rnn_activations_bidirectional_lens", op: "RNN", outputs: 2, attrs: graph.Attrs{"hidden_size": attrInt(H), "direction": str("bidirectional"),
			"activations": strs("ThresholdedRelu", "Softplus"), "activation_alpha": attrFloats(0.05)},
			inputs: []*tensor.Tensor{r(T, B, I), r(2, H, I), r(2, H, H), r(2, 2*H), lens, r(2, B, H)}},
		{name: "rnn_relu_x_constant_long", op: "RNN", outputs: 2, constant: map[int]bool{0: true}, attrs: graph.Attrs{"hidden_size": attrInt(H), "activations": strs("Relu")},
			inputs: []*tensor.Tensor{r(50, 5, I), r(1, H, I), r(1, H, H), r(1, 2*H)}},
	}
}

func strs(v ...string) graph.Attr { return graph.Attr{Type: graph.AttrStrings, Strings: v} }

func attrFloats(v ...float32) graph.Attr { return graph.Attr{Type: graph.AttrFloats, Floats: v} }

func TestRecurrentGradients(t *testing.T) {
	for _, c := range recurrentGradCases() {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c) })
	}
}

// TestTrainingForwardIsInference: the training forward pass of LSTM, GRU and RNN
// is the inference kernel itself, so its outputs are bitwise those of a
// runtime session (float32, which runs the fused cells where the CPU has
// them) for the same weights and input.
func TestTrainingForwardIsInference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	r := func(shape ...int) *tensor.Tensor {
		v := make([]float32, prod(shape))
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.5)
		}
		return tensor.From(shape, v)
	}
	str := func(s string) graph.Attr { return graph.Attr{Type: graph.AttrString, String: s} }
	lens := tensor.From([]int{3}, []int32{5, 2, 4})
	const T, B = 5, 3
	cases := []struct {
		name  string
		op    string
		attrs graph.Attrs
		in    func(I, H int) []*tensor.Tensor
		outs  int
	}{
		{"lstm", "LSTM", graph.Attrs{}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(T, B, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H)}
		}, 3},
		{"lstm_bidirectional_lens_states", "LSTM", graph.Attrs{"direction": str("bidirectional")}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(T, B, I), r(2, 4*H, I), r(2, 4*H, H), r(2, 8*H), lens, r(2, B, H), r(2, B, H)}
		}, 3},
		{"lstm_peepholes_reverse", "LSTM", graph.Attrs{"direction": str("reverse")}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(T, B, I), r(1, 4*H, I), r(1, 4*H, H), r(1, 8*H), nil, nil, nil, r(1, 3*H)}
		}, 2},
		{"gru_lbr0_layout1_lens", "GRU", graph.Attrs{"layout": attrInt(1)}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(B, T, I), r(1, 3*H, I), r(1, 3*H, H), r(1, 6*H), lens}
		}, 2},
		{"gru_lbr1_bidirectional", "GRU", graph.Attrs{"direction": str("bidirectional"), "linear_before_reset": attrInt(1)}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(T, B, I), r(2, 3*H, I), r(2, 3*H, H), r(2, 6*H), nil, r(2, B, H)}
		}, 2},
		{"rnn_bidirectional_lens_state", "RNN", graph.Attrs{"direction": str("bidirectional")}, func(I, H int) []*tensor.Tensor {
			return []*tensor.Tensor{r(T, B, I), r(2, H, I), r(2, H, H), r(2, 2*H), lens, r(2, B, H)}
		}, 2},
	}
	for _, c := range cases {
		for _, sz := range [][2]int{{4, 16}, {20, 5}} {
			I, H := sz[0], sz[1]
			in := c.in(I, H)
			attrs := graph.Attrs{"hidden_size": attrInt(int64(H))}
			for k, v := range c.attrs {
				attrs[k] = v
			}
			g := &graph.Graph{Name: c.name}
			n := &graph.Node{Name: c.name, OpType: c.op, Attrs: attrs}
			var params, outs []string
			for i, x := range in {
				if x == nil {
					n.Inputs = append(n.Inputs, "")
					continue
				}
				name := fmt.Sprintf("in%d", i)
				n.Inputs = append(n.Inputs, name)
				g.AddInitializer(name, x)
				if x.DType == tensor.Float32 && i > 0 {
					params = append(params, name)
				}
			}
			for i := 0; i < c.outs; i++ {
				o := fmt.Sprintf("out%d", i)
				n.Outputs, outs = append(n.Outputs, o), append(outs, o)
				g.Outputs = append(g.Outputs, graph.ValueInfo{Name: o, DType: tensor.Float32, Kind: "tensor"})
			}
			g.Nodes = []*graph.Node{n}
			m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 14}}
			prog, err := NewProgram(m, outs, params)
			if err != nil {
				t.Fatal(err)
			}
			tape, err := prog.Forward(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				sess, err := runtime.NewSession(m, runtime.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				want, err := sess.Run(nil, outs...)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range outs {
					a, b := tape.Value(o).Float32s(), want[o].Float32s()
					if len(a) != len(b) {
						t.Fatalf("%s I=%d H=%d: %s has %d elements, inference %d", c.name, I, H, o, len(a), len(b))
					}
					for i := range b {
						if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
							t.Fatalf("%s I=%d H=%d threads %d: %s[%d] = %v in training, %v in inference", c.name, I, H, threads, o, i, a[i], b[i])
						}
					}
				}
			}
		}
	}
}

// TestRecurrentFloat32MatchesFloat64: the float32 tape (vector activations
// of ops/linalg, fused inference cells) gives the float64 gradients, which
// TestRecurrentGradients checks against finite differences, to float32
// precision.
func TestRecurrentFloat32MatchesFloat64(t *testing.T) {
	to32 := func(x *tensor.Tensor) *tensor.Tensor {
		if x == nil || x.DType != tensor.Float64 {
			return x
		}
		v := make([]float32, x.Len())
		for i, f := range x.Float64s() {
			v[i] = float32(f)
		}
		return tensor.From(append([]int(nil), x.Shape...), v)
	}
	grads := func(gc gradCase) map[string]*tensor.Tensor {
		m, outs, params := gc.build()
		prog, err := NewProgram(m, outs, params)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := prog.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		gy := map[string]*tensor.Tensor{}
		for i, o := range outs {
			y := tape.Value(o)
			w := make([]float64, y.Len())
			for k := range w {
				w[k] = math.Sin(float64(3*k + i))
			}
			gy[o] = tensor.From(append([]int(nil), y.Shape...), w)
			if y.DType == tensor.Float32 {
				gy[o] = to32(gy[o])
			}
		}
		g, err := tape.Backward(gy)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// float32 only (too large for finite differences): 16 hidden units,
	// whose gate blocks fill whole 16-column panels, so each step's gate
	// gradients go straight into the weight-gradient block
	// (linalg.LSTMCellGradPack's vector kernels)
	rng := rand.New(rand.NewPCG(9, 10))
	r := func(shape ...int) *tensor.Tensor {
		x := randT(rng, false, shape...)
		for i, v := range x.Float64s() {
			x.Float64s()[i] = v * 0.5
		}
		return x
	}
	const wide = 16
	cases := append(recurrentGradCases(), gradCase{name: "lstm_x_constant_h16_long", op: "LSTM", outputs: 2,
		attrs: graph.Attrs{"hidden_size": attrInt(wide)}, constant: map[int]bool{0: true},
		inputs: []*tensor.Tensor{r(60, 7, 2), r(1, 4*wide, 2), r(1, 4*wide, wide), r(1, 8*wide), nil, r(1, 7, wide), r(1, 7, wide)}})
	for _, gc := range cases {
		t.Run(gc.name, func(t *testing.T) {
			want := grads(gc)
			gc32 := gc
			gc32.inputs = make([]*tensor.Tensor, len(gc.inputs))
			for i, x := range gc.inputs {
				gc32.inputs[i] = to32(x)
			}
			got := grads(gc32)
			// observed ≤ 5.1e-7 (RNN), ≤ 2.1e-7 (LSTM, GRU) over 4 steps;
			// over 70 steps the float32 rounding of the recurrence adds up
			// (the same with the gradients packed per block or all at once)
			tol := 1e-6
			if strings.HasSuffix(gc.name, "_long") {
				tol = 1e-5
			}
			for p, w := range want {
				wv := w.Float64s()
				gv, err := tensor.AsFloat64(got[p])
				if err != nil {
					t.Fatal(err)
				}
				scale := 0.0
				for _, v := range wv {
					scale = max(scale, math.Abs(v))
				}
				worst := 0.0
				for i := range wv {
					d := math.Abs(gv[i] - wv[i])
					worst = max(worst, d/max(scale, 1))
					if d > tol*max(scale, 1) {
						t.Fatalf("d/d %s[%d]: float32 %g, float64 %g", p, i, gv[i], wv[i])
					}
				}
				t.Logf("d/d %s: worst difference %.2g of the largest gradient", p, worst)
			}
		})
	}
}

// TestRecurrentTapeReuse: gradients from a tape built on buffers that
// released tapes of other recurrent nodes left behind (stale values, other
// sizes, sequence lengths) are bitwise those of a fresh tape, and a
// released tape refuses Backward.
func TestRecurrentTapeReuse(t *testing.T) {
	type run struct {
		tape *Tape
		gy   map[string]*tensor.Tensor
	}
	forward := func(gc gradCase) run {
		gc.inputs = append([]*tensor.Tensor(nil), gc.inputs...)
		for i, x := range gc.inputs {
			if x != nil && x.DType == tensor.Float64 {
				v := make([]float32, x.Len())
				for k, f := range x.Float64s() {
					v[k] = float32(f)
				}
				gc.inputs[i] = tensor.From(append([]int(nil), x.Shape...), v)
			}
		}
		m, outs, params := gc.build()
		prog, err := NewProgram(m, outs, params)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := prog.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		gy := map[string]*tensor.Tensor{}
		for i, o := range outs {
			y := tape.Value(o)
			w := make([]float32, y.Len())
			for k := range w {
				w[k] = float32(math.Sin(float64(3*k + i)))
			}
			gy[o] = tensor.From(append([]int(nil), y.Shape...), w)
		}
		return run{tape, gy}
	}
	grads := func(gc gradCase) map[string]*tensor.Tensor {
		r := forward(gc)
		g, err := r.tape.Backward(r.gy)
		if err != nil {
			t.Fatal(err)
		}
		r.tape.Release()
		if _, err := r.tape.Backward(r.gy); err == nil {
			t.Fatalf("%s: Backward after Release succeeded", gc.name)
		}
		return g
	}
	cases := recurrentGradCases()
	fresh := make([]map[string]*tensor.Tensor, len(cases))
	for i, gc := range cases {
		r := forward(gc) // never released: its buffers are its own
		g, err := r.tape.Backward(r.gy)
		if err != nil {
			t.Fatal(err)
		}
		fresh[i] = g
	}
	for round := 0; round < 3; round++ {
		for i := range cases {
			// the cases in another order each round, so each reuses another's buffers
			k := (i*(round+2) + round) % len(cases)
			got := grads(cases[k])
			for p, w := range fresh[k] {
				a, b := got[p].Float32s(), w.Float32s()
				for j := range b {
					if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
						t.Fatalf("round %d %s: d/d %s[%d] = %v from reused buffers, %v fresh", round, cases[k].name, p, j, a[j], b[j])
					}
				}
			}
		}
	}
}

// TestRecurrentUnreadY: when nothing reads an LSTM's Y (the program's
// only output is Y_h), the training forward pass leaves Y out (its Value
// is nil) and the gradients are bitwise those of a program that also
// outputs Y and is given no gradient for it, on the fused float32 path
// with the gates kept.
func TestRecurrentUnreadY(t *testing.T) {
	var gc gradCase
	for _, c := range recurrentGradCases() {
		if c.name == "lstm_x_constant_wide_long" {
			gc = c
		}
	}
	for i, x := range gc.inputs {
		if x != nil && x.DType == tensor.Float64 {
			v := make([]float32, x.Len())
			for k, f := range x.Float64s() {
				v[k] = float32(f)
			}
			gc.inputs[i] = tensor.From(append([]int(nil), x.Shape...), v)
		}
	}
	m, outs, params := gc.build() // outs: Y, Y_h
	grads := func(outputs []string) (map[string]*tensor.Tensor, *Tape) {
		prog, err := NewProgram(m, outputs, params)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := prog.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		yh := tape.Value(outs[1])
		w := make([]float32, yh.Len())
		for k := range w {
			w[k] = float32(math.Sin(float64(k)))
		}
		g, err := tape.Backward(map[string]*tensor.Tensor{outs[1]: tensor.From(append([]int(nil), yh.Shape...), w)})
		if err != nil {
			t.Fatal(err)
		}
		return g, tape
	}
	want, full := grads(outs)
	got, part := grads(outs[1:])
	if full.Value(outs[0]) == nil || part.Value(outs[0]) != nil {
		t.Fatalf("Y computed: %v with Y an output, %v without (want true, false)", full.Value(outs[0]) != nil, part.Value(outs[0]) != nil)
	}
	for p, w := range want {
		a, b := got[p].Float32s(), w.Float32s()
		for k := range b {
			if math.Float32bits(a[k]) != math.Float32bits(b[k]) {
				t.Fatalf("d/d %s[%d]: %v without Y, %v with it", p, k, a[k], b[k])
			}
		}
	}
}

// TestRecurrentActivationRefused: a function whose derivative its output
// does not determine (LeakyRelu with a negative alpha) is refused with its
// name and parameter, not differentiated wrongly.
func TestRecurrentActivationRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gc := gradCase{name: "rnn_leaky_negative", op: "RNN", outputs: 2,
		attrs:  graph.Attrs{"hidden_size": attrInt(2), "activations": strs("LeakyRelu"), "activation_alpha": attrFloats(-0.5)},
		inputs: []*tensor.Tensor{randT(rng, false, 3, 2, 2), randT(rng, false, 1, 2, 2), randT(rng, false, 1, 2, 2)}}
	m, outs, params := gc.build()
	prog, err := NewProgram(m, outs, params)
	if err == nil {
		_, err = prog.Forward(nil)
	}
	if err == nil || !strings.Contains(err.Error(), "leakyrelu(alpha=-0.5)") {
		t.Fatalf("got error %v, want one naming leakyrelu(alpha=-0.5)", err)
	}
}
