package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// Col2Im adds each column entry (block l, kernel tap k of channel c) into
// one image position, so its gradient is the matching im2col of the output
// gradient: every entry reads the image gradient where it landed (nothing
// where it fell in the padding).

func init() {
	register("Col2Im", gradCol2Im, nil)
}

func gradCol2Im(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x := c.In[0]
	img, err := tensor.AsInt64(c.In[1])
	if err != nil {
		return nil, err
	}
	blk, err := tensor.AsInt64(c.In[2])
	if err != nil || len(blk) != len(img) || x.Rank() != 3 {
		return nil, fmt.Errorf("Col2Im input %v, image shape %v, block shape %v", x.Shape, img, blk)
	}
	nd := len(img)
	attr := func(name string, i, def int) int {
		if v := c.Attrs.Ints(name); i < len(v) {
			return int(v[i])
		}
		return def
	}
	sp, k, s, d, pb, nb := make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd)
	for i := range sp {
		sp[i], k[i] = int(img[i]), int(blk[i])
		s[i], d[i], pb[i] = attr("strides", i, 1), attr("dilations", i, 1), attr("pads", i, 0)
		nb[i] = (sp[i]+pb[i]+attr("pads", i+nd, 0)-((k[i]-1)*d[i]+1))/s[i] + 1
	}
	kSize, L, imSize := prod(k), prod(nb), prod(sp)
	if x.Shape[2] != L || x.Shape[1]%kSize != 0 {
		return nil, fmt.Errorf("Col2Im input %v does not fit %d blocks of %d", x.Shape, L, kSize)
	}
	// the image offset of (tap, block), or −1 in the padding
	land := make([]int, kSize*L)
	ki, bi := make([]int, nd), make([]int, nd)
	for kk := 0; kk < kSize; kk++ {
		rem := kk
		for j := nd - 1; j >= 0; j-- {
			ki[j], rem = rem%k[j], rem/k[j]
		}
		for l := 0; l < L; l++ {
			rem := l
			for j := nd - 1; j >= 0; j-- {
				bi[j], rem = rem%nb[j], rem/nb[j]
			}
			off := 0
			for j := 0; j < nd && off >= 0; j++ {
				p := bi[j]*s[j] - pb[j] + ki[j]*d[j]
				if p < 0 || p >= sp[j] {
					off = -1
				} else {
					off = off*sp[j] + p
				}
			}
			land[kk*L+l] = off
		}
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	N, CK := x.Shape[0], x.Shape[1]
	C := CK / kSize
	gx := make([]float64, x.Len())
	for n := 0; n < N; n++ {
		for ch := 0; ch < C; ch++ {
			for kk := 0; kk < kSize; kk++ {
				for l := 0; l < L; l++ {
					if off := land[kk*L+l]; off >= 0 {
						gx[((n*CK+ch*kSize+kk)*L)+l] = gy[(n*C+ch)*imSize+off]
					}
				}
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}
