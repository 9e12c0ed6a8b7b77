package autodiff

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/mtlrun/mtlrun/tensor"
)

// Det: ∂det(A)/∂A is the cofactor matrix of A (det(A)·A⁻ᵀ where A is
// invertible), computed from the minors' determinants so that it stays
// exact for singular matrices.

func init() {
	register("Det", gradDet, nil)
}

func gradDet(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x := c.In[0]
	if x.Rank() < 2 || x.Shape[x.Rank()-1] != x.Shape[x.Rank()-2] {
		return nil, fmt.Errorf("Det input %v is not a stack of square matrices", x.Shape)
	}
	n := x.Shape[x.Rank()-1]
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	gx := make([]float64, len(xv))
	minor := make([]float64, (n-1)*(n-1))
	for b := 0; b*n*n < len(xv); b++ {
		a := xv[b*n*n:][:n*n]
		if n == 1 {
			gx[b] = gy[b]
			continue
		}
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				k := 0
				for r := 0; r < n; r++ {
					for q := 0; q < n; q++ {
						if r != i && q != j {
							minor[k] = a[r*n+q]
							k++
						}
					}
				}
				cof := mat.Det(mat.NewDense(n-1, n-1, minor))
				if (i+j)%2 == 1 {
					cof = -cof
				}
				gx[b*n*n+i*n+j] = gy[b] * cof
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}
