package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register("Add", typed(gradAdd[float32], gradAdd[float64]), nil)
	register("Sub", typed(gradSub[float32], gradSub[float64]), nil)
	register("Mul", typed(gradMul[float32], gradMul[float64]), nil)
	register("Div", typed(gradDiv[float32], gradDiv[float64]), nil)
	register("Pow", typed(gradPow[float32], gradPow[float64]), nil)
	register("Where", typed(gradWhere[float32], gradWhere[float64]), nil)
	register("Identity", passThrough, nil)
	register("Dropout", passThrough, nil)
	register("Cast", gradCast, nil)
	register("Clip", typed(gradClip[float32], gradClip[float64]), nil)
	register("PRelu", typed(gradPRelu[float32], gradPRelu[float64]), nil)
}

// unary is the rule of a unary element-wise op whose descriptor declares
// its derivative (ops.Derivative).
func unary[T tensor.Float](f func(x, y float64, a ops.Attrs) float64) Rule {
	return func(c *Ctx) ([]*tensor.Tensor, error) {
		x, y, gy := data[T](c.In[0]), data[T](c.Out[0]), gradOr[T](c, 0)
		gx := make([]T, len(x))
		for i := range x {
			gx[i] = gy[i] * T(f(float64(x[i]), float64(y[i]), c.Attrs))
		}
		return []*tensor.Tensor{like(c.In[0], gx)}, nil
	}
}

// passThrough is the rule of ops whose output equals their first input at
// inference (Identity, Dropout in eval mode).
func passThrough(c *Ctx) ([]*tensor.Tensor, error) {
	if c.GradOut[0] == nil {
		return nil, nil
	}
	return []*tensor.Tensor{c.GradOut[0]}, nil
}

// gradCast converts the gradient back to the input's float type.
func gradCast(c *Ctx) ([]*tensor.Tensor, error) {
	if c.GradOut[0] == nil || !c.In[0].DType.IsFloat() {
		return nil, nil
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	switch c.In[0].DType {
	case tensor.Float64:
		return []*tensor.Tensor{like(c.In[0], g)}, nil
	case tensor.Float32:
		out := make([]float32, len(g))
		for i, v := range g {
			out[i] = float32(v)
		}
		return []*tensor.Tensor{like(c.In[0], out)}, nil
	}
	return nil, fmt.Errorf("cannot differentiate Cast from %v", c.In[0].DType)
}

// binaryParts returns a, b broadcast to y's shape and the output gradient.
func binaryParts[T tensor.Float](c *Ctx) (a, b, gy []T) {
	ys := c.Out[0].Shape
	return bcast(data[T](c.In[0]), c.In[0].Shape, ys), bcast(data[T](c.In[1]), c.In[1].Shape, ys), gradOr[T](c, 0)
}

func finishBinary[T tensor.Float](c *Ctx, ga, gb []T) []*tensor.Tensor {
	ys := c.Out[0].Shape
	out := make([]*tensor.Tensor, 2)
	if c.Need[0] && ga != nil {
		out[0] = like(c.In[0], sumTo(ga, ys, c.In[0].Shape))
	}
	if c.Need[1] && gb != nil {
		out[1] = like(c.In[1], sumTo(gb, ys, c.In[1].Shape))
	}
	return out
}

func gradAdd[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	gy := gradOr[T](c, 0)
	return finishBinary(c, gy, gy), nil
}

func gradSub[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	gy := gradOr[T](c, 0)
	neg := make([]T, len(gy))
	for i, v := range gy {
		neg[i] = -v
	}
	return finishBinary(c, gy, neg), nil
}

func gradMul[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	a, b, gy := binaryParts[T](c)
	ga, gb := make([]T, len(gy)), make([]T, len(gy))
	for i, g := range gy {
		ga[i], gb[i] = g*b[i], g*a[i]
	}
	return finishBinary(c, ga, gb), nil
}

func gradDiv[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	a, b, gy := binaryParts[T](c)
	ga, gb := make([]T, len(gy)), make([]T, len(gy))
	for i, g := range gy {
		ga[i] = g / b[i]
		gb[i] = -g * a[i] / (b[i] * b[i])
	}
	return finishBinary(c, ga, gb), nil
}

func gradPow[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	if !c.In[1].DType.IsFloat() || c.In[1].DType != c.In[0].DType {
		// integer exponent: only the base has a gradient
		e, err := tensor.AsFloat64(c.In[1])
		if err != nil {
			return nil, err
		}
		ys := c.Out[0].Shape
		eb := bcast(e, c.In[1].Shape, ys)
		a := bcast(data[T](c.In[0]), c.In[0].Shape, ys)
		gy := gradOr[T](c, 0)
		ga := make([]T, len(gy))
		for i, g := range gy {
			ga[i] = g * T(eb[i]*math.Pow(float64(a[i]), eb[i]-1))
		}
		return []*tensor.Tensor{like(c.In[0], sumTo(ga, ys, c.In[0].Shape)), nil}, nil
	}
	a, b, gy := binaryParts[T](c)
	y := data[T](c.Out[0])
	ga, gb := make([]T, len(gy)), make([]T, len(gy))
	for i, g := range gy {
		ga[i] = g * b[i] * T(math.Pow(float64(a[i]), float64(b[i])-1))
		if a[i] > 0 {
			gb[i] = g * y[i] * T(math.Log(float64(a[i])))
		}
	}
	return finishBinary(c, ga, gb), nil
}

func gradWhere[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	ys := c.Out[0].Shape
	cond := tensor.Data[bool](c.In[0])
	cb := make([]bool, prod(ys))
	for i, j := range tensor.BroadcastIndex(c.In[0].Shape, ys) {
		cb[i] = cond[j]
	}
	gy := gradOr[T](c, 0)
	gx, gz := make([]T, len(gy)), make([]T, len(gy))
	for i, g := range gy {
		if cb[i] {
			gx[i] = g
		} else {
			gz[i] = g
		}
	}
	out := make([]*tensor.Tensor, 3)
	if c.Need[1] {
		out[1] = like(c.In[1], sumTo(gx, ys, c.In[1].Shape))
	}
	if c.Need[2] {
		out[2] = like(c.In[2], sumTo(gz, ys, c.In[2].Shape))
	}
	return out, nil
}

// gradPRelu is PRelu from opset 7 (the slope broadcasts against X): dx is
// dy where x ≥ 0 and dy·slope elsewhere; dslope sums dy·x over x < 0.
func gradPRelu[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x, slope, gy := binaryParts[T](c)
	gx, gs := make([]T, len(gy)), make([]T, len(gy))
	for i, g := range gy {
		if x[i] < 0 {
			gx[i], gs[i] = g*slope[i], g*x[i]
		} else {
			gx[i] = g
		}
	}
	return finishBinary(c, gx, gs), nil
}

func gradClip[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	lo, hi := math.Inf(-1), math.Inf(1)
	if c.Opset < 11 {
		lo = float64(c.Attrs.Float("min", float32(math.Inf(-1))))
		hi = float64(c.Attrs.Float("max", float32(math.Inf(1))))
	} else {
		if len(c.In) > 1 && c.In[1] != nil {
			v, _ := tensor.AsFloat64(c.In[1])
			lo = v[0]
		}
		if len(c.In) > 2 && c.In[2] != nil {
			v, _ := tensor.AsFloat64(c.In[2])
			hi = v[0]
		}
	}
	x, gy := data[T](c.In[0]), gradOr[T](c, 0)
	gx := make([]T, len(x))
	for i, v := range x {
		if float64(v) >= lo && float64(v) <= hi {
			gx[i] = gy[i]
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0] = like(c.In[0], gx)
	return out, nil
}
