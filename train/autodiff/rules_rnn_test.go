package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestRecurrentGradients(t *testing.T) {
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
	cases := []gradCase{
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c) })
	}
}
