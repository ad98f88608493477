package io.peft4j.kernels;

/**
 * Plain-loop twin of {@link VectorElementwise}: the reference the vector kernels are tested against, and the
 * implementation selected by {@code -Dpeft4j.kernels=scalar}. Reductions accumulate in double, so this twin is
 * the more accurate of the two.
 */
public final class ScalarElementwise implements Elementwise {

    @Override
    public void binary(Op op, float[] a, int ao, float[] b, int bo, float[] c, int co, int n) {
        switch (op) {
            case ADD -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] + b[bo + i]; }
            case SUB -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] - b[bo + i]; }
            case MUL -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] * b[bo + i]; }
            case DIV -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] / b[bo + i]; }
        }
    }

    @Override
    public void binaryScalarRight(Op op, float[] a, int ao, float s, float[] c, int co, int n) {
        switch (op) {
            case ADD -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] + s; }
            case SUB -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] - s; }
            case MUL -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] * s; }
            case DIV -> { for (int i = 0; i < n; i++) c[co + i] = a[ao + i] / s; }
        }
    }

    @Override
    public void binaryScalarLeft(Op op, float s, float[] b, int bo, float[] c, int co, int n) {
        switch (op) {
            case ADD -> { for (int i = 0; i < n; i++) c[co + i] = s + b[bo + i]; }
            case SUB -> { for (int i = 0; i < n; i++) c[co + i] = s - b[bo + i]; }
            case MUL -> { for (int i = 0; i < n; i++) c[co + i] = s * b[bo + i]; }
            case DIV -> { for (int i = 0; i < n; i++) c[co + i] = s / b[bo + i]; }
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    @Override
    public void mulAdd(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] += a[ao + i] * b[bo + i];
    }

    @Override
    public void fill(float v, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] = v;
    }

    @Override
    public float sum(float[] a, int ao, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += a[ao + i];
        return (float) s;
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) a[ao + i] * b[bo + i];
        return (float) s;
    }

    @Override
    public void exp(float[] a, int ao, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] = (float) Math.exp(a[ao + i]);
    }

    @Override
    public void log(float[] a, int ao, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] = (float) Math.log(a[ao + i]);
    }

    @Override
    public void sqrt(float[] a, int ao, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] = (float) Math.sqrt(a[ao + i]);
    }

    @Override
    public void pow(float[] a, int ao, float p, float[] c, int co, int n) {
        for (int i = 0; i < n; i++) c[co + i] = (float) Math.pow(a[ao + i], p);
    }
}
