package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func attrStr(s string) graph.Attr { return graph.Attr{Type: graph.AttrString, String: s} }

func f32s(v ...float32) *tensor.Tensor { return tensor.From([]int{len(v)}, v) }

// opsetGradCases are the finite-difference checks of the rules for the ops
// newer exports bring (Resize, Attention, RMSNormalization, TopK, the
// scatters, the loss ops, ...): odd shapes and each attribute mode.
func opsetGradCases() []gradCase {
	rng := rand.New(rand.NewPCG(3, 4))
	r := func(shape ...int) *tensor.Tensor { return randT(rng, false, shape...) }
	pos := func(shape ...int) *tensor.Tensor { return randT(rng, true, shape...) }
	idx := map[int]bool{1: true, 2: true, 3: true}
	return []gradCase{
		// Resize: tf2onnx's UpSampling2D (asymmetric, floor), torch's
		// nearest (asymmetric, floor) and bilinear (pytorch_half_pixel or
		// align_corners), and the other modes
		{name: "resize_nearest_asym_floor", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 2, 3, 2), nil, f32s(1, 1, 2, 3)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("nearest"), "coordinate_transformation_mode": attrStr("asymmetric"), "nearest_mode": attrStr("floor")}},
		{name: "resize_nearest_sizes_down", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 1, 5, 7), nil, nil, i64([]int{4}, 1, 1, 3, 4)}, constant: idx},
		{name: "resize_nearest_ceil_half_pixel", op: "Resize", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 5), nil, f32s(1, 1, 1.7)}, constant: idx,
			attrs: graph.Attrs{"nearest_mode": attrStr("round_prefer_ceil")}},
		{name: "resize_linear_pytorch_half_pixel", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 2, 3, 5), nil, f32s(1, 1, 2, 2)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear"), "coordinate_transformation_mode": attrStr("pytorch_half_pixel")}},
		{name: "resize_linear_align_corners_sizes", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 1, 3, 4), nil, nil, i64([]int{4}, 1, 1, 7, 5)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear"), "coordinate_transformation_mode": attrStr("align_corners")}},
		{name: "resize_linear_half_pixel_down_antialias", op: "Resize", opset: 18, inputs: []*tensor.Tensor{r(1, 1, 7, 5), nil, f32s(1, 1, 0.6, 0.5)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear"), "antialias": attrInt(1)}},
		{name: "resize_linear_axes", op: "Resize", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 4), nil, f32s(1.5)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear"), "axes": attrInts(-1)}},
		{name: "resize_cubic_exclude_outside", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 1, 4, 5), nil, f32s(1, 1, 1.5, 0.8)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("cubic"), "exclude_outside": attrInt(1)}},
		{name: "resize_crop_extrapolate", op: "Resize", opset: 19, inputs: []*tensor.Tensor{r(1, 1, 4, 5), f32s(0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3), nil, i64([]int{4}, 1, 1, 3, 4)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear"), "coordinate_transformation_mode": attrStr("tf_crop_and_resize"), "extrapolation_value": attrFloat(0.5)}},
		{name: "resize10_nearest", op: "Resize", opset: 10, inputs: []*tensor.Tensor{r(1, 2, 3), f32s(1, 1, 2.5)}, constant: idx},
		{name: "upsample9_linear", op: "Upsample", opset: 9, inputs: []*tensor.Tensor{r(1, 1, 3, 2), f32s(1, 1, 2, 3)}, constant: idx,
			attrs: graph.Attrs{"mode": attrStr("linear")}},
		// RMSNormalization: last axis, two axes with a broadcast scale
		{name: "rmsnorm", op: "RMSNormalization", opset: 23, inputs: []*tensor.Tensor{r(2, 3, 5), r(5)}},
		{name: "rmsnorm_axis1_bcast_scale", op: "RMSNormalization", opset: 23, inputs: []*tensor.Tensor{r(3, 2, 3), r(2, 1)},
			attrs: graph.Attrs{"axis": attrInt(1), "epsilon": attrFloat(0.1)}},
		// Attention: 4-D MHA; 3-D GQA with causal masking; an additive
		// float mask with softcap and scale; a past KV cache (MQA) with a
		// bool mask and the present outputs; the qk_matmul_output modes
		{name: "attention_4d", op: "Attention", opset: 23, inputs: []*tensor.Tensor{r(1, 2, 3, 4), r(1, 2, 5, 4), r(1, 2, 5, 3)}},
		{name: "attention_3d_gqa_causal", op: "Attention", opset: 23, inputs: []*tensor.Tensor{r(2, 3, 4), r(2, 3, 2), r(2, 3, 6)},
			attrs: graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(1), "is_causal": attrInt(1)}},
		{name: "attention_float_mask_softcap", op: "Attention", opset: 23, inputs: []*tensor.Tensor{r(2, 1, 3, 2), r(2, 1, 4, 2), r(2, 1, 4, 3), r(3, 4)},
			attrs: graph.Attrs{"softcap": attrFloat(1.5), "scale": attrFloat(0.8)}},
		{name: "attention_past_mqa_bool_mask", op: "Attention", opset: 23, outputs: 3,
			inputs: []*tensor.Tensor{r(1, 2, 2, 3), r(1, 1, 2, 3), r(1, 1, 2, 2),
				tensor.From([]int{1, 5}, []bool{true, false, true, true, true}), r(1, 1, 3, 3), r(1, 1, 3, 2)}},
		{name: "attention_past_causal_3d", op: "Attention", opset: 23, outputs: 3,
			inputs: []*tensor.Tensor{r(1, 2, 4), r(1, 2, 4), r(1, 2, 2), nil, r(1, 2, 1, 2), r(1, 2, 1, 1)},
			attrs:  graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(2), "is_causal": attrInt(1)}},
		{name: "attention_qk_mode0", op: "Attention", opset: 23, outputs: 4, inputs: []*tensor.Tensor{r(1, 1, 2, 3), r(1, 1, 3, 3), r(1, 1, 3, 2)}},
		{name: "attention_qk_mode2_mask", op: "Attention", opset: 23, outputs: 4, inputs: []*tensor.Tensor{r(1, 1, 2, 3), r(1, 1, 3, 3), r(1, 1, 3, 2), r(2, 3)},
			attrs: graph.Attrs{"qk_matmul_output_mode": attrInt(2), "softcap": attrFloat(2)}},
		{name: "attention_qk_mode3", op: "Attention", opset: 23, outputs: 4, inputs: []*tensor.Tensor{r(1, 2, 2, 3), r(1, 2, 3, 3), r(1, 2, 3, 2)},
			attrs: graph.Attrs{"qk_matmul_output_mode": attrInt(3)}},
		// TopK: largest along the last axis, smallest along a middle one
		// (k from the attribute before opset 10)
		{name: "topk", op: "TopK", opset: 11, outputs: 2, inputs: []*tensor.Tensor{r(3, 5), i64([]int{1}, 2)}},
		{name: "topk_smallest_axis1", op: "TopK", opset: 11, outputs: 2, inputs: []*tensor.Tensor{r(2, 5, 3), i64([]int{1}, 3)},
			attrs: graph.Attrs{"axis": attrInt(1), "largest": attrInt(0)}},
		{name: "topk1", op: "TopK", opset: 1, outputs: 2, inputs: []*tensor.Tensor{r(4, 3)}, attrs: graph.Attrs{"k": attrInt(1), "axis": attrInt(0)}},
		// the scatters: reduction none (a duplicate index: the last update
		// wins) and add (duplicates sum), negative indices
		{name: "scatterelements", op: "ScatterElements", opset: 18, inputs: []*tensor.Tensor{r(3, 4), i64([]int{2, 3}, 0, 2, -1, 1, 1, 3), r(2, 3)},
			attrs: graph.Attrs{"axis": attrInt(1)}},
		{name: "scatterelements_dup", op: "ScatterElements", opset: 18, inputs: []*tensor.Tensor{r(3, 2), i64([]int{2, 2}, 1, 0, 1, 2), r(2, 2)}},
		{name: "scatterelements_add", op: "ScatterElements", opset: 18, inputs: []*tensor.Tensor{r(3, 4), i64([]int{2, 3}, 0, 2, 0, 1, 1, 3), r(2, 3)},
			attrs: graph.Attrs{"axis": attrInt(1), "reduction": attrStr("add")}},
		{name: "scatter9", op: "Scatter", opset: 9, inputs: []*tensor.Tensor{r(3, 3), i64([]int{1, 2}, 2, 0), r(1, 2)}},
		{name: "scatternd", op: "ScatterND", opset: 11, inputs: []*tensor.Tensor{r(4, 3), i64([]int{2, 1}, 3, 1), r(2, 3)}},
		{name: "scatternd_elements_dup", op: "ScatterND", opset: 18, inputs: []*tensor.Tensor{r(2, 3), i64([]int{3, 2}, 0, 1, 1, 2, 0, 1), r(3)}},
		{name: "scatternd_add", op: "ScatterND", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 2), i64([]int{3, 2}, 0, 1, 1, 2, 0, 1), r(3, 2)},
			attrs: graph.Attrs{"reduction": attrStr("add")}},
		{name: "scatterelements_mul_dup_zero", op: "ScatterElements", opset: 18,
			inputs: []*tensor.Tensor{tensor.From([]int{2, 3}, []float64{0.5, 0, -1.2, 0.8, 1.1, -0.4}), i64([]int{2, 2}, 1, 1, 2, 0),
				tensor.From([]int{2, 2}, []float64{1.3, -0.7, 0, 0.9})},
			attrs: graph.Attrs{"axis": attrInt(1), "reduction": attrStr("mul")}},
		{name: "scatterelements_max_dup", op: "ScatterElements", opset: 18, inputs: []*tensor.Tensor{r(3, 2), i64([]int{3, 2}, 0, 1, 0, 1, 2, 0), r(3, 2)},
			attrs: graph.Attrs{"reduction": attrStr("max")}},
		{name: "scatternd_min_dup", op: "ScatterND", opset: 18, inputs: []*tensor.Tensor{r(3, 2), i64([]int{3, 1}, 2, 0, 2), r(3, 2)},
			attrs: graph.Attrs{"reduction": attrStr("min")}},
		{name: "scatternd_mul", op: "ScatterND", opset: 18, inputs: []*tensor.Tensor{r(2, 3), i64([]int{2, 2}, 1, 0, 1, 0), r(2)},
			attrs: graph.Attrs{"reduction": attrStr("mul")}},
		// the loss ops: each reduction, class weights, ignore_index, extra
		// dims, the log_prob output (the weights are constants)
		{name: "nll_mean", op: "NegativeLogLikelihoodLoss", opset: 13, inputs: []*tensor.Tensor{r(3, 4), i64([]int{3}, 2, 0, 3)}},
		{name: "nll_weight_ignore_mean", op: "NegativeLogLikelihoodLoss", opset: 13,
			inputs: []*tensor.Tensor{r(3, 4, 2), i64([]int{3, 2}, 2, 0, 3, 1, 1, 0), pos(4)}, constant: map[int]bool{2: true},
			attrs: graph.Attrs{"ignore_index": attrInt(1)}},
		{name: "nll_none_extra_dims", op: "NegativeLogLikelihoodLoss", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 2, 3), i64([]int{2, 2, 3}, 0, 1, 2, 2, 1, 0, 1, 1, 0, 2, 0, 1)},
			attrs: graph.Attrs{"reduction": attrStr("none")}},
		{name: "sce_mean", op: "SoftmaxCrossEntropyLoss", opset: 13, inputs: []*tensor.Tensor{r(3, 5), i64([]int{3}, 4, 0, 2)}},
		{name: "sce_sum_weight_log_prob", op: "SoftmaxCrossEntropyLoss", opset: 13, outputs: 2,
			inputs: []*tensor.Tensor{r(2, 3, 3), i64([]int{2, 3}, 0, 2, 1, 1, 1, 2), pos(3)}, constant: map[int]bool{2: true},
			attrs: graph.Attrs{"reduction": attrStr("sum")}},
		{name: "sce_none_ignore_negative", op: "SoftmaxCrossEntropyLoss", opset: 13, outputs: 2,
			inputs: []*tensor.Tensor{r(4, 3), i64([]int{4}, 2, -100, 0, 1)}, attrs: graph.Attrs{"reduction": attrStr("none"), "ignore_index": attrInt(-100)}},
		{name: "sce_mean_weight_ignore", op: "SoftmaxCrossEntropyLoss", opset: 12,
			inputs: []*tensor.Tensor{r(3, 4), i64([]int{3}, 3, 0, 3), pos(4)}, constant: map[int]bool{2: true}, attrs: graph.Attrs{"ignore_index": attrInt(0)}},
		// ConvTranspose: 1-D with pads and output_padding, 2-D strided with
		// groups and bias, SAME_UPPER, output_shape, 3-D dilated
		{name: "convtranspose1d_pads_outpad", op: "ConvTranspose", inputs: []*tensor.Tensor{r(2, 3, 4), r(3, 2, 3)},
			attrs: graph.Attrs{"strides": attrInts(2), "pads": attrInts(1, 0), "output_padding": attrInts(1)}},
		{name: "convtranspose2d_group_bias", op: "ConvTranspose", inputs: []*tensor.Tensor{r(1, 4, 3, 2), r(4, 1, 2, 3), r(2)},
			attrs: graph.Attrs{"strides": attrInts(2, 1), "group": attrInt(2)}},
		{name: "convtranspose2d_same_upper", op: "ConvTranspose", inputs: []*tensor.Tensor{r(1, 2, 3, 3), r(2, 3, 3, 3), r(3)},
			attrs: graph.Attrs{"strides": attrInts(2, 2), "auto_pad": attrStr("SAME_UPPER")}},
		{name: "convtranspose1d_same_lower", op: "ConvTranspose", inputs: []*tensor.Tensor{r(1, 2, 5), r(2, 2, 4)},
			attrs: graph.Attrs{"strides": attrInts(3), "auto_pad": attrStr("SAME_LOWER")}},
		{name: "convtranspose2d_output_shape", op: "ConvTranspose", inputs: []*tensor.Tensor{r(1, 1, 3, 3), r(1, 2, 3, 3)},
			attrs: graph.Attrs{"strides": attrInts(3, 2), "output_shape": attrInts(10, 8)}},
		{name: "convtranspose3d_dilated", op: "ConvTranspose", inputs: []*tensor.Tensor{r(1, 2, 2, 3, 2), r(2, 1, 2, 2, 2)},
			attrs: graph.Attrs{"dilations": attrInts(2, 1, 2), "pads": attrInts(1, 0, 0, 0, 1, 1)}},
		// the other normalisations
		{name: "groupnorm18", op: "GroupNormalization", opset: 18, inputs: []*tensor.Tensor{r(2, 4, 3), r(2), r(2)}, attrs: graph.Attrs{"num_groups": attrInt(2)}},
		{name: "groupnorm21_per_channel", op: "GroupNormalization", opset: 21, inputs: []*tensor.Tensor{r(1, 6, 2, 2), r(6), r(6)},
			attrs: graph.Attrs{"num_groups": attrInt(3), "epsilon": attrFloat(0.01)}},
		{name: "mvn", op: "MeanVarianceNormalization", opset: 13, inputs: []*tensor.Tensor{r(2, 3, 2, 2)}},
		{name: "mvn_axes", op: "MeanVarianceNormalization", opset: 13, inputs: []*tensor.Tensor{r(3, 5)}, attrs: graph.Attrs{"axes": attrInts(1)}},
		{name: "lrn", op: "LRN", inputs: []*tensor.Tensor{r(2, 5, 3)}, attrs: graph.Attrs{"size": attrInt(3), "alpha": attrFloat(0.5), "bias": attrFloat(2)}},
		{name: "lrn_even", op: "LRN", inputs: []*tensor.Tensor{r(1, 4, 2, 2)}, attrs: graph.Attrs{"size": attrInt(2), "alpha": attrFloat(0.3), "beta": attrFloat(0.6)}},
		{name: "lpnorm2", op: "LpNormalization", inputs: []*tensor.Tensor{r(3, 4)}},
		// RotaryEmbedding: 4-D with position ids, 3-D interleaved partial
		// rotation with per-batch caches; SwiGLU; CastLike to float64
		{name: "rotary_4d_position_ids", op: "RotaryEmbedding", opset: 23,
			inputs: []*tensor.Tensor{r(2, 1, 3, 4), r(5, 2), r(5, 2), i64([]int{2, 3}, 0, 1, 4, 2, 2, 3)}, constant: map[int]bool{1: true, 2: true}},
		{name: "rotary_3d_interleaved_partial", op: "RotaryEmbedding", opset: 23,
			inputs: []*tensor.Tensor{r(1, 3, 12), r(1, 3, 2), r(1, 3, 2)}, constant: map[int]bool{1: true, 2: true},
			attrs: graph.Attrs{"num_heads": attrInt(2), "interleaved": attrInt(1), "rotary_embedding_dim": attrInt(4)}},
		{name: "swiglu", op: "SwiGLU", opset: 28, inputs: []*tensor.Tensor{r(3, 4), r(3, 4)}, attrs: graph.Attrs{"alpha": attrFloat(1.3)}},
		{name: "castlike", op: "CastLike", opset: 19, inputs: []*tensor.Tensor{r(3, 2), tensor.From([]int{1}, []float64{0})}, constant: map[int]bool{1: true}},
		// float Mod, truncated and floored, broadcast
		{name: "mod_fmod", op: "Mod", opset: 13, inputs: []*tensor.Tensor{r(3, 4), pos(4)}, constant: map[int]bool{1: true}, attrs: graph.Attrs{"fmod": attrInt(1)}},
		{name: "mod_floor_bcast", op: "Mod", opset: 13, inputs: []*tensor.Tensor{r(1, 3), tensor.From([]int{2, 1}, []float64{0.7, -0.6})}, constant: map[int]bool{1: true}},
		// LpPool: p 2 with pads and strides, p 3 ceil_mode, SAME_UPPER; GlobalLpPool
		{name: "lppool2d_pads_strides", op: "LpPool", opset: 18, inputs: []*tensor.Tensor{r(1, 2, 5, 4)},
			attrs: graph.Attrs{"kernel_shape": attrInts(3, 2), "strides": attrInts(2, 1), "pads": attrInts(1, 0, 1, 1)}},
		{name: "lppool1d_p3_ceil", op: "LpPool", opset: 18, inputs: []*tensor.Tensor{r(2, 1, 7)},
			attrs: graph.Attrs{"kernel_shape": attrInts(3), "strides": attrInts(2), "p": attrInt(3), "ceil_mode": attrInt(1)}},
		{name: "lppool_same_upper", op: "LpPool", opset: 11, inputs: []*tensor.Tensor{r(1, 1, 4, 5)},
			attrs: graph.Attrs{"kernel_shape": attrInts(2, 3), "strides": attrInts(2, 2), "auto_pad": attrStr("SAME_UPPER")}},
		{name: "globallppool", op: "GlobalLpPool", inputs: []*tensor.Tensor{r(2, 3, 2, 3)}},
		{name: "globallppool_p1", op: "GlobalLpPool", inputs: []*tensor.Tensor{r(1, 2, 5)}, attrs: graph.Attrs{"p": attrInt(1)}},
		// Det: a stack of 3×3, a 1×1, and a singular 3×3 (rank 2)
		{name: "det_batch", op: "Det", opset: 11, inputs: []*tensor.Tensor{r(2, 3, 3)}},
		{name: "det_1x1", op: "Det", opset: 11, inputs: []*tensor.Tensor{r(1, 1)}},
		{name: "det_singular", op: "Det", opset: 11, inputs: []*tensor.Tensor{tensor.From([]int{3, 3}, []float64{1, 2, 3, 2, 4, 6, 0.5, -1, 2})}},
		// Col2Im: 2-D with overlapping blocks, strides, dilations and pads
		{name: "col2im", op: "Col2Im", opset: 18, inputs: []*tensor.Tensor{r(1, 2*4, 6), i64([]int{2}, 3, 4), i64([]int{2}, 2, 2)}},
		{name: "col2im_strides_dil_pads", op: "Col2Im", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{2}, 3, 5), i64([]int{2}, 1, 3)},
			attrs: graph.Attrs{"strides": attrInts(2, 2), "dilations": attrInts(1, 2), "pads": attrInts(0, 1, 1, 1)}},
		// DFT: complex forward along axis 1, real input one-sided, inverse,
		// one-sided inverse (conjugate completion), dft_length padding and
		// truncation, the opset-20 axis input; STFT with a window
		{name: "dft_complex", op: "DFT", opset: 17, inputs: []*tensor.Tensor{r(2, 5, 2)}},
		{name: "dft_real_onesided_pad", op: "DFT", opset: 17, inputs: []*tensor.Tensor{r(1, 5, 1), i64([]int{}, 7)}, attrs: graph.Attrs{"onesided": attrInt(1)}},
		{name: "dft_inverse_truncate", op: "DFT", opset: 17, inputs: []*tensor.Tensor{r(6, 2), i64([]int{}, 4)}, attrs: graph.Attrs{"inverse": attrInt(1), "axis": attrInt(0)}},
		{name: "dft_onesided_inverse", op: "DFT", opset: 17, inputs: []*tensor.Tensor{r(1, 4, 2)}, attrs: graph.Attrs{"inverse": attrInt(1), "onesided": attrInt(1)}},
		{name: "dft20_axis_input", op: "DFT", opset: 20, inputs: []*tensor.Tensor{r(3, 2, 4, 1), nil, i64([]int{}, 0)}},
		{name: "stft_window", op: "STFT", opset: 17, inputs: []*tensor.Tensor{r(2, 9, 1), i64([]int{}, 2), pos(4)}, constant: map[int]bool{2: true}},
		{name: "stft_complex_twosided", op: "STFT", opset: 17, inputs: []*tensor.Tensor{r(1, 7, 2), i64([]int{}, 3), nil, i64([]int{}, 3)},
			attrs: graph.Attrs{"onesided": attrInt(0)}},
		// CausalConvWithState with and without a past state and the silu;
		// LinearAttention: each update rule, GQA, per-key and per-head
		// decay, shared and per-head beta, a past state, both outputs
		{name: "causalconv_past_silu", op: "CausalConvWithState", opset: 27, outputs: 2,
			inputs: []*tensor.Tensor{r(2, 3, 5), r(3, 1, 3), r(3), r(2, 3, 2)}, attrs: graph.Attrs{"activation": attrStr("silu")}},
		{name: "causalconv_plain", op: "CausalConvWithState", opset: 27, outputs: 2, inputs: []*tensor.Tensor{r(1, 2, 4), r(2, 1, 2)}},
		{name: "linearattention_linear_gqa", op: "LinearAttention", opset: 27, outputs: 2,
			inputs: []*tensor.Tensor{r(1, 3, 4), r(1, 3, 2), r(1, 3, 3)}, attrs: graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(1), "update_rule": attrStr("linear")}},
		{name: "linearattention_gated_perkey_past", op: "LinearAttention", opset: 27, outputs: 2,
			inputs: []*tensor.Tensor{r(2, 3, 4), r(2, 3, 4), r(2, 3, 6), r(2, 2, 2, 3), r(2, 3, 4)},
			attrs:  graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(2), "update_rule": attrStr("gated")}},
		{name: "linearattention_delta_shared_beta", op: "LinearAttention", opset: 27, outputs: 2,
			inputs: []*tensor.Tensor{r(1, 4, 4), r(1, 4, 4), r(1, 4, 4), nil, nil, pos(1, 4, 1)},
			attrs:  graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(2), "update_rule": attrStr("delta"), "scale": attrFloat(0.7)}},
		{name: "linearattention_gated_delta", op: "LinearAttention", opset: 27, outputs: 2,
			inputs: []*tensor.Tensor{r(1, 3, 6), r(1, 3, 3), r(1, 3, 2), r(1, 1, 3, 2), r(1, 3, 1), pos(1, 3, 1)},
			attrs:  graph.Attrs{"q_num_heads": attrInt(2), "kv_num_heads": attrInt(1)}},
		// PRelu before opset 7: a per-channel slope along axis 1
		{name: "prelu6_per_channel", op: "PRelu", opset: 6, inputs: []*tensor.Tensor{r(2, 3, 4), r(3)}},
		// the other reductions (one with a zero element) and CumProd
		{name: "reduceprod", op: "ReduceProd", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 4), i64([]int{1}, 1)}},
		{name: "reduceprod_zero", op: "ReduceProd", opset: 13, inputs: []*tensor.Tensor{tensor.From([]int{2, 3}, []float64{0.5, 0, -1.5, 2, 0.7, 1.1})}, attrs: graph.Attrs{"axes": attrInts(1)}},
		{name: "reducel1", op: "ReduceL1", opset: 18, inputs: []*tensor.Tensor{r(3, 4)}},
		{name: "reducelogsum", op: "ReduceLogSum", opset: 13, inputs: []*tensor.Tensor{pos(3, 4)}, attrs: graph.Attrs{"axes": attrInts(0), "keepdims": attrInt(0)}},
		{name: "reducelogsumexp", op: "ReduceLogSumExp", opset: 18, inputs: []*tensor.Tensor{r(2, 3, 2), i64([]int{2}, 0, -1)}},
		{name: "cumprod", op: "CumProd", opset: 26, inputs: []*tensor.Tensor{r(3, 4), tensor.Scalar(int64(1))}},
		{name: "cumprod_exclusive_reverse_zero", op: "CumProd", opset: 26,
			inputs: []*tensor.Tensor{tensor.From([]int{5, 1}, []float64{0.9, 0, -1.2, 0.4, 1.3}), tensor.Scalar(int64(0))},
			attrs:  graph.Attrs{"exclusive": attrInt(1), "reverse": attrInt(1)}},
		{name: "cumprod_zero", op: "CumProd", opset: 26, inputs: []*tensor.Tensor{tensor.From([]int{4}, []float64{0.9, 0, -1.2, 0.4}), tensor.Scalar(int64(0))}},
		{name: "lpnorm1_axis0", op: "LpNormalization", inputs: []*tensor.Tensor{r(3, 2, 2)}, attrs: graph.Attrs{"p": attrInt(1), "axis": attrInt(0)}},
	}
}

func TestOpsetGradients(t *testing.T) {
	for _, c := range opsetGradCases() {
		t.Run(c.name, func(t *testing.T) {
			if !HasRule(c.op) {
				t.Fatalf("no rule for %s", c.op)
			}
			checkGradients(t, c)
		})
	}
}

// TestNewOpsParameters: the inputs the new rules treat as constants of
// training stay constants when they are initializers (an attention mask
// stored as a constant, the past KV cache and recurrent states, class
// weights, rotary caches, a Mod divisor, an STFT window), while a mask
// computed from a weight (a learned position bias) makes that weight a
// parameter.
func TestNewOpsParameters(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	r := func(shape ...int) *tensor.Tensor { return randT(rng, false, shape...) }
	nd := func(op string, in []string, out string, attrs graph.Attrs) *graph.Node {
		if attrs == nil {
			attrs = graph.Attrs{}
		}
		return &graph.Node{Name: out, OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs}
	}
	g := &graph.Graph{Name: "constants"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float64, Kind: "tensor"}}
	for name, v := range map[string]*tensor.Tensor{
		"Wq": r(4, 4), "mask": r(3, 3), "bias_table": r(3, 3), "past_k": r(1, 1, 2, 4), "past_v": r(1, 1, 2, 4),
		"cls_w": r(4), "cos": r(3, 2), "sin": r(3, 2), "period": tensor.From([]int{1}, []float64{0.7}),
	} {
		g.AddInitializer(name, v)
	}
	g.AddInitializer("tgt", i64([]int{1, 3}, 0, 1, 2))
	g.AddInitializer("pos", i64([]int{1, 3}, 0, 1, 2))
	g.Outputs = []graph.ValueInfo{{Name: "loss", DType: tensor.Float64, Kind: "tensor"}, {Name: "m", DType: tensor.Float64, Kind: "tensor"}}
	g.Nodes = []*graph.Node{
		// (the flow analysis is static: this graph is never run)
		nd("MatMul", []string{"x", "Wq"}, "q", nil),
		nd("Attention", []string{"q", "q", "q", "mask"}, "a1", nil),
		nd("Identity", []string{"bias_table"}, "bias", nil),
		nd("Attention", []string{"a1", "a1", "a1", "bias", "past_k", "past_v"}, "a2", nil),
		nd("RotaryEmbedding", []string{"a2", "cos", "sin", "pos"}, "rot", nil),
		nd("ReduceMean", []string{"rot"}, "rm", graph.Attrs{"axes": attrInts(1), "keepdims": attrInt(0)}),
		nd("Mod", []string{"rm", "period"}, "m", graph.Attrs{"fmod": attrInt(1)}),
		nd("Transpose", []string{"rot"}, "rt", graph.Attrs{"perm": attrInts(0, 3, 2, 1)}),
		nd("Squeeze", []string{"rt"}, "sq", graph.Attrs{"axes": attrInts(3)}),
		nd("SoftmaxCrossEntropyLoss", []string{"sq", "tgt", "cls_w"}, "loss", nil),
	}
	m := &graph.Model{Graph: g, IRVersion: 10, Opsets: map[string]int64{"": 23}}
	params, constants := Parameters(m)
	want := map[string]bool{"Wq": true, "bias_table": true}
	for _, p := range params {
		if !want[p] {
			t.Errorf("%s is a parameter, want a constant", p)
		}
		delete(want, p)
	}
	for p := range want {
		t.Errorf("%s is not a parameter (constants: %v)", p, constants)
	}
}
