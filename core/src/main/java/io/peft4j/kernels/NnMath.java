package io.peft4j.kernels;

/**
 * Scalar special functions for the NN kernels: erf, erfc-based normal CDF, sigmoid. The Vector API kernels evaluate
 * the same polynomials with the same constants, so both twins agree to rounding.
 *
 * <p>erf uses two pieces fitted by {@code tools/nnops/fit_erf.py} (relative-error least squares):
 * {@code |x| < 0.875}: {@code erf(x) = x P(x^2)}, P of degree 5 (relative error 8.5e-9 in exact arithmetic);
 * {@code |x| >= 0.875}: {@code erfc(a) = exp(-a^2) R(1 / (1 + a/2))}, R of degree 8 on [0.875, 10] (relative error
 * 1e-8). Evaluated in float with FMA Horner steps, the absolute error of {@link #erf} is below 1.3e-7 on the whole
 * line (NnMathTest checks this against a double-precision series). Working with erfc for the tail keeps
 * {@link #normalCdf} relatively accurate far into the negative tail, where {@code 1 + erf} would cancel.
 */
public final class NnMath {
    private NnMath() {}

    static final float ERF_SPLIT = 0.875f;
    static final float ERFC_CLAMP = 10f;      // R's fitted range ends here; beyond it exp(-a^2) underflows float
    static final float P0 = 1.128379158e+00f, P1 = -3.761255067e-01f, P2 = 1.128245684e-01f,
            P3 = -2.679150767e-02f, P4 = 5.032239100e-03f, P5 = -6.203527582e-04f;
    static final float R0 = -6.096522907e-06f, R1 = 2.822502445e-01f, R2 = 2.804422276e-01f,
            R3 = 2.562366860e-01f, R4 = 1.462666541e-01f, R5 = 1.316047556e-01f, R6 = -1.040607537e-02f,
            R7 = -1.584856226e-01f, R8 = 7.243705628e-02f;
    static final float SQRT_HALF = 0.70710678118654752f;
    static final float INV_SQRT_2PI = 0.39894228040143268f;
    static final float GELU_K = 0.79788456080286536f;   // sqrt(2/pi)
    static final float GELU_C = 0.044715f;
    /** SplitMix64's increment and finaliser multipliers: the dropout draw. */
    private static final long SPLITMIX_GAMMA = 0x9E3779B97F4A7C15L, SPLITMIX_M1 = 0xBF58476D1CE4E5B9L, SPLITMIX_M2 = 0x94D049BB133111EBL;

    /**
     * Whether dropout keeps element {@code index}: the SplitMix64 finaliser of {@code seed + (index + 1) * gamma},
     * a counter-based draw (independent of evaluation order), whose top 24 bits must reach {@code threshold}
     * (ceil(p * 2^24) for drop probability p).
     */
    public static boolean dropoutKeep(long seed, long index, int threshold) {
        long z = seed + (index + 1) * SPLITMIX_GAMMA;
        z = (z ^ (z >>> 30)) * SPLITMIX_M1;
        z = (z ^ (z >>> 27)) * SPLITMIX_M2;
        z ^= z >>> 31;
        return (int) (z >>> 40) >= threshold;
    }

    /** GELU derivatives clamp x here: beyond, they are 0 or 1 to float precision, and inf * 0 would give NaN. */
    static final float GELU_GRAD_CLAMP = 10f;

    /** erf(x) / x for |x| < 0.875, as a polynomial in u = x^2. */
    static float erfSmall(float u) {
        float p = P5;
        p = Math.fma(p, u, P4);
        p = Math.fma(p, u, P3);
        p = Math.fma(p, u, P2);
        p = Math.fma(p, u, P1);
        return Math.fma(p, u, P0);
    }

    /** erfc(a) for a >= 0.875 (a is clamped to the fitted range). */
    static float erfcLarge(float a) {
        float t = 1f / Math.fma(0.5f, Math.min(a, ERFC_CLAMP), 1f);
        float r = R8;
        r = Math.fma(r, t, R7);
        r = Math.fma(r, t, R6);
        r = Math.fma(r, t, R5);
        r = Math.fma(r, t, R4);
        r = Math.fma(r, t, R3);
        r = Math.fma(r, t, R2);
        r = Math.fma(r, t, R1);
        r = Math.fma(r, t, R0);
        return (float) Math.exp(-a * a) * r;
    }

    /** The error function, absolute error below 1.3e-7. */
    public static float erf(float x) {
        float a = Math.abs(x);
        if (a < ERF_SPLIT) return x * erfSmall(x * x);
        if (Float.isNaN(x)) return x;
        return Math.copySign(1f - erfcLarge(a), x);
    }

    /** Standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2, with a relatively accurate negative tail. */
    public static float normalCdf(float x) {
        float z = x * SQRT_HALF;
        float a = Math.abs(z);
        if (a < ERF_SPLIT) return Math.fma(0.5f * z, erfSmall(z * z), 0.5f);
        if (Float.isNaN(x)) return x;
        float e = 0.5f * erfcLarge(a);
        return z > 0 ? 1f - e : e;
    }

    public static float sigmoid(float x) { return 1f / (1f + (float) Math.exp(-x)); }
}
