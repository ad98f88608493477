package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class VectorMathTest {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Test
    void expIsWithinTwoUlpsOfMathExpAndHandlesTheEdges() {
        SplittableRandom rng = new SplittableRandom(1);
        float[] x = new float[S.length()], y = new float[S.length()];
        for (int trial = 0; trial < 20000; trial++) {
            for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 180 - 90);
            // documented deviation: beyond the cut-offs (~88.38 and ~-87.34, where 2^n leaves the normal range) the
            // result is +inf / 0 rather than the last finite value / a denormal
            VectorMath.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) {
                double want = Math.exp(x[i]);
                if (x[i] < -87.3365f) assertEquals(0f, y[i], "underflow at " + x[i]);
                else if (x[i] > 88.3763f) assertEquals(Float.POSITIVE_INFINITY, y[i], "overflow at " + x[i]);
                else assertEquals(want, y[i], 2 * Math.ulp((float) want), "exp(" + x[i] + ")");
            }
        }
        float[] edge = new float[S.length()];
        edge[0] = Float.NEGATIVE_INFINITY;
        edge[1] = Float.POSITIVE_INFINITY;
        edge[2] = Float.NaN;
        edge[3] = 0f;
        VectorMath.exp(FloatVector.fromArray(S, edge, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        assertEquals(Float.POSITIVE_INFINITY, y[1]);
        assertTrue(Float.isNaN(y[2]));
        assertEquals(1f, y[3]);
    }

    @Test
    void tanhIsAccurateInAbsoluteTerms() {
        float[] x = new float[S.length()], y = new float[S.length()];
        SplittableRandom rng = new SplittableRandom(2);
        for (int trial = 0; trial < 5000; trial++) {
            for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 20 - 10);
            VectorMath.tanh(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) assertEquals(Math.tanh(x[i]), y[i], 2e-7, "tanh(" + x[i] + ")");
        }
    }

    @Test
    void laneSumIsInLaneOrder() {
        float[] x = new float[S.length()];
        for (int i = 0; i < x.length; i++) x[i] = i == 0 ? 1e8f : 1f;   // order-sensitive: 1e8 + 1 rounds away
        float sequential = 0;
        for (float v : x) sequential += v;
        assertEquals(sequential, VectorMath.sum(FloatVector.fromArray(S, x, 0)));
    }
}
