package nn

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TfIdfVectorizer over integer tokens (pool_int64s): counts the pool's
// n-grams (min..max length, with up to max_skip_count tokens skipped
// between the items of an n-gram of length ≥ 2) in each row, then TF
// (counts), IDF (1 where present, times the weight) or TFIDF (counts times
// the weight). String pools are refused: string processing is out of scope.

func init() {
	ops.Define(ops.Desc{Type: "TfIdfVectorizer", Since: 9, Grad: ops.NotDifferentiable("it counts integer or string n-grams"), Kernel: newTfIdf})
}

func newTfIdf(c *ops.Config) (ops.Op, error) {
	if c.Attrs.Has("pool_strings") {
		return nil, ops.BadAttr("pool_strings", "string pools are not supported (integer tokens only)")
	}
	minN, maxN := int(c.Attrs.Int("min_gram_length", 0)), int(c.Attrs.Int("max_gram_length", 0))
	maxSkip := int(c.Attrs.Int("max_skip_count", 0))
	mode := c.Attrs.String("mode", "")
	pool, counts, idx := c.Attrs.Ints("pool_int64s"), c.Attrs.Ints("ngram_counts"), c.Attrs.Ints("ngram_indexes")
	weights := c.Attrs.Floats("weights")
	if minN < 1 || maxN < minN || maxSkip < 0 || len(counts) < maxN {
		return nil, ops.BadAttr("ngram_counts", "gram lengths %d..%d do not fit ngram_counts %v", minN, maxN, counts)
	}
	switch mode {
	case "TF", "IDF", "TFIDF":
	default:
		return nil, ops.BadAttr("mode", "unknown mode %q (want TF, IDF or TFIDF)", mode)
	}
	// the pool's n-grams keyed by their tokens, mapped to their entry number
	type key struct {
		n   int
		tok [8]int64
	}
	entries := map[key]int{}
	width := 0
	entry := 0
	for n := 1; n <= len(counts); n++ {
		start := int(counts[n-1])
		end := len(pool)
		if n < len(counts) {
			end = int(counts[n])
		}
		if start > end || end > len(pool) || (end-start)%n != 0 || n > 8 {
			return nil, ops.BadAttr("ngram_counts", "%v does not split pool_int64s (%d items) into n-grams", counts, len(pool))
		}
		for p := start; p < end; p += n {
			var k key
			k.n = n
			copy(k.tok[:], pool[p:p+n])
			entries[k] = entry
			entry++
		}
	}
	if len(idx) != entry || (weights != nil && len(weights) != entry) {
		return nil, ops.BadAttr("ngram_indexes", "%d indexes and %d weights for %d n-grams", len(idx), len(weights), entry)
	}
	for _, i := range idx {
		width = max(width, int(i)+1)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		tok, err := tensor.AsInt64(x)
		if err != nil || x.Rank() < 1 || x.Rank() > 2 {
			return nil, ops.BadInput(0, "TfIdfVectorizer needs integer tokens [C] or [N, C], got %v", x)
		}
		rows, C := 1, x.Shape[x.Rank()-1]
		shape := []int{width}
		if x.Rank() == 2 {
			rows = x.Shape[0]
			shape = []int{rows, width}
		}
		out := make([]float32, rows*width)
		cnt := make([]float32, entry)
		for r := 0; r < rows; r++ {
			row := tok[r*C : (r+1)*C]
			for i := range cnt {
				cnt[i] = 0
			}
			for n := minN; n <= maxN; n++ {
				skips := maxSkip
				if n == 1 {
					skips = 0
				}
				for s := 0; s <= skips; s++ {
					for st := 0; st+(n-1)*(s+1) < C; st++ {
						var k key
						k.n = n
						for j := 0; j < n; j++ {
							k.tok[j] = row[st+j*(s+1)]
						}
						if e, ok := entries[k]; ok {
							cnt[e]++
						}
					}
				}
			}
			for e, v := range cnt {
				w := float32(1)
				if weights != nil {
					w = weights[e]
				}
				switch mode {
				case "IDF":
					if v > 0 {
						v = w
					}
				case "TFIDF":
					v *= w
				}
				out[r*width+int(idx[e])] += v
			}
		}
		return []*tensor.Tensor{tensor.From(shape, out)}, nil
	}), nil
}
