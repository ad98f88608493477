package io.peft4j.kernels;

/**
 * Row-level kernels behind {@code io.peft4j.autograd.NnOps}: softmax/logsumexp pieces, norms, activations, RoPE and
 * the dot/axpy inner loops of attention. Every method works on a contiguous run of {@code n} floats of plain arrays
 * at the given offsets; callers own the looping over rows and the threading.
 *
 * <p>Two implementations: {@link VectorNnKernels} (Vector API) and its scalar twin {@link ScalarNnKernels}, chosen
 * once by {@link KernelMode}. Backward kernels ACCUMULATE ({@code +=}) into their gradient outputs, because a
 * tensor used twice receives two contributions; a null gradient output is skipped.
 */
public interface NnKernels {

    /** The implementation chosen by {@code -Dpeft4j.kernels}. */
    static NnKernels current() { return Holder.CURRENT; }

    static NnKernels scalar() { return Holder.SCALAR; }

    static NnKernels vector() { return Holder.VECTOR; }

    final class Holder {
        private Holder() {}
        static final NnKernels SCALAR = new ScalarNnKernels();
        static final NnKernels VECTOR = new VectorNnKernels();
        static final NnKernels CURRENT = KernelMode.scalar() ? SCALAR : VECTOR;
    }

    // ------------------------------------------------------------------ reductions and BLAS-1

    /** Maximum of x[0..n); -inf when n == 0. NaN propagation is not guaranteed. */
    float max(float[] x, int xo, int n);

    float sum(float[] x, int xo, int n);

    float dot(float[] a, int ao, float[] b, int bo, int n);

    /** y += alpha * x. */
    void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n);

    /** y *= s. */
    void scale(float s, float[] y, int yo, int n);

    /** y = x + c. */
    void addScalar(float[] x, int xo, float c, float[] y, int yo, int n);

    // ------------------------------------------------------------------ softmax family

    /** Returns sum(exp(x - shift)) without storing anything (the logsumexp pass of a fused cross-entropy). */
    float sumExp(float[] x, int xo, float shift, int n);

    /** y = exp(x - shift); returns sum(y). */
    float expStore(float[] x, int xo, float shift, float[] y, int yo, int n);

    /** y += alpha * exp(x - shift) (cross-entropy and log-softmax backward). */
    void addExp(float alpha, float[] x, int xo, float shift, float[] y, int yo, int n);

    /** Softmax backward for one row: dx += y * (dy - dot(dy, y)). */
    void softmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n);

    /** Log-softmax backward for one row: dx += dy - exp(y) * sum(dy). */
    void logSoftmaxBackward(float[] y, int yo, float[] dy, int dyo, float[] dx, int dxo, int n);

    // ------------------------------------------------------------------ norms

    /**
     * RMSNorm of one row: y = x * rstd * w (w null: no weight), rstd = 1/sqrt(mean(x^2) + eps), computed in F32 as
     * HF Llama does. Returns rstd (saved for backward).
     */
    float rmsNorm(float[] x, int xo, float[] w, int wo, float[] y, int yo, int n, float eps);

    /**
     * RMSNorm backward for one row, with xhat = x * rstd and g = dy * w:
     * dx += rstd * (g - xhat * mean(g * xhat)); dw += dy * xhat. dx or dw may be null; w null means w = 1.
     */
    void rmsNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float rstd,
                         float[] dx, int dxo, float[] dw, int dwo, int n);

    /**
     * LayerNorm of one row: y = (x - mean) * rstd * w + b (w, b nullable), biased variance. Writes mean and rstd
     * to stats[so] and stats[so + 1].
     */
    void layerNorm(float[] x, int xo, float[] w, int wo, float[] b, int bo, float[] y, int yo, int n, float eps,
                   float[] stats, int so);

    /**
     * LayerNorm backward for one row, with xhat = (x - mean) * rstd and g = dy * w:
     * dx += rstd * (g - mean(g) - xhat * mean(g * xhat)); dw += dy * xhat; db += dy. dx, dw, db may be null.
     */
    void layerNormBackward(float[] x, int xo, float[] w, int wo, float[] dy, int dyo, float mean, float rstd,
                           float[] dx, int dxo, float[] dw, int dwo, float[] db, int dbo, int n);

    // ------------------------------------------------------------------ activations

    /** y = gelu(x): tanh approximation when {@code tanh}, else x * Phi(x) with the exact (erf) normal CDF. */
    void gelu(boolean tanh, float[] x, int xo, float[] y, int yo, int n);

    /** dx += dy * gelu'(x). */
    void geluBackward(boolean tanh, float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n);

    /** y = x * sigmoid(x). */
    void silu(float[] x, int xo, float[] y, int yo, int n);

    /** dx += dy * silu'(x). */
    void siluBackward(float[] x, int xo, float[] dy, int dyo, float[] dx, int dxo, int n);

    /** y = silu(g) * u. */
    void swiglu(float[] g, int go, float[] u, int uo, float[] y, int yo, int n);

    /** dg += dy * u * silu'(g); du += dy * silu(g). dg or du may be null. */
    void swigluBackward(float[] g, int go, float[] u, int uo, float[] dy, int dyo, float[] dg, int dgo,
                        float[] du, int duo, int n);

    // ------------------------------------------------------------------ RoPE

    /**
     * Rotates pairs (i, i + half), i < half, by the angles whose cos/sin are cos[co + i], sin[co + i]:
     * y_i = x_i c - x_{i+half} s, y_{i+half} = x_{i+half} c + x_i s. {@code inverse} rotates by minus the angle
     * (the backward); {@code accumulate} adds into y instead of storing. Dims beyond 2*half are not touched.
     */
    void ropeHalf(float[] x, int xo, float[] y, int yo, int half, float[] cos, float[] sin, int co,
                  boolean inverse, boolean accumulate);

    /**
     * Rotates pairs (2i, 2i + 1), 2i < rot, with per-element tables cos2/sin2 [rot] starting at {@code co}
     * (each pair's cos and sin stored twice, see {@code RopeTable#cosPairs}): y_{2i} = x_{2i} c - x_{2i+1} s,
     * y_{2i+1} = x_{2i+1} c + x_{2i} s. {@code inverse} and {@code accumulate} as in {@link #ropeHalf}.
     */
    void ropeInterleaved(float[] x, int xo, float[] y, int yo, int rot, float[] cos2, float[] sin2, int co,
                         boolean inverse, boolean accumulate);

    // ------------------------------------------------------------------ attention

    /**
     * A small accumulating matrix product, row-major with leading dimensions:
     * y[r, j] += alpha * sum_{d < k} x[r, d] * m[d, j] for r < rows, j < n, where x[r, d] = x[xo + r*ldx + d],
     * m[d, j] = m[mo + d*ldm + j], y[r, j] = y[yo + r*ldy + j]. The inner product of attention: a query block
     * against a transposed key tile, probabilities against a value tile, and the dQ/dK/dV updates.
     */
    void gemmAcc(int rows, int k, int n, float alpha, float[] x, int xo, int ldx, float[] m, int mo, int ldm,
                 float[] y, int yo, int ldy);

    /** {@link #gemmAcc} for one row: y[j] += alpha * sum_d x[xo + d] * m[mo + d*ldm + j]. */
    default void vecMat(float[] x, int xo, float[] m, int mo, int ldm, int k, int n, float alpha, float[] y, int yo) {
        gemmAcc(1, k, n, alpha, x, xo, 0, m, mo, ldm, y, yo, 0);
    }
}
