package io.peft4j.kernels;

/**
 * Element-wise kernels over contiguous runs of {@code float[]} (array, offset, length). Callers that broadcast or
 * walk strided views split the work into contiguous inner runs and call these per run (see
 * {@code io.peft4j.autograd.Broadcast}). Outputs may alias an input at the same offset (in-place updates).
 *
 * <p>Two implementations: {@link VectorElementwise} (Vector API) and its scalar twin {@link ScalarElementwise},
 * chosen once by {@link KernelMode}. Additions, multiplications, divisions and square roots give bit-identical
 * results in both (neither fuses a multiply-add); reductions and transcendental functions agree to rounding.
 */
public interface Elementwise {
    /** The binary arithmetic operations. */
    enum Op { ADD, SUB, MUL, DIV }

    /** The implementation selected by {@link KernelMode} at start-up. */
    static Elementwise get() { return Selected.INSTANCE; }

    /** A fresh implementation for {@code mode} (tests compare the two directly). */
    static Elementwise of(KernelMode mode) { return mode == KernelMode.SCALAR ? new ScalarElementwise() : new VectorElementwise(); }

    /** {@code c[i] = a[i] op b[i]} for i in [0, n). */
    void binary(Op op, float[] a, int ao, float[] b, int bo, float[] c, int co, int n);

    /** {@code c[i] = a[i] op s}: the right operand is broadcast. */
    void binaryScalarRight(Op op, float[] a, int ao, float s, float[] c, int co, int n);

    /** {@code c[i] = s op b[i]}: the left operand is broadcast. */
    void binaryScalarLeft(Op op, float s, float[] b, int bo, float[] c, int co, int n);

    /** {@code y[i] += alpha * x[i]}. */
    void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n);

    /** {@code c[i] += a[i] * b[i]} (gradient of a product). */
    void mulAdd(float[] a, int ao, float[] b, int bo, float[] c, int co, int n);

    /** {@code c[i] = v}. */
    void fill(float v, float[] c, int co, int n);

    /** Sum of {@code a[ao .. ao+n)}. */
    float sum(float[] a, int ao, int n);

    /** Dot product of two runs. */
    float dot(float[] a, int ao, float[] b, int bo, int n);

    /** {@code c[i] = exp(a[i])}. */
    void exp(float[] a, int ao, float[] c, int co, int n);

    /** {@code c[i] = log(a[i])} (natural logarithm). */
    void log(float[] a, int ao, float[] c, int co, int n);

    /** {@code c[i] = sqrt(a[i])}. */
    void sqrt(float[] a, int ao, float[] c, int co, int n);

    /** {@code c[i] = a[i] ^ p}. */
    void pow(float[] a, int ao, float p, float[] c, int co, int n);

    // ---- conveniences over the primitives above

    default void add(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) { binary(Op.ADD, a, ao, b, bo, c, co, n); }
    default void sub(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) { binary(Op.SUB, a, ao, b, bo, c, co, n); }
    default void mul(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) { binary(Op.MUL, a, ao, b, bo, c, co, n); }
    default void div(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) { binary(Op.DIV, a, ao, b, bo, c, co, n); }

    /** {@code c[i] = s * a[i]}. */
    default void scale(float s, float[] a, int ao, float[] c, int co, int n) { binaryScalarRight(Op.MUL, a, ao, s, c, co, n); }

    /** {@code c[i] = a[i] + s}. */
    default void addScalar(float[] a, int ao, float s, float[] c, int co, int n) { binaryScalarRight(Op.ADD, a, ao, s, c, co, n); }

    /** Holds the start-up choice; a nested class so the choice is made on first use, once. */
    final class Selected {
        private Selected() {}
        static final Elementwise INSTANCE = of(KernelMode.current());
    }
}
