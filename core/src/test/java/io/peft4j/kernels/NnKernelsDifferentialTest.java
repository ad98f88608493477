package io.peft4j.kernels;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Vector API kernels against their scalar twin over many random sizes (0, odd, below, at and above the vector
 * width) and random array offsets. Differences may only be rounding: summation order across lanes, SVML vs
 * StrictMath exp/tanh (a few ulp), FMA placement. Tolerance: 2e-5 relative to the magnitude of the row, which is
 * ~100x that rounding and far below any indexing or formula bug (those give O(1) relative errors).
 */
class NnKernelsDifferentialTest {
    private static final NnKernels V = NnKernels.vector(), S = NnKernels.scalar();
    private static final int TRIALS = 120;
    private static final double TOL = 2e-5;

    private final SplittableRandom rng = new SplittableRandom(20240611);

    private int size() {
        int pick = rng.nextInt(4);
        return switch (pick) {
            case 0 -> rng.nextInt(0, 8);
            case 1 -> rng.nextInt(8, 40);
            case 2 -> rng.nextInt(40, 300);
            default -> 16 * rng.nextInt(1, 12) + rng.nextInt(-1, 2);
        };
    }

    private float[] rand(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((rng.nextDouble() * 2 - 1) * scale);
        return a;
    }

    private static void close(String what, int n, float[] expected, float[] actual) {
        double mag = 1e-6;
        for (float e : expected) mag = Math.max(mag, Math.abs(e));
        for (int i = 0; i < expected.length; i++)
            if (!(Math.abs(expected[i] - actual[i]) <= TOL * mag) && !(Float.isInfinite(expected[i]) && expected[i] == actual[i]))
                fail(what + " n=" + n + " element " + i + ": scalar " + expected[i] + " vector " + actual[i]);
    }

    private static void close(String what, int n, float expected, float actual) {
        close(what, n, new float[] {expected}, new float[] {actual});
    }

    @Test
    void currentFollowsKernelMode() {
        assertSame(KernelMode.scalar() ? S : V, NnKernels.current());
    }

    @Test
    void reductionsAndBlas1() {
        for (int t = 0; t < TRIALS; t++) {
            int n = size(), ao = rng.nextInt(4), bo = rng.nextInt(4);
            float[] a = rand(ao + n, 3), b = rand(bo + n, 3);
            close("max", n, S.max(a, ao, n), V.max(a, ao, n));
            // a sum's rounding scales with the sum of magnitudes, not with the (possibly cancelled) result
            float absSum = 0;
            for (int i = 0; i < n; i++) absSum += Math.abs(a[ao + i]) * 3;
            close("sum", n, new float[] {S.sum(a, ao, n), absSum}, new float[] {V.sum(a, ao, n), absSum});
            close("dot", n, new float[] {S.dot(a, ao, b, bo, n), 9 * n}, new float[] {V.dot(a, ao, b, bo, n), 9 * n});
            float alpha = (float) rng.nextDouble(-2, 2);
            float[] ys = b.clone(), yv = b.clone();
            S.axpy(alpha, a, ao, ys, bo, n);
            V.axpy(alpha, a, ao, yv, bo, n);
            close("axpy", n, ys, yv);
            ys = b.clone(); yv = b.clone();
            S.scale(alpha, ys, bo, n);
            V.scale(alpha, yv, bo, n);
            close("scale", n, ys, yv);
            ys = b.clone(); yv = b.clone();
            S.addScalar(a, ao, alpha, ys, bo, n);
            V.addScalar(a, ao, alpha, yv, bo, n);
            close("addScalar", n, ys, yv);
        }
    }

    @Test
    void softmaxPieces() {
        for (int t = 0; t < TRIALS; t++) {
            int n = size(), xo = rng.nextInt(4), yo = rng.nextInt(4);
            float[] x = rand(xo + n, 8);
            float shift = S.max(x, xo, n);
            if (n == 0) shift = 0;
            close("sumExp", n, S.sumExp(x, xo, shift, n), V.sumExp(x, xo, shift, n));
            float[] ys = rand(yo + n, 1), yv = ys.clone();
            float ss = S.expStore(x, xo, shift, ys, yo, n), sv = V.expStore(x, xo, shift, yv, yo, n);
            close("expStore sum", n, ss, sv);
            close("expStore", n, ys, yv);
            float alpha = (float) rng.nextDouble(-1, 1);
            float[] gs = rand(yo + n, 1), gv = gs.clone();
            S.addExp(alpha, x, xo, shift, gs, yo, n);
            V.addExp(alpha, x, xo, shift, gv, yo, n);
            close("addExp", n, gs, gv);
            // backward kernels: y a probability row, dy random
            float[] p = new float[n];
            float sum = S.expStore(x, xo, shift, p, 0, n);
            for (int i = 0; i < n; i++) p[i] /= sum;
            float[] dy = rand(n, 1), ds = rand(n + 2, 1), dv = ds.clone();
            S.softmaxBackward(p, 0, dy, 0, ds, 2, n);
            V.softmaxBackward(p, 0, dy, 0, dv, 2, n);
            close("softmaxBackward", n, ds, dv);
            float[] logp = new float[n];
            for (int i = 0; i < n; i++) logp[i] = (float) Math.log(p[i]);
            ds = rand(n, 1); dv = ds.clone();
            S.logSoftmaxBackward(logp, 0, dy, 0, ds, 0, n);
            V.logSoftmaxBackward(logp, 0, dy, 0, dv, 0, n);
            close("logSoftmaxBackward", n, ds, dv);
        }
    }

    @Test
    void norms() {
        for (int t = 0; t < TRIALS; t++) {
            int n = Math.max(1, size()), xo = rng.nextInt(4);
            boolean withW = rng.nextBoolean(), withB = rng.nextBoolean();
            float[] x = rand(xo + n, 2), w = withW ? rand(n + 1, 1.5) : null, b = withB ? rand(n + 3, 1) : null;
            for (int i = xo; i < x.length; i++) x[i] += 0.7f;   // a non-zero mean exercises LayerNorm's centring
            float[] ys = new float[n + 1], yv = new float[n + 1];
            float rs = S.rmsNorm(x, xo, w, 1, ys, 1, n, 1e-5f), rv = V.rmsNorm(x, xo, w, 1, yv, 1, n, 1e-5f);
            close("rmsNorm rstd", n, rs, rv);
            close("rmsNorm", n, ys, yv);
            float[] dy = rand(n, 1);
            float[] dxs = rand(n, 1), dxv = dxs.clone(), dws = rand(n, 1), dwv = dws.clone();
            S.rmsNormBackward(x, xo, w, 1, dy, 0, rs, dxs, 0, dws, 0, n);
            V.rmsNormBackward(x, xo, w, 1, dy, 0, rs, dxv, 0, dwv, 0, n);
            close("rmsNormBackward dx", n, dxs, dxv);
            close("rmsNormBackward dw", n, dws, dwv);

            float[] sts = new float[2], stv = new float[2];
            S.layerNorm(x, xo, w, 1, b, 3, ys, 0, n, 1e-5f, sts, 0);
            V.layerNorm(x, xo, w, 1, b, 3, yv, 0, n, 1e-5f, stv, 0);
            close("layerNorm stats", n, sts, stv);
            close("layerNorm", n, ys, yv);
            dxs = rand(n, 1); dxv = dxs.clone(); dws = rand(n, 1); dwv = dws.clone();
            float[] dbs = rand(n, 1), dbv = dbs.clone();
            S.layerNormBackward(x, xo, w, 1, dy, 0, sts[0], sts[1], dxs, 0, dws, 0, dbs, 0, n);
            V.layerNormBackward(x, xo, w, 1, dy, 0, sts[0], sts[1], dxv, 0, dwv, 0, dbv, 0, n);
            close("layerNormBackward dx", n, dxs, dxv);
            close("layerNormBackward dw", n, dws, dwv);
            close("layerNormBackward db", n, dbs, dbv);
        }
    }

    @Test
    void activations() {
        for (int t = 0; t < TRIALS; t++) {
            int n = size(), xo = rng.nextInt(4);
            float[] x = rand(xo + n, 7), u = rand(n + 2, 2), dy = rand(n, 1);
            for (boolean tanh : new boolean[] {true, false}) {
                float[] ys = new float[n], yv = new float[n];
                S.gelu(tanh, x, xo, ys, 0, n);
                V.gelu(tanh, x, xo, yv, 0, n);
                close("gelu tanh=" + tanh, n, ys, yv);
                float[] ds = rand(n, 1), dv = ds.clone();
                S.geluBackward(tanh, x, xo, dy, 0, ds, 0, n);
                V.geluBackward(tanh, x, xo, dy, 0, dv, 0, n);
                close("geluBackward tanh=" + tanh, n, ds, dv);
            }
            float[] ys = new float[n], yv = new float[n];
            S.silu(x, xo, ys, 0, n);
            V.silu(x, xo, yv, 0, n);
            close("silu", n, ys, yv);
            float[] ds = rand(n, 1), dv = ds.clone();
            S.siluBackward(x, xo, dy, 0, ds, 0, n);
            V.siluBackward(x, xo, dy, 0, dv, 0, n);
            close("siluBackward", n, ds, dv);
            S.swiglu(x, xo, u, 2, ys, 0, n);
            V.swiglu(x, xo, u, 2, yv, 0, n);
            close("swiglu", n, ys, yv);
            float[] dgs = rand(n, 1), dgv = dgs.clone(), dus = rand(n, 1), duv = dus.clone();
            S.swigluBackward(x, xo, u, 2, dy, 0, dgs, 0, dus, 0, n);
            V.swigluBackward(x, xo, u, 2, dy, 0, dgv, 0, duv, 0, n);
            close("swigluBackward dg", n, dgs, dgv);
            close("swigluBackward du", n, dus, duv);
            dgs = rand(n, 1); dgv = dgs.clone();
            S.swigluBackward(x, xo, u, 2, dy, 0, dgs, 0, null, 0, n);
            V.swigluBackward(x, xo, u, 2, dy, 0, dgv, 0, null, 0, n);
            close("swigluBackward dg only", n, dgs, dgv);
        }
    }

    @Test
    void extremeActivationInputsStayFinite() {
        float[] x = {-1e30f, -200f, -90f, -20f, -5.5f, 0f, 5.5f, 20f, 90f, 200f, 1e30f, -0f, 1e-30f, -3f, 3f, 0.5f, -0.9f};
        int n = x.length;
        for (NnKernels k : new NnKernels[] {S, V}) {
            float[] y = new float[n], d = new float[n], one = new float[n];
            Arrays.fill(one, 1f);
            for (boolean tanh : new boolean[] {true, false}) {
                k.gelu(tanh, x, 0, y, 0, n);
                k.geluBackward(tanh, x, 0, one, 0, d, 0, n);
                for (int i = 0; i < n; i++)
                    if (!Float.isFinite(y[i]) || !Float.isFinite(d[i])) fail(k.getClass().getSimpleName() + " gelu(" + x[i] + ") = " + y[i] + ", d = " + d[i]);
            }
            k.silu(x, 0, y, 0, n);
            for (int i = 0; i < n; i++) if (!Float.isFinite(y[i])) fail("silu(" + x[i] + ") = " + y[i]);
        }
    }

    @Test
    void rope() {
        for (int t = 0; t < TRIALS; t++) {
            int half = rng.nextInt(0, 80), rot = 2 * half, xo = rng.nextInt(4), co = rng.nextInt(0, 3) * rot;
            float[] x = rand(xo + rot, 2), cos = rand(co + half + rot, 1), sin = rand(co + half + rot, 1);
            float[] c2 = rand(co + rot, 1), s2 = rand(co + rot, 1);
            for (int i = 0; i + 1 < c2.length; i += 2) { c2[i + 1] = c2[i]; s2[i + 1] = s2[i]; }
            for (boolean inverse : new boolean[] {false, true})
                for (boolean acc : new boolean[] {false, true}) {
                    float[] ys = rand(rot + 1, 1), yv = ys.clone();
                    S.ropeHalf(x, xo, ys, 1, half, cos, sin, co, inverse, acc);
                    V.ropeHalf(x, xo, yv, 1, half, cos, sin, co, inverse, acc);
                    close("ropeHalf inv=" + inverse + " acc=" + acc, rot, ys, yv);
                    ys = rand(rot + 1, 1); yv = ys.clone();
                    S.ropeInterleaved(x, xo, ys, 1, rot, c2, s2, co, inverse, acc);
                    V.ropeInterleaved(x, xo, yv, 1, rot, c2, s2, co, inverse, acc);
                    close("ropeInterleaved inv=" + inverse + " acc=" + acc, rot, ys, yv);
                }
        }
    }

    @Test
    void gemmAcc() {
        for (int t = 0; t < TRIALS; t++) {
            // rows cover the 4-row register tile and its remainder; n the 4-vector, 1-vector and scalar paths
            int rows = rng.nextInt(0, 11), k = rng.nextInt(0, 70), n = size();
            int ldx = k + rng.nextInt(0, 3), ldm = n + rng.nextInt(0, 5), ldy = n + rng.nextInt(0, 4);
            int xo = rng.nextInt(3), mo = rng.nextInt(4), yo = rng.nextInt(2);
            float[] x = rand(xo + Math.max(1, rows) * ldx + k + 1, 1), m = rand(mo + k * ldm + n, 1);
            float alpha = (float) rng.nextDouble(-2, 2);
            float[] ys = rand(yo + rows * ldy + n + 1, 1), yv = ys.clone();
            S.gemmAcc(rows, k, n, alpha, x, xo, ldx, m, mo, ldm, ys, yo, ldy);
            V.gemmAcc(rows, k, n, alpha, x, xo, ldx, m, mo, ldm, yv, yo, ldy);
            // rounding grows with the k-term sums: compare relative to the bound 1 + 2k
            float[] es = Arrays.copyOf(ys, ys.length + 1), ev = Arrays.copyOf(yv, yv.length + 1);
            es[ys.length] = ev[ys.length] = 1 + 2f * k;
            close("gemmAcc rows=" + rows + " k=" + k, n, es, ev);
            // the one-row form
            ys = rand(n + 1, 1); yv = ys.clone();
            S.vecMat(x, xo, m, mo, ldm, k, n, alpha, ys, 1);
            V.vecMat(x, xo, m, mo, ldm, k, n, alpha, yv, 1);
            es = Arrays.copyOf(ys, n + 2); ev = Arrays.copyOf(yv, n + 2);
            es[n + 1] = ev[n + 1] = 1 + 2f * k;
            close("vecMat k=" + k, n, es, ev);
        }
    }

    @Test
    void dropoutDrawIsTheSplitMix64Finaliser() {
        // Reference values of SplitMix64's output function for seed 0 (state gamma, 2 gamma, ...): the published
        // sequence starts e220a8397b1dcdaf, 6e789e6aa1b965f4; keep compares its top 24 bits with the threshold.
        long[] first = {0xe220a8397b1dcdafL, 0x6e789e6aa1b965f4L};
        for (int i = 0; i < first.length; i++) {
            int top24 = (int) (first[i] >>> 40);
            assertTrue(NnMath.dropoutKeep(0, i, top24), "draw " + i + " reaches its own value");
            assertFalse(NnMath.dropoutKeep(0, i, top24 + 1), "draw " + i + " is below the next threshold");
        }
    }

    @Test
    void zeroLengthIsANoOp() {
        float[] a = {1, 2, 3};
        for (NnKernels k : new NnKernels[] {S, V}) {
            assertEquals(Float.NEGATIVE_INFINITY, k.max(a, 0, 0));
            assertEquals(0f, k.sum(a, 1, 0));
            assertEquals(0f, k.sumExp(a, 1, 0f, 0));
            k.axpy(2f, a, 0, a, 0, 0);
            assertEquals(1f, a[0]);
        }
    }
}
