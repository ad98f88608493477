package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * Deterministic vector math. The Vector API leaves two things implementation-defined that break bit-for-bit
 * reproducibility between interpreted and JIT-compiled code (so a training run's loss curve could change as the
 * JIT warms up): the order of {@code reduceLanes(ADD)}, and the transcendental lanewise ops (EXP, TANH run in
 * SVML when compiled and per-lane StrictMath when interpreted). These replacements use only IEEE-exact lane
 * operations (add, mul, fma, compare, blend, bit shifts), so every execution mode gives the same bits.
 */
final class VectorMath {
    private VectorMath() {}

    /** Sum of the lanes in lane order. */
    static float sum(FloatVector v) {
        float s = 0;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f;          // 1.5 * 2^23: adding it rounds to an integer
    private static final float MAX_X = 88.3762626647949f, MIN_X = -87.3365447504f;

    /**
     * e^x to about 1 ulp (Cody-Waite range reduction, degree-6 polynomial as in Cephes' expf); +inf above ~88.38,
     * exactly 0 below ~-87.34 (so a -inf mask gives 0), NaN stays NaN.
     */
    static FloatVector exp(FloatVector x) {
        var sp = x.species();
        FloatVector xc = x.max(MIN_X).min(MAX_X);
        FloatVector t = xc.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);                                   // round(x * log2 e)
        FloatVector r = n.fma(FloatVector.broadcast(sp, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(sp, -LN2_LO), r);
        FloatVector p = r.fma(1.9875691500E-4f, 1.3981999507E-3f);
        p = p.fma(r, FloatVector.broadcast(sp, 8.3334519073E-3f));
        p = p.fma(r, FloatVector.broadcast(sp, 4.1665795894E-2f));
        p = p.fma(r, FloatVector.broadcast(sp, 1.6666665459E-1f));
        p = p.fma(r, FloatVector.broadcast(sp, 5.0000001201E-1f));
        p = p.mul(r.mul(r)).add(r).add(1f);
        // 2^n from the integer bits of t (its low mantissa bits hold n, offset by the bits of ROUND)
        IntVector ni = t.reinterpretAsInts().sub(0x4B400000);
        FloatVector scale = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector y = p.mul(scale);
        VectorMask<Float> over = x.compare(VectorOperators.GT, MAX_X), under = x.compare(VectorOperators.LT, MIN_X);
        y = y.blend(Float.POSITIVE_INFINITY, over).blend(0f, under);
        return y.blend(x, x.test(VectorOperators.IS_NAN));
    }

    /** tanh x = 1 - 2 / (e^{2x} + 1); absolute error ~1e-7 (relative error grows for |x| < 1e-4). */
    static FloatVector tanh(FloatVector x) {
        FloatVector e = exp(x.mul(2f));
        return FloatVector.broadcast(x.species(), 1f).sub(FloatVector.broadcast(x.species(), 2f).div(e.add(1f)));
    }
}
