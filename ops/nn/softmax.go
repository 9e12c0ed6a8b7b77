package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Softmax and LogSoftmax: before opset 13 the input is coerced to 2-D at
// `axis` (default 1) and normalised over the flattened tail; from 13 on the
// normalisation runs along the single axis (default -1).

func init() {
	for _, name := range []string{"Softmax", "LogSoftmax"} {
		log := name == "LogSoftmax"
		ops.Define(ops.Desc{Type: name, Since: 1, Shape: ops.ShapeSameAsInput, Kernel: func(c *ops.Config) (ops.Op, error) {
			def := int64(-1)
			if c.Opset < 13 {
				def = 1
			}
			return &softmax{axis: int(c.Attrs.Int("axis", def)), legacy: c.Opset < 13, log: log}, nil
		}})
	}
}

type softmax struct {
	axis        int
	legacy, log bool
}

func (s *softmax) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return s.RunWith(nil, in) }

func (s *softmax) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	rank := x.Rank()
	axis, err := ops.NormAxis(s.axis, max(rank, 1))
	if err != nil {
		return nil, ops.BadAttr("axis", "%v", err)
	}
	outer, n, inner := 1, 1, 1
	for i, d := range x.Shape {
		switch {
		case i < axis:
			outer *= d
		case i == axis || s.legacy:
			n *= d
		default:
			inner *= d
		}
	}
	out, err := ar.Empty(x.DType, x.Shape) // every element is written
	if err != nil {
		return nil, err
	}
	switch x.DType {
	case tensor.Float32:
		if inner == 1 {
			softmaxRowsF32(x.Float32s(), out.Float32s(), outer, n, s.log)
		} else {
			softmaxT(x.Float32s(), out.Float32s(), outer, n, inner, s.log)
		}
	case tensor.Float64:
		softmaxT(x.Float64s(), out.Float64s(), outer, n, inner, s.log)
	case tensor.Float16:
		xs, _ := tensor.AsFloat64(x)
		tmp := make([]float64, len(xs))
		softmaxT(xs, tmp, outer, n, inner, s.log)
		o := tensor.Data[tensor.Float16Bits](out)
		for i, v := range tmp {
			o[i] = tensor.Float32ToFloat16(float32(v))
		}
	default:
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	return ar.Outputs(out), nil
}

func softmaxT[T tensor.Float](x, y []T, outer, n, inner int, log bool) {
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			mx := math.Inf(-1)
			for j := 0; j < n; j++ {
				mx = math.Max(mx, float64(x[base+j*inner]))
			}
			var sum float64
			for j := 0; j < n; j++ {
				e := math.Exp(float64(x[base+j*inner]) - mx)
				sum += e
				if !log {
					y[base+j*inner] = T(e)
				}
			}
			if log {
				lse := mx + math.Log(sum)
				for j := 0; j < n; j++ {
					y[base+j*inner] = T(float64(x[base+j*inner]) - lse)
				}
				continue
			}
			for j := 0; j < n; j++ {
				y[base+j*inner] = T(float64(y[base+j*inner]) / sum)
			}
		}
	}
}

// softmaxRowsF32 is the contiguous float32 case (the axis is innermost):
// x minus its row's max into y for every row, one vector linalg.Exp over
// all of y (rows of a few classes are too short to vectorise one at a
// time), then each row's float64 sum and scaling (or, for LogSoftmax,
// x - max - log sum).
func softmaxRowsF32(x, y []float32, rows, n int, log bool) {
	if n == 0 {
		return
	}
	x, y = x[:rows*n], y[:rows*n]
	for r := 0; r < rows; r++ {
		row, dst := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
		mx := row[0]
		for _, v := range row[1:] {
			if v > mx {
				mx = v
			}
		}
		for i, v := range row {
			dst[i] = v - mx
		}
	}
	linalg.Exp(y)
	for r := 0; r < rows; r++ {
		dst := y[r*n : (r+1)*n]
		var sum float64
		for _, e := range dst {
			sum += float64(e)
		}
		if log {
			row := x[r*n : (r+1)*n]
			mx := row[0]
			for _, v := range row[1:] {
				if v > mx {
					mx = v
				}
			}
			lse := float32(math.Log(sum))
			for i, v := range row {
				dst[i] = v - mx - lse
			}
			continue
		}
		inv := float32(1 / sum)
		for i := range dst {
			dst[i] *= inv
		}
	}
}
