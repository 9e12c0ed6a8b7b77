// Package all links every kernel family into the ops registry. Import it for
// its side effects wherever a complete op set is needed.
package all

import (
	_ "github.com/mtlrun/mtlrun/ops/math"
	_ "github.com/mtlrun/mtlrun/ops/nn"
	_ "github.com/mtlrun/mtlrun/ops/rnn"
	_ "github.com/mtlrun/mtlrun/ops/shape"
)
