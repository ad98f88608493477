"""Fits the erf / erfc polynomials used by io.peft4j.kernels.NnMath (GELU, exact form).

Not run by the build: it documents where the constants come from. Run with /usr/bin/python3 (numpy + mpmath).
  |x| < 0.875 : erf(x)  = x * P(x^2),                 P of degree 5, relative error ~8.5e-9 (double)
  |x| >= 0.875: erfc(a) = exp(-a^2) * R(1/(1+a/2)),   R of degree 8 on a in [0.875, 10], rel. error ~1e-8
The fits minimise relative error with an iteratively reweighted least-squares (a cheap stand-in for Remez).
Evaluated in float32 with FMA Horner steps, the total absolute error of erf stays below ~1.2e-7 (checked by
NnMathTest against a double-precision series).
"""
import numpy as np
import mpmath as mp

mp.mp.dps = 30
N = 4000


def cheb_nodes(lo, hi, n=N):
    return lo + (hi - lo) * (0.5 + 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n))


def reweighted_fit(var, target, deg, iters=30):
    a = np.vander(var, deg + 1, increasing=True)
    w = np.ones_like(var)
    for _ in range(iters):
        c, *_ = np.linalg.lstsq(a * (w / target)[:, None], w, rcond=None)
        e = np.abs(a @ c - target) / target
        w = w * (1 + e / e.max())
    return c, e.max()


def main():
    x = np.concatenate([cheb_nodes(0.0, 0.875), [1e-6]])
    ps, es = reweighted_fit(x * x, np.array([float(mp.erf(v) / v) for v in x]), 5)
    a = cheb_nodes(0.875, 10.0)
    rs, er = reweighted_fit(1 / (1 + 0.5 * a), np.array([float(mp.erfc(v) * mp.exp(v * v)) for v in a]), 8)
    print("P (erf(x)/x in x^2), max rel err %.3g" % es)
    for c in ps:
        print("  %.9ef" % c)
    print("R (erfc(a) exp(a^2) in 1/(1+a/2)), max rel err %.3g" % er)
    for c in rs:
        print("  %.9ef" % c)


if __name__ == "__main__":
    main()
