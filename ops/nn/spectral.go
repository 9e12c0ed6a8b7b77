package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Signal processing: DFT (opsets 17-20: complex or real input, inverse,
// one-sided RFFT/IRFFT, zero-padding or truncation to dft_length), STFT, the
// Hann, Hamming and Blackman windows and MelWeightMatrix. Computed in
// float64 with direct sums (O(N²) per transform; the signals these ops see
// in models are short frames).

func init() {
	// gradients (of the signal): train/autodiff/rules_spectral.go
	ops.Define(ops.Desc{Type: "DFT", Since: 17, Grad: ops.GradRule{}, Kernel: newDFT})
	ops.Define(ops.Desc{Type: "STFT", Since: 17, Grad: ops.GradRule{}, Kernel: newSTFT})
	for name, w := range map[string]func(n, N float64) float64{
		"HannWindow":    func(n, N float64) float64 { return 0.5 - 0.5*math.Cos(2*math.Pi*n/N) },
		"HammingWindow": func(n, N float64) float64 { return 25.0/46 - (1-25.0/46)*math.Cos(2*math.Pi*n/N) },
		"BlackmanWindow": func(n, N float64) float64 {
			return 0.42 - 0.5*math.Cos(2*math.Pi*n/N) + 0.08*math.Cos(4*math.Pi*n/N)
		},
	} {
		ops.Define(ops.Desc{Type: name, Since: 17, Grad: ops.NotDifferentiable("the window is computed from an integer size"), Kernel: func(c *ops.Config) (ops.Op, error) { return newWindow(c, w) }})
	}
	ops.Define(ops.Desc{Type: "MelWeightMatrix", Since: 17, Grad: ops.NotDifferentiable("the matrix is computed from integer sizes and frequency bounds"), Kernel: newMelWeightMatrix})
}

// scalarInput reads an optional one-element integer input.
func scalarInput(in []*tensor.Tensor, i int) (int64, bool, error) {
	if i >= len(in) || in[i] == nil || in[i].Len() == 0 {
		return 0, false, nil
	}
	v, err := tensor.AsInt64(in[i])
	if err != nil || len(v) != 1 {
		return 0, true, ops.BadInput(i, "must be one integer, got %v", in[i])
	}
	return v[0], true, nil
}

// dft1 computes the first len(outRe) points of the length-N transform of
// re/im (the first min(len, N) points used, the rest zero).
func dft1(re, im []float64, N int, inverse bool, outRe, outIm []float64) {
	sign := -1.0
	if inverse {
		sign = 1
	}
	n := min(len(re), N)
	for k := range outRe {
		var sr, si float64
		for t := 0; t < n; t++ {
			a := sign * 2 * math.Pi * float64((k*t)%N) / float64(N)
			c, s := math.Cos(a), math.Sin(a)
			sr += re[t]*c - im[t]*s
			si += re[t]*s + im[t]*c
		}
		if inverse {
			sr /= float64(N)
			si /= float64(N)
		}
		outRe[k], outIm[k] = sr, si
	}
}

func newDFT(c *ops.Config) (ops.Op, error) {
	inverse := c.Attrs.Int("inverse", 0) != 0
	onesided := c.Attrs.Int("onesided", 0) != 0
	axisAttr, axisFromInput := c.Attrs.Int("axis", 1), c.Opset >= 20
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := x.Rank()
		if r < 2 || (x.Shape[r-1] != 1 && x.Shape[r-1] != 2) || !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "DFT input must be float [..., 1|2], got %v", x)
		}
		axis := axisAttr
		if axisFromInput {
			axis = -2
			if a, ok, err := scalarInput(in, 2); err != nil {
				return nil, err
			} else if ok {
				axis = a
			}
		}
		if axis < 0 {
			axis += int64(r)
		}
		if axis < 0 || axis >= int64(r-1) {
			return nil, ops.BadInput(2, "DFT axis %d invalid for %v", axis, x)
		}
		ax := int(axis)
		complexIn := x.Shape[r-1] == 2
		n := x.Shape[ax]
		N := n
		if onesided && inverse {
			N = 2 * (n - 1)
		}
		if l, ok, err := scalarInput(in, 1); err != nil {
			return nil, err
		} else if ok {
			if l < 1 {
				return nil, ops.BadInput(1, "DFT dft_length must be positive, got %d", l)
			}
			N = int(l)
		}
		if onesided && !inverse && complexIn {
			return nil, ops.BadInput(0, "DFT onesided forward transform needs a real input, got %v", x)
		}
		if onesided && inverse && !complexIn {
			return nil, ops.BadInput(0, "DFT onesided inverse transform needs a complex input, got %v", x)
		}
		v, _ := tensor.AsFloat64(x)
		outer := elems.Prod(x.Shape[:ax])
		inner := elems.Prod(x.Shape[ax+1 : r-1])
		cw := x.Shape[r-1]
		m := N // output points along the axis
		outC := 2
		switch {
		case onesided && !inverse:
			m = N/2 + 1
		case onesided && inverse:
			outC = 1
		}
		shape := append([]int{}, x.Shape...)
		shape[ax], shape[r-1] = m, outC
		out := make([]float64, outer*m*inner*outC)
		re, im := make([]float64, N), make([]float64, N)
		ore, oim := make([]float64, m), make([]float64, m)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				for t := range re {
					re[t], im[t] = 0, 0
				}
				for t := 0; t < min(n, N); t++ {
					p := ((o*n+t)*inner + i) * cw
					re[t] = v[p]
					if complexIn {
						im[t] = v[p+1]
					}
				}
				if onesided && inverse {
					// rebuild the full spectrum from its conjugate-symmetric half
					for k := n; k < N; k++ {
						if j := N - k; j >= 0 && j < n {
							re[k], im[k] = re[j], -im[j]
						}
					}
				}
				dft1(re, im, N, inverse, ore, oim)
				for k := 0; k < m; k++ {
					p := ((o*m+k)*inner + i) * outC
					out[p] = ore[k]
					if outC == 2 {
						out[p+1] = oim[k]
					}
				}
			}
		}
		y, err := elems.FromFloats(x.DType, shape, out)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

func newSTFT(c *ops.Config) (ops.Op, error) {
	onesided := c.Attrs.Int("onesided", 1) != 0
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() != 3 || (x.Shape[2] != 1 && x.Shape[2] != 2) || !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "STFT signal must be float [batch, length, 1|2], got %v", x)
		}
		step, _, err := scalarInput(in, 1)
		if err != nil || step < 1 {
			return nil, ops.BadInput(1, "STFT frame_step must be a positive integer, got %v", in[1])
		}
		var win []float64
		if len(in) > 2 && in[2] != nil {
			if in[2].Rank() != 1 {
				return nil, ops.BadInput(2, "STFT window must be 1-D, got %v", in[2])
			}
			win, _ = tensor.AsFloat64(in[2])
		}
		fl := int64(len(win))
		if l, ok, err := scalarInput(in, 3); err != nil {
			return nil, err
		} else if ok {
			fl = l
		}
		if fl < 1 || (win != nil && int64(len(win)) != fl) {
			return nil, ops.BadInput(3, "STFT frame_length %d does not fit the window %v", fl, in[2])
		}
		B, L, cw := x.Shape[0], x.Shape[1], x.Shape[2]
		complexIn := cw == 2
		if onesided && complexIn {
			return nil, ops.BadInput(0, "STFT onesided needs a real signal, got %v", x)
		}
		F := int(fl)
		if L < F {
			return nil, ops.BadInput(0, "STFT signal of length %d is shorter than a frame (%d)", L, F)
		}
		frames := (L-F)/int(step) + 1
		bins := F
		if onesided {
			bins = F/2 + 1
		}
		v, _ := tensor.AsFloat64(x)
		out := make([]float64, B*frames*bins*2)
		re, im := make([]float64, F), make([]float64, F)
		ore, oim := make([]float64, bins), make([]float64, bins)
		for b := 0; b < B; b++ {
			for f := 0; f < frames; f++ {
				for t := 0; t < F; t++ {
					p := (b*L + f*int(step) + t) * cw
					w := 1.0
					if win != nil {
						w = win[t]
					}
					re[t] = v[p] * w
					im[t] = 0
					if complexIn {
						im[t] = v[p+1] * w
					}
				}
				dft1(re, im, F, false, ore, oim)
				for k := 0; k < bins; k++ {
					p := ((b*frames+f)*bins + k) * 2
					out[p], out[p+1] = ore[k], oim[k]
				}
			}
		}
		y, err := elems.FromFloats(x.DType, []int{B, frames, bins, 2}, out)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

func newWindow(c *ops.Config, w func(n, N float64) float64) (ops.Op, error) {
	dt := tensor.DType(c.Attrs.Int("output_datatype", 1))
	periodic := c.Attrs.Int("periodic", 1) != 0
	if !dt.Supported() || dt == tensor.String || dt == tensor.Bool {
		return nil, ops.BadAttr("output_datatype", "unsupported dtype %v", dt)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		size, ok, err := scalarInput(in, 0)
		if err != nil || !ok || size < 0 {
			return nil, ops.BadInput(0, "window size must be a non-negative integer, got %v", in)
		}
		N := float64(size)
		if !periodic {
			N--
		}
		v := make([]float64, size)
		for i := range v {
			v[i] = w(float64(i), N)
		}
		y, err := elems.FromFloats(dt, []int{int(size)}, v)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

// newMelWeightMatrix builds the [dft_length/2+1, num_mel_bins] triangular
// filter bank between the two edge frequencies, on bins placed evenly on
// the mel scale mel(f) = 2595·log10(1 + f/700).
func newMelWeightMatrix(c *ops.Config) (ops.Op, error) {
	dt := tensor.DType(c.Attrs.Int("output_datatype", 1))
	if !dt.IsFloat() {
		return nil, ops.BadAttr("output_datatype", "%v is not a float type", dt)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 5); err != nil {
			return nil, err
		}
		ints := make([]int64, 3)
		for i := range ints {
			v, _, err := scalarInput(in, i)
			if err != nil {
				return nil, err
			}
			ints[i] = v
		}
		mels, dftLen, rate := int(ints[0]), int(ints[1]), ints[2]
		lo, err1 := tensor.AsFloat64(in[3])
		hi, err2 := tensor.AsFloat64(in[4])
		if err1 != nil || err2 != nil || len(lo) != 1 || len(hi) != 1 || mels < 1 || dftLen < 1 || rate < 1 {
			return nil, ops.BadInput(3, "MelWeightMatrix needs positive bins, length and rate and scalar edges")
		}
		toMel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
		lowMel, highMel := toMel(lo[0]), toMel(hi[0])
		step := (highMel - lowMel) / float64(mels+2)
		bin := make([]int, mels+2)
		for i := range bin {
			f := 700 * (math.Pow(10, (float64(i)*step+lowMel)/2595) - 1)
			bin[i] = int(math.Floor(float64(dftLen+1) * f / float64(rate)))
		}
		spec := dftLen/2 + 1
		out := make([]float64, spec*mels)
		set := func(j, i int, v float64) {
			if j >= 0 && j < spec {
				out[j*mels+i] = v
			}
		}
		for i := 0; i < mels; i++ {
			l, ctr, r := bin[i], bin[i+1], bin[i+2]
			if ctr == l {
				set(ctr, i, 1)
			} else {
				for j := l; j <= ctr; j++ {
					set(j, i, float64(j-l)/float64(ctr-l))
				}
			}
			if r > ctr {
				for j := ctr; j < r; j++ {
					set(j, i, float64(r-j)/float64(r-ctr))
				}
			}
		}
		y, err := elems.FromFloats(dt, []int{spec, mels}, out)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}
