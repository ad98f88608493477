package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API implementation of {@link NnKernels}. Full vectors in the main loop, the scalar twin's formula for the
 * tail (so a tail never diverges from {@link ScalarNnKernels} by more than rounding). exp and tanh use the JDK's
 * vector intrinsics (SVML on x86); erf uses {@link NnMath}'s polynomials.
 */
final class VectorNnKernels implements NnKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ScalarNnKernels TAIL = new ScalarNnKernels();
    /** Swaps lanes (2i, 2i+1): the partner of each element in an interleaved RoPE pair. */
    private static final VectorShuffle<Float> PAIR_SWAP = VectorShuffle.fromOp(S, i -> i ^ 1);
    private static final FloatVector PAIR_SIGN;     // [-1, +1, -1, +1, ...]
    private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

    static {
        float[] s = new float[L];
        for (int i = 0; i < L; i++) s[i] = (i & 1) == 0 ? -1f : 1f;
        PAIR_SIGN = FloatVector.fromArray(S, s, 0);
    }

    // ------------------------------------------------------------------ reductions and BLAS-1

    @Override
    public float max(float[] x, int xo, int n) {
        int i = 0, ub = S.loopBound(n);
        float m = Float.NEGATIVE_INFINITY;
        if (ub > 0) {
            FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (; i < ub; i += L) acc = acc.max(FloatVector.fromArray(S, x, xo + i));
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    @Override
    public float sum(float[] x, int xo, int n) {
        int i = 0, ub = S.loopBound(n);
        float s = 0;
        if (ub > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < ub; i += L) acc = acc.add(FloatVector.fromArray(S, x, xo + i));
            s = VectorMath.sum(acc);
        }
        for (; i < n; i++) s += x[xo + i];
        return s;
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0, ub = S.loopBound(n);
        float s = 0;
        if (ub > 0) {
            FloatVector acc0 = FloatVector.zero(S), acc1 = FloatVector.zero(S);
            int ub2 = n - n % (2 * L);
            for (; i < ub2; i += 2 * L) {
                acc0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc0);
                acc1 = FloatVector.fromArray(S, a, ao + i + L).fma(FloatVector.fromArray(S, b, bo + i + L), acc1);
            }
            for (; i < ub; i += L) acc0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc0);
            s = VectorMath.sum(acc0.add(acc1));
        }
        for (; i < n; i++) s = Math.fma(a[ao + i], b[bo + i], s);
        return s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (; i < ub; i += L)
            va.fma(FloatVector.fromArray(S, x, xo + i), FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] = Math.fma(alpha, x[xo + i], y[yo + i]);
    }

    @Override
    public void scale(float s, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) FloatVector.fromArray(S, y, yo + i).mul(s).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] *= s;
    }

    @Override
    public void addScalar(float[] x, int xo, float c, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) FloatVector.fromArray(S, x, xo + i).add(c).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] = x[xo + i] + c;
    }

    // ------------------------------------------------------------------ softmax family

    @Override
    public float sumExp(float[] x, int xo, float shift, int n) {
        int i = 0, ub = S.loopBound(n);
        float s = 0;
        if (ub > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < ub; i += L) acc = acc.add(VectorMath.exp(FloatVector.fromArray(S, x, xo + i).sub(shift)));
            s = VectorMath.sum(acc);
        }
        return s + TAIL.sumExp(x, xo + i, shift, n - i);
    }

    @Override
    public float expStore(float[] x, int xo, float shift, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        float s = 0;
        if (ub > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < ub; i += L) {
                FloatVector e = VectorMath.exp(FloatVector.fromArray(S, x, xo + i).sub(shift));
                e.intoArray(y, yo + i);
                acc = acc.add(e);
            }
            s = VectorMath.sum(acc);
        }
        return s + TAIL.expStore(x, xo + i, shift, y, yo + i, n - i);
    }

    @Override
    public void addExp(float alpha, float[] x, int xo, float shift, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (; i < ub; i += L)
            VectorMath.exp(FloatVector.fromArray(S, x, xo + i).sub(shift))
                    .fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        TAIL.addExp(alpha, x, xo + i, shift, y, yo + i, n - i);
    }

    @Override
    public void softmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float d = dot(dy, dyo, y, yo, n);
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector vy = FloatVector.fromArray(S, y, yo + i);
            vy.mul(FloatVector.fromArray(S, dy, dyo + i).sub(d)).add(FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
        }
        for (; i < n; i++) dx[dxo + i] += y[yo + i] * (dy[dyo + i] - d);
    }

    @Override
    public void logSoftmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        float s = sum(dy, dyo, n);
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, y, yo + i));
            FloatVector.fromArray(S, dy, dyo + i).sub(e.mul(s)).add(FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
        }
        for (; i < n; i++) dx[dxo + i] += dy[dyo + i] - (float) Math.exp(y[yo + i]) * s;
    }

    // ------------------------------------------------------------------ norms

    @Override
    public float rmsNorm(float[] x, int xo, float[] w, int wo, float[] y, int yo, int n, float eps) {
        int i = 0, ub = S.loopBound(n);
        float ss = 0;
        if (ub > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < ub; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i);
                acc = v.fma(v, acc);
            }
            ss = VectorMath.sum(acc);
        }
        for (; i < n; i++) ss = Math.fma(x[xo + i], x[xo + i], ss);
        float rstd = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (i = 0; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i).mul(rstd);
            if (w != null) v = v.mul(FloatVector.fromArray(S, w, wo + i));
            v.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float v = x[xo + i] * rstd;
            y[yo + i] = w == null ? v : v * w[wo + i];
        }
        return rstd;
    }

    @Override
    public void rmsNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float rstd,
                                float[] dx, int dxo, float[] dw, int dwo, int n) {
        int ub = S.loopBound(n);
        if (dx != null) {
            int i = 0;
            float gx = 0;
            if (ub > 0) {
                FloatVector acc = FloatVector.zero(S);
                for (; i < ub; i += L) {
                    FloatVector g = FloatVector.fromArray(S, dy, dyo + i);
                    if (w != null) g = g.mul(FloatVector.fromArray(S, w, wo + i));
                    acc = g.fma(FloatVector.fromArray(S, x, xo + i), acc);
                }
                gx = VectorMath.sum(acc);
            }
            for (; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                gx = Math.fma(g, x[xo + i], gx);
            }
            float c = gx * rstd * rstd / n;
            FloatVector vc = FloatVector.broadcast(S, -c), vr = FloatVector.broadcast(S, rstd);
            for (i = 0; i < ub; i += L) {
                FloatVector g = FloatVector.fromArray(S, dy, dyo + i);
                if (w != null) g = g.mul(FloatVector.fromArray(S, w, wo + i));
                // rstd * (g - x c) + dx
                FloatVector.fromArray(S, x, xo + i).fma(vc, g).fma(vr, FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
            }
            for (; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                dx[dxo + i] += rstd * (g - x[xo + i] * c);
            }
        }
        if (dw != null) {
            int i = 0;
            for (; i < ub; i += L)
                FloatVector.fromArray(S, x, xo + i).mul(rstd).fma(FloatVector.fromArray(S, dy, dyo + i), FloatVector.fromArray(S, dw, dwo + i)).intoArray(dw, dwo + i);
            for (; i < n; i++) dw[dwo + i] = Math.fma(dy[dyo + i], x[xo + i] * rstd, dw[dwo + i]);
        }
    }

    @Override
    public void layerNorm(float[] x, int xo, float[] w, int wo, float[] b, int bo, float[] y, int yo, int n,
                          float eps, float[] stats, int so) {
        float mean = sum(x, xo, n) / n;
        int i = 0, ub = S.loopBound(n);
        float var = 0;
        if (ub > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < ub; i += L) {
                FloatVector c = FloatVector.fromArray(S, x, xo + i).sub(mean);
                acc = c.fma(c, acc);
            }
            var = VectorMath.sum(acc);
        }
        for (; i < n; i++) {
            float c = x[xo + i] - mean;
            var = Math.fma(c, c, var);
        }
        float rstd = (float) (1.0 / Math.sqrt(var / n + eps));
        for (i = 0; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i).sub(mean).mul(rstd);
            if (w != null) v = v.mul(FloatVector.fromArray(S, w, wo + i));
            if (b != null) v = v.add(FloatVector.fromArray(S, b, bo + i));
            v.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float v = (x[xo + i] - mean) * rstd;
            if (w != null) v *= w[wo + i];
            if (b != null) v += b[bo + i];
            y[yo + i] = v;
        }
        stats[so] = mean;
        stats[so + 1] = rstd;
    }

    @Override
    public void layerNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float mean, float rstd,
                                  float[] dx, int dxo, float[] dw, int dwo, float[] db, int dbo, int n) {
        int ub = S.loopBound(n);
        if (dx != null) {
            int i = 0;
            float gs = 0, gxh = 0;
            if (ub > 0) {
                FloatVector as = FloatVector.zero(S), ax = FloatVector.zero(S);
                for (; i < ub; i += L) {
                    FloatVector g = FloatVector.fromArray(S, dy, dyo + i);
                    if (w != null) g = g.mul(FloatVector.fromArray(S, w, wo + i));
                    as = as.add(g);
                    ax = g.fma(FloatVector.fromArray(S, x, xo + i).sub(mean).mul(rstd), ax);
                }
                gs = VectorMath.sum(as);
                gxh = VectorMath.sum(ax);
            }
            for (; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                gs += g;
                gxh = Math.fma(g, (x[xo + i] - mean) * rstd, gxh);
            }
            float mg = gs / n, mgx = gxh / n;
            FloatVector vm = FloatVector.broadcast(S, -mgx), vr = FloatVector.broadcast(S, rstd);
            for (i = 0; i < ub; i += L) {
                FloatVector g = FloatVector.fromArray(S, dy, dyo + i);
                if (w != null) g = g.mul(FloatVector.fromArray(S, w, wo + i));
                FloatVector xh = FloatVector.fromArray(S, x, xo + i).sub(mean).mul(rstd);
                xh.fma(vm, g.sub(mg)).fma(vr, FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
            }
            for (; i < n; i++) {
                float g = w == null ? dy[dyo + i] : dy[dyo + i] * w[wo + i];
                float xh = (x[xo + i] - mean) * rstd;
                dx[dxo + i] += rstd * (g - mg - xh * mgx);
            }
        }
        if (dw != null) {
            int i = 0;
            for (; i < ub; i += L)
                FloatVector.fromArray(S, x, xo + i).sub(mean).mul(rstd)
                        .fma(FloatVector.fromArray(S, dy, dyo + i), FloatVector.fromArray(S, dw, dwo + i)).intoArray(dw, dwo + i);
            for (; i < n; i++) dw[dwo + i] = Math.fma(dy[dyo + i], (x[xo + i] - mean) * rstd, dw[dwo + i]);
        }
        if (db != null) {
            int i = 0;
            for (; i < ub; i += L)
                FloatVector.fromArray(S, dy, dyo + i).add(FloatVector.fromArray(S, db, dbo + i)).intoArray(db, dbo + i);
            for (; i < n; i++) db[dbo + i] += dy[dyo + i];
        }
    }

    // ------------------------------------------------------------------ activations

    private static FloatVector sigmoid(FloatVector v) {
        return ONE.div(VectorMath.exp(v.neg()).add(1f));
    }

    // normalCdf is split into small helpers on purpose: C2 will not inline a method over 325 bytecodes
    // (FreqInlineSize), and a non-inlined method that takes or returns vectors boxes them, ~10x slower.

    /** Phi(x), the same two-piece evaluation as {@link NnMath#normalCdf}. */
    private static FloatVector normalCdf(FloatVector x) {
        FloatVector z = x.mul(NnMath.SQRT_HALF);
        FloatVector u = z.mul(z);
        FloatVector a = z.abs();
        FloatVector small = z.mul(0.5f).fma(erfSmall(u), FloatVector.broadcast(S, 0.5f));
        VectorMask<Float> isSmall = a.lt(NnMath.ERF_SPLIT);
        if (isSmall.allTrue()) return small;
        FloatVector e = erfcLarge(a, u).mul(0.5f);
        return ONE.sub(e).blend(e, z.lt(0f)).blend(small, isSmall);
    }

    /** erf(z) / z as a polynomial in u = z^2 ({@link NnMath#erfSmall}). */
    private static FloatVector erfSmall(FloatVector u) {
        FloatVector p = FloatVector.broadcast(S, NnMath.P5);
        p = p.fma(u, FloatVector.broadcast(S, NnMath.P4));
        p = p.fma(u, FloatVector.broadcast(S, NnMath.P3));
        p = p.fma(u, FloatVector.broadcast(S, NnMath.P2));
        p = p.fma(u, FloatVector.broadcast(S, NnMath.P1));
        return p.fma(u, FloatVector.broadcast(S, NnMath.P0));
    }

    /** erfc(a) = exp(-a^2) R(t), with u = a^2 ({@link NnMath#erfcLarge}). */
    private static FloatVector erfcLarge(FloatVector a, FloatVector u) {
        FloatVector t = ONE.div(a.min(NnMath.ERFC_CLAMP).fma(FloatVector.broadcast(S, 0.5f), ONE));
        FloatVector r = FloatVector.broadcast(S, NnMath.R8);
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R7));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R6));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R5));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R4));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R3));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R2));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R1));
        r = r.fma(t, FloatVector.broadcast(S, NnMath.R0));
        return VectorMath.exp(u.neg()).mul(r);
    }

    @Override
    public void gelu(boolean tanh, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i);
            FloatVector r;
            if (tanh) {
                FloatVector t = VectorMath.tanh(v.mul(NnMath.GELU_C).fma(v.mul(v), v).mul(NnMath.GELU_K));
                r = v.mul(0.5f).mul(t.add(1f));
            } else {
                r = v.mul(normalCdf(v));
            }
            r.intoArray(y, yo + i);
        }
        TAIL.gelu(tanh, x, xo + i, y, yo + i, n - i);
    }

    @Override
    public void geluBackward(boolean tanh, float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i).max(-NnMath.GELU_GRAD_CLAMP).min(NnMath.GELU_GRAD_CLAMP);
            FloatVector v2 = v.mul(v);
            FloatVector d;
            if (tanh) {
                FloatVector t = VectorMath.tanh(v.mul(NnMath.GELU_C).fma(v2, v).mul(NnMath.GELU_K));
                FloatVector inner = v2.fma(FloatVector.broadcast(S, 3f * NnMath.GELU_C), FloatVector.broadcast(S, 1f));
                d = t.add(1f).mul(0.5f).add(v.mul(0.5f).mul(t.fma(t.neg(), FloatVector.broadcast(S, 1f))).mul(NnMath.GELU_K).mul(inner));
            } else {
                FloatVector pdf = VectorMath.exp(v2.mul(-0.5f)).mul(NnMath.INV_SQRT_2PI);
                d = v.fma(pdf, normalCdf(v));
            }
            FloatVector.fromArray(S, dy, dyo + i).fma(d, FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
        }
        TAIL.geluBackward(tanh, x, xo + i, dy, dyo + i, dx, dxo + i, n - i);
    }

    @Override
    public void silu(float[] x, int xo, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i);
            v.mul(sigmoid(v)).intoArray(y, yo + i);
        }
        TAIL.silu(x, xo + i, y, yo + i, n - i);
    }

    @Override
    public void siluBackward(float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i);
            FloatVector s = sigmoid(v);
            FloatVector d = s.mul(v.fma(s.neg().add(1f), FloatVector.broadcast(S, 1f)));
            FloatVector.fromArray(S, dy, dyo + i).fma(d, FloatVector.fromArray(S, dx, dxo + i)).intoArray(dx, dxo + i);
        }
        TAIL.siluBackward(x, xo + i, dy, dyo + i, dx, dxo + i, n - i);
    }

    @Override
    public void swiglu(float[] g, int go, float[] u, int uo, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, g, go + i);
            v.mul(sigmoid(v)).mul(FloatVector.fromArray(S, u, uo + i)).intoArray(y, yo + i);
        }
        TAIL.swiglu(g, go + i, u, uo + i, y, yo + i, n - i);
    }

    @Override
    public void swigluBackward(float[] g, int go, float[] u, int uo, float[] dy, int dyo, float[] dg, int dgo,
                               float[] du, int duo, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, g, go + i);
            FloatVector s = sigmoid(v);
            FloatVector d = FloatVector.fromArray(S, dy, dyo + i);
            if (dg != null) {
                FloatVector ds = s.mul(v.fma(s.neg().add(1f), FloatVector.broadcast(S, 1f)));
                d.mul(FloatVector.fromArray(S, u, uo + i)).fma(ds, FloatVector.fromArray(S, dg, dgo + i)).intoArray(dg, dgo + i);
            }
            if (du != null) d.fma(v.mul(s), FloatVector.fromArray(S, du, duo + i)).intoArray(du, duo + i);
        }
        TAIL.swigluBackward(g, go + i, u, uo + i, dy, dyo + i, dg, dgo + i, du, duo + i, n - i);
    }

    // ------------------------------------------------------------------ RoPE

    @Override
    public void ropeHalf(float[] x, int xo, float[] y, int yo, int half, float[] cos, float[] sin, int co,
                         boolean inverse, boolean accumulate) {
        int i = 0, ub = S.loopBound(half);
        for (; i < ub; i += L) {
            FloatVector c = FloatVector.fromArray(S, cos, co + i);
            FloatVector s = FloatVector.fromArray(S, sin, co + i);
            if (inverse) s = s.neg();
            FloatVector a = FloatVector.fromArray(S, x, xo + i), b = FloatVector.fromArray(S, x, xo + half + i);
            FloatVector r0 = a.mul(c).sub(b.mul(s)), r1 = b.mul(c).add(a.mul(s));
            if (accumulate) {
                r0 = r0.add(FloatVector.fromArray(S, y, yo + i));
                r1 = r1.add(FloatVector.fromArray(S, y, yo + half + i));
            }
            r0.intoArray(y, yo + i);
            r1.intoArray(y, yo + half + i);
        }
        if (i < half) {
            // the tail pairs (i, i + half) for the remaining i: the scalar twin on shifted views of the same row
            for (; i < half; i++) {
                float c = cos[co + i], s = inverse ? -sin[co + i] : sin[co + i];
                float a = x[xo + i], b = x[xo + half + i];
                float r0 = a * c - b * s, r1 = b * c + a * s;
                if (accumulate) { y[yo + i] += r0; y[yo + half + i] += r1; }
                else { y[yo + i] = r0; y[yo + half + i] = r1; }
            }
        }
    }

    @Override
    public void ropeInterleaved(float[] x, int xo, float[] y, int yo, int rot, float[] cos2, float[] sin2, int co,
                                boolean inverse, boolean accumulate) {
        int i = 0, ub = S.loopBound(rot);   // L is even, so vectors never split a pair
        FloatVector sign = inverse ? PAIR_SIGN.neg() : PAIR_SIGN;
        for (; i < ub; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, xo + i);
            FloatVector r = v.mul(FloatVector.fromArray(S, cos2, co + i))
                    .add(v.rearrange(PAIR_SWAP).mul(FloatVector.fromArray(S, sin2, co + i)).mul(sign));
            if (accumulate) r = r.add(FloatVector.fromArray(S, y, yo + i));
            r.intoArray(y, yo + i);
        }
        TAIL.ropeInterleaved(x, xo + i, y, yo + i, rot - i, cos2, sin2, co + i, inverse, accumulate);
    }

    // ------------------------------------------------------------------ attention

    @Override
    public void gemmAcc(int rows, int k, int n, float alpha, float[] x, int xo, int ldx, float[] m, int mo, int ldm,
                        float[] y, int yo, int ldy) {
        int j = 0;
        for (; j + 4 * L <= n; j += 4 * L) {
            int r = 0;
            for (; r + 4 <= rows; r += 4) tile4x4(k, alpha, x, xo + r * ldx, ldx, m, mo + j, ldm, y, yo + r * ldy + j, ldy);
            for (; r < rows; r++) tile1x4(k, alpha, x, xo + r * ldx, m, mo + j, ldm, y, yo + r * ldy + j);
        }
        for (; j + L <= n; j += L)
            for (int r = 0; r < rows; r++) {
                FloatVector a0 = FloatVector.zero(S);
                int xr = xo + r * ldx;
                for (int d = 0, mr = mo + j; d < k; d++, mr += ldm)
                    a0 = FloatVector.broadcast(S, x[xr + d]).fma(FloatVector.fromArray(S, m, mr), a0);
                int yr = yo + r * ldy + j;
                a0.fma(FloatVector.broadcast(S, alpha), FloatVector.fromArray(S, y, yr)).intoArray(y, yr);
            }
        if (j < n) TAIL.gemmAcc(rows, k, n - j, alpha, x, xo, ldx, m, mo + j, ldm, y, yo + j, ldy);
    }

    /**
     * Four rows by four vectors: sixteen accumulators stay in registers, and each loaded vector of m feeds four
     * FMAs, so the loop is bound by FMA throughput rather than by loads.
     */
    private static void tile4x4(int k, float alpha, float[] x, int xo, int ldx, float[] m, int mo, int ldm,
                                float[] y, int yo, int ldy) {
        FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
                a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int x1 = xo + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
        for (int d = 0, mr = mo; d < k; d++, mr += ldm) {
            FloatVector m0 = FloatVector.fromArray(S, m, mr), m1 = FloatVector.fromArray(S, m, mr + L),
                    m2 = FloatVector.fromArray(S, m, mr + 2 * L), m3 = FloatVector.fromArray(S, m, mr + 3 * L);
            FloatVector b = FloatVector.broadcast(S, x[xo + d]);
            a00 = b.fma(m0, a00); a01 = b.fma(m1, a01); a02 = b.fma(m2, a02); a03 = b.fma(m3, a03);
            b = FloatVector.broadcast(S, x[x1 + d]);
            a10 = b.fma(m0, a10); a11 = b.fma(m1, a11); a12 = b.fma(m2, a12); a13 = b.fma(m3, a13);
            b = FloatVector.broadcast(S, x[x2 + d]);
            a20 = b.fma(m0, a20); a21 = b.fma(m1, a21); a22 = b.fma(m2, a22); a23 = b.fma(m3, a23);
            b = FloatVector.broadcast(S, x[x3 + d]);
            a30 = b.fma(m0, a30); a31 = b.fma(m1, a31); a32 = b.fma(m2, a32); a33 = b.fma(m3, a33);
        }
        // stores written out: a helper taking vectors may not be inlined (node-count cutoff), and would box them
        FloatVector va = FloatVector.broadcast(S, alpha);
        int y1 = yo + ldy, y2 = y1 + ldy, y3 = y2 + ldy;
        a00.fma(va, FloatVector.fromArray(S, y, yo)).intoArray(y, yo);
        a01.fma(va, FloatVector.fromArray(S, y, yo + L)).intoArray(y, yo + L);
        a02.fma(va, FloatVector.fromArray(S, y, yo + 2 * L)).intoArray(y, yo + 2 * L);
        a03.fma(va, FloatVector.fromArray(S, y, yo + 3 * L)).intoArray(y, yo + 3 * L);
        a10.fma(va, FloatVector.fromArray(S, y, y1)).intoArray(y, y1);
        a11.fma(va, FloatVector.fromArray(S, y, y1 + L)).intoArray(y, y1 + L);
        a12.fma(va, FloatVector.fromArray(S, y, y1 + 2 * L)).intoArray(y, y1 + 2 * L);
        a13.fma(va, FloatVector.fromArray(S, y, y1 + 3 * L)).intoArray(y, y1 + 3 * L);
        a20.fma(va, FloatVector.fromArray(S, y, y2)).intoArray(y, y2);
        a21.fma(va, FloatVector.fromArray(S, y, y2 + L)).intoArray(y, y2 + L);
        a22.fma(va, FloatVector.fromArray(S, y, y2 + 2 * L)).intoArray(y, y2 + 2 * L);
        a23.fma(va, FloatVector.fromArray(S, y, y2 + 3 * L)).intoArray(y, y2 + 3 * L);
        a30.fma(va, FloatVector.fromArray(S, y, y3)).intoArray(y, y3);
        a31.fma(va, FloatVector.fromArray(S, y, y3 + L)).intoArray(y, y3 + L);
        a32.fma(va, FloatVector.fromArray(S, y, y3 + 2 * L)).intoArray(y, y3 + 2 * L);
        a33.fma(va, FloatVector.fromArray(S, y, y3 + 3 * L)).intoArray(y, y3 + 3 * L);
    }

    /** One row by four vectors; rows in pairs of m-rows so eight FMA chains hide the FMA latency. */
    private static void tile1x4(int k, float alpha, float[] x, int xo, float[] m, int mo, int ldm, float[] y, int yo) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int d = 0, mr = mo;
        for (; d + 1 < k; d += 2, mr += 2 * ldm) {
            FloatVector xd = FloatVector.broadcast(S, x[xo + d]), xe = FloatVector.broadcast(S, x[xo + d + 1]);
            int me = mr + ldm;
            a0 = xd.fma(FloatVector.fromArray(S, m, mr), a0);
            a1 = xd.fma(FloatVector.fromArray(S, m, mr + L), a1);
            a2 = xd.fma(FloatVector.fromArray(S, m, mr + 2 * L), a2);
            a3 = xd.fma(FloatVector.fromArray(S, m, mr + 3 * L), a3);
            b0 = xe.fma(FloatVector.fromArray(S, m, me), b0);
            b1 = xe.fma(FloatVector.fromArray(S, m, me + L), b1);
            b2 = xe.fma(FloatVector.fromArray(S, m, me + 2 * L), b2);
            b3 = xe.fma(FloatVector.fromArray(S, m, me + 3 * L), b3);
        }
        if (d < k) {
            FloatVector xd = FloatVector.broadcast(S, x[xo + d]);
            a0 = xd.fma(FloatVector.fromArray(S, m, mr), a0);
            a1 = xd.fma(FloatVector.fromArray(S, m, mr + L), a1);
            a2 = xd.fma(FloatVector.fromArray(S, m, mr + 2 * L), a2);
            a3 = xd.fma(FloatVector.fromArray(S, m, mr + 3 * L), a3);
        }
        FloatVector va = FloatVector.broadcast(S, alpha);
        a0.add(b0).fma(va, FloatVector.fromArray(S, y, yo)).intoArray(y, yo);
        a1.add(b1).fma(va, FloatVector.fromArray(S, y, yo + L)).intoArray(y, yo + L);
        a2.add(b2).fma(va, FloatVector.fromArray(S, y, yo + 2 * L)).intoArray(y, yo + 2 * L);
        a3.add(b3).fma(va, FloatVector.fromArray(S, y, yo + 3 * L)).intoArray(y, yo + 3 * L);
    }
}
