package io.peft4j.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** erf and the normal CDF against a double-precision reference (an all-positive series, no cancellation). */
class NnMathTest {

    /**
     * erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): every term is positive, so double
     * precision holds to ~1e-15 relative for |x| <= 6; beyond, erf is +-1 to double precision.
     */
    static double erfRef(double x) {
        double a = Math.abs(x);
        if (a > 6) return Math.signum(x);
        double term = a, sum = a;
        for (int n = 1; n < 500 && term > 1e-18 * sum; n++) {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
        }
        return Math.signum(x) * 2 / Math.sqrt(Math.PI) * Math.exp(-a * a) * sum;
    }

    /** erfc(a) for a >= 0 with relative accuracy in the tail (continued fraction beyond 3, 1 - erf below). */
    static double erfcRef(double a) {
        if (a < 3) return 1 - erfRef(a);
        double f = 0;   // Laplace continued fraction, evaluated bottom-up
        for (int k = 60; k >= 1; k--) f = k / 2.0 / (a + f);
        return Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
    }

    @Test
    void referenceIsSane() {
        assertEquals(0.8427007929497149, erfRef(1), 1e-15);      // erf(1), a textbook value
        assertEquals(0.9999779095030014, erfRef(3), 1e-15);
        assertEquals(2.209049699858544e-5, erfcRef(3), 1e-18);
        assertEquals(erfcRef(3.0), 1 - erfRef(3.0), 1e-13);
    }

    @Test
    void erfAbsoluteErrorBelow1point3eMinus7() {
        double worst = 0, at = 0;
        for (int i = -800_000; i <= 800_000; i++) {
            float x = i * 1e-5f;
            double err = Math.abs(NnMath.erf(x) - erfRef(x));
            if (err > worst) { worst = err; at = x; }
        }
        assertTrue(worst < 1.3e-7, "max |erf error| " + worst + " at x = " + at);
        assertEquals(1f, NnMath.erf(40f));
        assertEquals(-1f, NnMath.erf(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(NnMath.erf(Float.NaN)));
    }

    @Test
    void erfRelativeErrorNearZero() {
        for (float x = 1e-30f; x < 0.5f; x *= 1.7f) {
            double ref = erfRef(x);
            assertEquals(ref, NnMath.erf(x), 3e-7 * ref, "erf(" + x + ")");
        }
    }

    @Test
    void normalCdfTailIsRelativelyAccurate() {
        // Phi(x) = erfc(-x / sqrt 2) / 2 for x < 0: relative error must stay small where 1 + erf would cancel
        for (double x = -1.3; x > -12; x -= 0.01) {
            double ref = 0.5 * erfcRef(-x / Math.sqrt(2));
            if (ref < 1e-36) break;   // below float's normal range
            float got = NnMath.normalCdf((float) x);
            assertEquals(ref, got, 2e-5 * ref + 1e-45, "Phi(" + x + ")");
        }
        for (double x = -1.2; x < 8; x += 0.003)
            assertEquals(0.5 * (1 + erfRef(x / Math.sqrt(2))), NnMath.normalCdf((float) x), 1.5e-7, "Phi(" + x + ")");
    }
}
