package shapeinfer

import (
	"fmt"
	"sort"
	"strings"
)

// Expr is a symbolic non-negative integer: a polynomial with integer
// coefficients over named dimensions (e.g. batch*time, time+2), or unknown.
// Results that are no polynomial (floor division, ceil) become opaque atoms
// named after the computation, e.g. "ceil(time/2)", so two equal
// computations still share a name.
//
// Shape inference assumes every symbolic dimension is at least 1; that is
// what lets x[-1:] of a [time] axis be 1 and time-1 be non-negative.
type Expr struct {
	unknown bool
	terms   []term // sorted by mono, no zero coefficients
}

// term is coef·mono; mono is the sorted product of symbols joined by monoSep
// ("" for the constant term).
type term struct {
	mono string
	coef int64
}

const monoSep = "\x1f"

// Const is the constant c.
func Const(c int64) Expr {
	if c == 0 {
		return Expr{}
	}
	return Expr{terms: []term{{"", c}}}
}

// Sym is the named symbolic dimension.
func Sym(name string) Expr { return Expr{terms: []term{{name, 1}}} }

// Unknown is a dimension about which nothing is known.
func Unknown() Expr { return Expr{unknown: true} }

// IsUnknown reports whether nothing is known about e.
func (e Expr) IsUnknown() bool { return e.unknown }

// IsConst returns the value of a constant expression.
func (e Expr) IsConst() (int64, bool) {
	if e.unknown {
		return 0, false
	}
	switch len(e.terms) {
	case 0:
		return 0, true
	case 1:
		if e.terms[0].mono == "" {
			return e.terms[0].coef, true
		}
	}
	return 0, false
}

// isConstVal reports whether e is the constant c.
func (e Expr) isConstVal(c int64) bool {
	v, ok := e.IsConst()
	return ok && v == c
}

// Equal reports whether two expressions are the same polynomial (unknowns
// are equal to nothing).
func (e Expr) Equal(f Expr) bool {
	if e.unknown || f.unknown || len(e.terms) != len(f.terms) {
		return false
	}
	for i := range e.terms {
		if e.terms[i] != f.terms[i] {
			return false
		}
	}
	return true
}

func normalize(m map[string]int64) Expr {
	ts := make([]term, 0, len(m))
	for k, v := range m {
		if v != 0 {
			ts = append(ts, term{k, v})
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].mono < ts[j].mono })
	return Expr{terms: ts}
}

// Add returns e+f.
func (e Expr) Add(f Expr) Expr {
	if e.unknown || f.unknown {
		return Unknown()
	}
	m := map[string]int64{}
	for _, t := range e.terms {
		m[t.mono] += t.coef
	}
	for _, t := range f.terms {
		m[t.mono] += t.coef
	}
	return normalize(m)
}

// Neg returns -e.
func (e Expr) Neg() Expr {
	if e.unknown {
		return e
	}
	ts := make([]term, len(e.terms))
	for i, t := range e.terms {
		ts[i] = term{t.mono, -t.coef}
	}
	return Expr{terms: ts}
}

// Sub returns e-f.
func (e Expr) Sub(f Expr) Expr { return e.Add(f.Neg()) }

func splitMono(m string) []string {
	if m == "" {
		return nil
	}
	return strings.Split(m, monoSep)
}

func joinMono(syms []string) string {
	sort.Strings(syms)
	return strings.Join(syms, monoSep)
}

// Mul returns e·f.
func (e Expr) Mul(f Expr) Expr {
	if c, ok := e.IsConst(); ok && c == 0 {
		return Const(0)
	}
	if c, ok := f.IsConst(); ok && c == 0 {
		return Const(0)
	}
	if e.unknown || f.unknown {
		return Unknown()
	}
	m := map[string]int64{}
	for _, a := range e.terms {
		for _, b := range f.terms {
			syms := append(splitMono(a.mono), splitMono(b.mono)...)
			m[joinMono(syms)] += a.coef * b.coef
		}
	}
	return normalize(m)
}

// removeSyms deletes the symbols of d from those of m (as multisets).
func removeSyms(m, d []string) ([]string, bool) {
	rest := append([]string(nil), m...)
	for _, s := range d {
		found := false
		for i, r := range rest {
			if r == s {
				rest = append(rest[:i], rest[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return rest, true
}

// DivExact returns e/f when f divides e exactly as polynomials (f a
// non-zero constant or a single term, or f equal to e).
func (e Expr) DivExact(f Expr) (Expr, bool) {
	if e.unknown || f.unknown {
		return Unknown(), false
	}
	if e.Equal(f) && len(e.terms) > 0 {
		return Const(1), true
	}
	if len(f.terms) != 1 || f.terms[0].coef == 0 {
		return Unknown(), false
	}
	d := f.terms[0]
	ds := splitMono(d.mono)
	m := map[string]int64{}
	for _, t := range e.terms {
		if t.coef%d.coef != 0 {
			return Unknown(), false
		}
		rest, ok := removeSyms(splitMono(t.mono), ds)
		if !ok {
			return Unknown(), false
		}
		m[joinMono(rest)] += t.coef / d.coef
	}
	return normalize(m), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// FloorDiv returns ⌊e/c⌋ for a positive constant c.
func (e Expr) FloorDiv(c int64) Expr {
	if e.unknown || c <= 0 {
		return Unknown()
	}
	if v, ok := e.IsConst(); ok {
		return Const(floorDiv(v, c))
	}
	if q, ok := e.DivExact(Const(c)); ok {
		return q
	}
	return Sym(fmt.Sprintf("floor((%s)/%d)", e, c))
}

// CeilDiv returns ⌈e/c⌉ for a positive constant c.
func (e Expr) CeilDiv(c int64) Expr {
	if e.unknown || c <= 0 {
		return Unknown()
	}
	if v, ok := e.IsConst(); ok {
		return Const(ceilDiv(v, c))
	}
	if q, ok := e.DivExact(Const(c)); ok {
		return q
	}
	return Sym(fmt.Sprintf("ceil((%s)/%d)", e, c))
}

// lowerBound returns a lower bound of e given every symbol ≥ 1, when one is
// easy to see (all non-constant coefficients positive).
func (e Expr) lowerBound() (int64, bool) {
	if e.unknown {
		return 0, false
	}
	var lb int64
	for _, t := range e.terms {
		if t.mono != "" && t.coef < 0 {
			return 0, false
		}
		lb += t.coef
	}
	return lb, true
}

// nonNeg reports whether e ≥ 0 is certain.
func (e Expr) nonNeg() bool {
	lb, ok := e.lowerBound()
	return ok && lb >= 0
}

// String formats e: "7", "batch", "batch*time", "time+2", "?".
func (e Expr) String() string {
	if e.unknown {
		return "?"
	}
	if len(e.terms) == 0 {
		return "0"
	}
	var b strings.Builder
	// symbolic terms first, constant last: "time-1" rather than "-1+time"
	ts := append([]term(nil), e.terms...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].mono != "" && ts[j].mono == "" })
	for i, t := range ts {
		c := t.coef
		if i > 0 {
			if c < 0 {
				b.WriteString("-")
				c = -c
			} else {
				b.WriteString("+")
			}
		} else if c < 0 && t.mono != "" {
			b.WriteString("-")
			c = -c
		}
		switch {
		case t.mono == "":
			fmt.Fprint(&b, c)
		case c == 1:
			b.WriteString(strings.ReplaceAll(t.mono, monoSep, "*"))
		default:
			fmt.Fprintf(&b, "%d*%s", c, strings.ReplaceAll(t.mono, monoSep, "*"))
		}
	}
	return b.String()
}

// Eval computes e with symbols bound by env; ok is false when a symbol is
// missing or e is unknown.
func (e Expr) Eval(env map[string]int64) (int64, bool) {
	if e.unknown {
		return 0, false
	}
	var v int64
	for _, t := range e.terms {
		p := t.coef
		for _, s := range splitMono(t.mono) {
			x, ok := env[s]
			if !ok {
				return 0, false
			}
			p *= x
		}
		v += p
	}
	return v, true
}
