package io.peft4j.kernels;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Differential tests: every {@link VectorElementwise} kernel against its {@link ScalarElementwise} twin over many
 * lengths (0, 1, odd, around and far beyond the lane count) at random array offsets. Arithmetic must match bit for
 * bit (neither implementation fuses multiply-adds); reductions and transcendental functions within rounding.
 * The scalar twin itself is checked against double-precision formulas.
 */
class ElementwiseDifferentialTest {
    private static final Elementwise V = Elementwise.of(KernelMode.VECTOR);
    private static final Elementwise S = Elementwise.of(KernelMode.SCALAR);

    /** Lengths around the lane count of every likely species (4, 8, 16) and a few large random ones. */
    private static int[] lengths() {
        SplittableRandom r = new SplittableRandom(7);
        int[] fixed = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 128, 129, 255, 1000, 4099};
        int[] out = new int[fixed.length + 30];
        System.arraycopy(fixed, 0, out, 0, fixed.length);
        for (int i = fixed.length; i < out.length; i++) out[i] = r.nextInt(1, 2500);
        return out;
    }

    private static float[] random(SplittableRandom r, int n, float lo, float hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        return a;
    }

    /** Values bounded away from zero, both signs, for divisors. */
    private static float[] awayFromZero(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((0.25 + r.nextDouble() * 2) * (r.nextBoolean() ? 1 : -1));
        return a;
    }

    private static void assertBitsEqual(String what, float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++)
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i]))
                fail(what + ": element " + i + " of " + expected.length + ": scalar " + expected[i] + ", vector " + actual[i]);
    }

    @Test
    void binaryOpsMatchBitForBit() {
        SplittableRandom r = new SplittableRandom(1);
        for (Elementwise.Op op : Elementwise.Op.values())
            for (int n : lengths()) {
                int ao = r.nextInt(5), bo = r.nextInt(5), co = r.nextInt(5);
                float[] a = random(r, n + ao, -3, 3), b = op == Elementwise.Op.DIV ? awayFromZero(r, n + bo) : random(r, n + bo, -3, 3);
                float[] cs = random(r, n + co + 3, -1, 1), cv = cs.clone();
                S.binary(op, a, ao, b, bo, cs, co, n);
                V.binary(op, a, ao, b, bo, cv, co, n);
                assertBitsEqual(op + " n=" + n, cs, cv);   // also checks nothing outside [co, co+n) was written
                float s = (float) (0.5 + r.nextDouble());
                S.binaryScalarRight(op, a, ao, s, cs, co, n);
                V.binaryScalarRight(op, a, ao, s, cv, co, n);
                assertBitsEqual(op + " scalar-right n=" + n, cs, cv);
                S.binaryScalarLeft(op, s, b, bo, cs, co, n);
                V.binaryScalarLeft(op, s, b, bo, cv, co, n);
                assertBitsEqual(op + " scalar-left n=" + n, cs, cv);
            }
    }

    @Test
    void binaryOpsAreCorrectInPlace() {
        SplittableRandom r = new SplittableRandom(2);
        for (Elementwise.Op op : Elementwise.Op.values()) {
            int n = 77;
            float[] a = random(r, n, -2, 2), b = awayFromZero(r, n);
            float[] expected = new float[n];
            for (int i = 0; i < n; i++) expected[i] = switch (op) {
                case ADD -> a[i] + b[i];
                case SUB -> a[i] - b[i];
                case MUL -> a[i] * b[i];
                case DIV -> a[i] / b[i];
            };
            for (Elementwise k : new Elementwise[] {S, V}) {
                float[] c = a.clone();
                k.binary(op, c, 0, b, 0, c, 0, n);  // output aliases the left input
                assertBitsEqual(op + " in place " + k.getClass().getSimpleName(), expected, c);
            }
        }
    }

    @Test
    void axpyMulAddFillScaleMatchBitForBit() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : lengths()) {
            int xo = r.nextInt(4), yo = r.nextInt(4);
            float[] x = random(r, n + xo, -2, 2), x2 = random(r, n + xo, -2, 2);
            float[] ys = random(r, n + yo + 2, -2, 2), yv = ys.clone();
            float alpha = (float) r.nextDouble(-2, 2);
            S.axpy(alpha, x, xo, ys, yo, n);
            V.axpy(alpha, x, xo, yv, yo, n);
            assertBitsEqual("axpy n=" + n, ys, yv);
            S.mulAdd(x, xo, x2, xo, ys, yo, n);
            V.mulAdd(x, xo, x2, xo, yv, yo, n);
            assertBitsEqual("mulAdd n=" + n, ys, yv);
            S.scale(alpha, x, xo, ys, yo, n);
            V.scale(alpha, x, xo, yv, yo, n);
            assertBitsEqual("scale n=" + n, ys, yv);
            S.addScalar(x, xo, alpha, ys, yo, n);
            V.addScalar(x, xo, alpha, yv, yo, n);
            assertBitsEqual("addScalar n=" + n, ys, yv);
            S.fill(alpha, ys, yo, n);
            V.fill(alpha, yv, yo, n);
            assertBitsEqual("fill n=" + n, ys, yv);
            for (int i = 0; i < n; i++) assertEquals(alpha, yv[yo + i]);
        }
    }

    @Test
    void sumAndDotAgreeToRounding() {
        SplittableRandom r = new SplittableRandom(4);
        for (int n : lengths()) {
            int ao = r.nextInt(4), bo = r.nextInt(4);
            float[] a = random(r, n + ao, -1, 1), b = random(r, n + bo, -1, 1);
            double exactSum = 0, absSum = 0, exactDot = 0, absDot = 0;
            for (int i = 0; i < n; i++) {
                exactSum += a[ao + i];
                absSum += Math.abs(a[ao + i]);
                exactDot += (double) a[ao + i] * b[bo + i];
                absDot += Math.abs((double) a[ao + i] * b[bo + i]);
            }
            // float accumulation error bound ~ n * eps * sum|x|; lanes make the vector one far tighter in practice
            double tolSum = 1e-6 + 2 * Math.ulp(1f) * Math.sqrt(n + 1) * absSum;
            double tolDot = 1e-6 + 2 * Math.ulp(1f) * Math.sqrt(n + 1) * absDot;
            float ss = S.sum(a, ao, n), vs = V.sum(a, ao, n);
            assertTrue(Math.abs(ss - exactSum) <= Math.ulp((float) exactSum) + 1e-12, "scalar sum n=" + n);
            assertTrue(Math.abs(vs - ss) <= tolSum, "sum n=" + n + ": scalar " + ss + " vector " + vs);
            float sd = S.dot(a, ao, b, bo, n), vd = V.dot(a, ao, b, bo, n);
            assertTrue(Math.abs(sd - exactDot) <= Math.ulp((float) exactDot) + 1e-12, "scalar dot n=" + n);
            assertTrue(Math.abs(vd - sd) <= tolDot, "dot n=" + n + ": scalar " + sd + " vector " + vd);
        }
    }

    @Test
    void transcendentalsAgreeToRounding() {
        SplittableRandom r = new SplittableRandom(5);
        float[] powers = {2f, 3f, -1f, 0.5f, -0.5f, 1.7f, 0f};
        for (int n : lengths()) {
            int ao = r.nextInt(4), co = r.nextInt(4);
            float[] x = random(r, n + ao, -20, 20), pos = random(r, n + ao, 1e-3f, 50);
            float[] cs = new float[n + co], cv = new float[n + co];
            S.exp(x, ao, cs, co, n);
            V.exp(x, ao, cv, co, n);
            assertUlps("exp n=" + n, cs, cv, 2);
            S.log(pos, ao, cs, co, n);
            V.log(pos, ao, cv, co, n);
            assertUlps("log n=" + n, cs, cv, 2);
            S.sqrt(pos, ao, cs, co, n);
            V.sqrt(pos, ao, cv, co, n);
            assertBitsEqual("sqrt n=" + n, cs, cv);   // IEEE square root is correctly rounded in both
            for (float p : powers) {
                boolean integral = p == Math.rint(p);
                float[] base = integral ? random(r, n + ao, -4, 4) : pos;  // negative bases only for integral powers
                S.pow(base, ao, p, cs, co, n);
                V.pow(base, ao, p, cv, co, n);
                assertUlps("pow " + p + " n=" + n, cs, cv, 4);
            }
        }
    }

    @Test
    void scalarTwinMatchesDoubleFormulas() {
        SplittableRandom r = new SplittableRandom(6);
        float[] x = random(r, 300, 0.01f, 10);
        float[] c = new float[300];
        S.exp(x, 0, c, 0, 300);
        for (int i = 0; i < 300; i++) assertEquals((float) Math.exp(x[i]), c[i]);
        S.pow(x, 0, 1.5f, c, 0, 300);
        for (int i = 0; i < 300; i++) assertEquals(Math.pow(x[i], 1.5), c[i], Math.ulp(c[i]));
    }

    @Test
    void selectedImplementationFollowsKernelMode() {
        Elementwise k = Elementwise.get();
        Class<?> expected = KernelMode.scalar() ? ScalarElementwise.class : VectorElementwise.class;
        assertEquals(expected, k.getClass());
    }

    private static void assertUlps(String what, float[] expected, float[] actual, int ulps) {
        for (int i = 0; i < expected.length; i++) {
            float e = expected[i], a = actual[i];
            if (Float.isNaN(e) && Float.isNaN(a)) continue;
            if (e == a) continue;   // also covers equal infinities
            if (!(Math.abs(e - a) <= ulps * Math.ulp(e)))
                fail(what + ": element " + i + ": scalar " + e + ", vector " + a + " (more than " + ulps + " ulps apart)");
        }
    }
}
