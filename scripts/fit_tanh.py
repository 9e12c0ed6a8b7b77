#!/usr/bin/python3
"""Fit the rational tanh of the fused cell kernels (ops/linalg/internal/tanhcoef).

tanh(x) = x * P(x^2) / Q(x^2) on |x| <= X (X = 9; beyond it tanh rounds to
within one float32 ulp of +-1), P and Q of degree 4 in u = x^2, Q(0) = 1.
The fit minimises the largest relative error of P/Q against tanh(x)/x
(mpmath, 30 digits) with Lawson's iteratively reweighted least squares on a
linearised problem (P - f*Q over f*Q, Q from the previous pass), the
variable scaled to u/X^2 for conditioning.

Then it rounds the coefficients to float32 and evaluates the kernels'
float32 arithmetic (u = x*x, Horner by fused multiply-adds, x*P, P/Q) on
3 million inputs, reporting the error in ulps of the float64 tanh; the
sigmoid is 0.5 + x*P'(x^2)/Q'(x^2) with P'_k = P_k/4^k, Q'_k = 4*Q_k/4^k
(sigma(x) = 0.5 + 0.5*tanh(x/2); the scaling by powers of two is exact).

Prints the coefficients as float32 bit patterns for internal/tanhcoef
(the sigmoid's are derived from them by the generators).

    /usr/bin/python3 scripts/fit_tanh.py      # Debian: python3-numpy python3-mpmath
"""
import numpy as np
import mpmath as mp

mp.mp.dps = 30
X = 9.0
DEG_P, DEG_Q = 4, 4


def fit():
    n = 6000
    x = np.array([X * (1 - np.cos(np.pi * (i + 0.5) / n)) / 2 for i in range(n)])
    x = np.sort(np.concatenate([x, np.linspace(1e-4, X, 4000)]))
    f = np.array([float(mp.tanh(mp.mpf(v)) / mp.mpf(v)) for v in x])
    u = x * x / (X * X)
    q_val, w = np.ones_like(u), np.ones_like(u)
    for it in range(120):
        a = np.hstack([np.vander(u, DEG_P + 1, increasing=True),
                       -(f[:, None]) * np.vander(u, DEG_Q + 1, increasing=True)[:, 1:]])
        scale = (w / (f * q_val))[:, None]
        c, *_ = np.linalg.lstsq(a * scale, f * scale[:, 0], rcond=None)
        p, q = c[:DEG_P + 1], np.concatenate([[1.0], c[DEG_P + 1:]])
        q_val = np.polyval(q[::-1], u)
        err = np.abs(np.polyval(p[::-1], u) / q_val - f) / f
        if it > 10:
            w = w * np.sqrt(err / err.max())
            w = w / w.sum() * len(w)
    p = np.array([p[k] / X ** (2 * k) for k in range(DEG_P + 1)], dtype=np.float32)
    q = np.array([q[k] / X ** (2 * k) for k in range(DEG_Q + 1)], dtype=np.float32)
    assert all(r.real < 0 for r in np.roots(q[::-1].astype(np.float64))), "Q has a zero on [0, X^2]"
    return p, q, err.max()


def fma(a, b, c):
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def rational(x, p, q, lim):
    x = np.minimum(np.maximum(x, np.float32(-lim)), np.float32(lim))
    u = (x * x).astype(np.float32)
    num = np.full_like(x, p[-1])
    for k in range(len(p) - 2, -1, -1):
        num = fma(num, u, np.full_like(x, p[k]))
    num = (num * x).astype(np.float32)
    den = np.full_like(x, q[-1])
    for k in range(len(q) - 2, -1, -1):
        den = fma(den, u, np.full_like(x, q[k]))
    return (num / den).astype(np.float32)


def main():
    p, q, rel = fit()
    ps = np.array([p[k] / np.float32(4.0 ** k) for k in range(len(p))], dtype=np.float32)
    qs = np.array([np.float32(4.0) * q[k] / np.float32(4.0 ** k) for k in range(len(q))], dtype=np.float32)
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.uniform(-12, 12, 2_000_000), rng.uniform(-0.01, 0.01, 500_000),
                         np.float32(10.0) ** rng.uniform(-30, 1, 500_000)]).astype(np.float32)
    t = rational(xs, p, q, X)
    ref = np.tanh(xs.astype(np.float64))
    terr = np.abs(t - ref)
    s = (rational(xs, ps, qs, 2 * X) + np.float32(0.5)).astype(np.float32)
    sref = 1 / (1 + np.exp(-xs.astype(np.float64)))
    serr = np.abs(s - sref)
    print(f"fit: largest relative error of P/Q {rel:.3g} (exact arithmetic)")
    print(f"float32 tanh: max {(terr / np.spacing(np.abs(ref).astype(np.float32))).max():.2f} ulp, "
          f"max abs {terr.max():.3g}, range [{t.min()}, {t.max()}]")
    print(f"float32 sigmoid: max abs {serr.max():.3g}, range [{s.min()}, {s.max()}]")
    for name, c in [("tanhP", p), ("tanhQ", q), ("sigP", ps), ("sigQ", qs)]:
        print(name, " ".join(f"0x{v.view(np.uint32):08x}" for v in c), " ".join(f"{v:.9g}" for v in c))


if __name__ == "__main__":
    main()
