package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API element-wise kernels at the platform's preferred width (16 floats on AVX-512). Each op switches once
 * per run, then runs a monomorphic vector loop and a scalar tail written exactly as in {@link ScalarElementwise},
 * so arithmetic results are bit-identical to the twin. Reductions keep four independent accumulators to hide the
 * add latency.
 */
public final class VectorElementwise implements Elementwise {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    @Override
    public void binary(Op op, float[] a, int ao, float[] b, int bo, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        switch (op) {
            case ADD -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).add(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] + b[bo + i];
            }
            case SUB -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).sub(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] - b[bo + i];
            }
            case MUL -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).mul(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] * b[bo + i];
            }
            case DIV -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).div(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] / b[bo + i];
            }
        }
    }

    @Override
    public void binaryScalarRight(Op op, float[] a, int ao, float s, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector vs = FloatVector.broadcast(S, s);
        switch (op) {
            case ADD -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).add(vs).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] + s;
            }
            case SUB -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).sub(vs).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] - s;
            }
            case MUL -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).mul(vs).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] * s;
            }
            case DIV -> {
                for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).div(vs).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = a[ao + i] / s;
            }
        }
    }

    @Override
    public void binaryScalarLeft(Op op, float s, float[] b, int bo, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector vs = FloatVector.broadcast(S, s);
        switch (op) {
            case ADD -> {
                for (; i < ub; i += L) vs.add(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = s + b[bo + i];
            }
            case SUB -> {
                for (; i < ub; i += L) vs.sub(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = s - b[bo + i];
            }
            case MUL -> {
                for (; i < ub; i += L) vs.mul(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = s * b[bo + i];
            }
            case DIV -> {
                for (; i < ub; i += L) vs.div(FloatVector.fromArray(S, b, bo + i)).intoArray(c, co + i);
                for (; i < n; i++) c[co + i] = s / b[bo + i];
            }
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector va = FloatVector.broadcast(S, alpha);
        // mul then add, not fma: keeps the result bit-identical to the scalar twin
        for (; i < ub; i += L)
            FloatVector.fromArray(S, y, yo + i).add(FloatVector.fromArray(S, x, xo + i).mul(va)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    @Override
    public void mulAdd(float[] a, int ao, float[] b, int bo, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L)
            FloatVector.fromArray(S, c, co + i)
                    .add(FloatVector.fromArray(S, a, ao + i).mul(FloatVector.fromArray(S, b, bo + i)))
                    .intoArray(c, co + i);
        for (; i < n; i++) c[co + i] += a[ao + i] * b[bo + i];
    }

    @Override
    public void fill(float v, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector vv = FloatVector.broadcast(S, v);
        for (; i < ub; i += L) vv.intoArray(c, co + i);
        for (; i < n; i++) c[co + i] = v;
    }

    @Override
    public float sum(float[] a, int ao, int n) {
        int i = 0;
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        for (int ub4 = n - 4 * L; i <= ub4; i += 4 * L) {
            s0 = s0.add(FloatVector.fromArray(S, a, ao + i));
            s1 = s1.add(FloatVector.fromArray(S, a, ao + i + L));
            s2 = s2.add(FloatVector.fromArray(S, a, ao + i + 2 * L));
            s3 = s3.add(FloatVector.fromArray(S, a, ao + i + 3 * L));
        }
        for (int ub = S.loopBound(n); i < ub; i += L) s0 = s0.add(FloatVector.fromArray(S, a, ao + i));
        float s = VectorMath.sum(s0.add(s1).add(s2.add(s3)));
        for (; i < n; i++) s += a[ao + i];
        return s;
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        for (int ub4 = n - 4 * L; i <= ub4; i += 4 * L) {
            s0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), s0);
            s1 = FloatVector.fromArray(S, a, ao + i + L).fma(FloatVector.fromArray(S, b, bo + i + L), s1);
            s2 = FloatVector.fromArray(S, a, ao + i + 2 * L).fma(FloatVector.fromArray(S, b, bo + i + 2 * L), s2);
            s3 = FloatVector.fromArray(S, a, ao + i + 3 * L).fma(FloatVector.fromArray(S, b, bo + i + 3 * L), s3);
        }
        for (int ub = S.loopBound(n); i < ub; i += L)
            s0 = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), s0);
        float s = VectorMath.sum(s0.add(s1).add(s2.add(s3)));
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    @Override
    public void exp(float[] a, int ao, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) VectorMath.exp(FloatVector.fromArray(S, a, ao + i)).intoArray(c, co + i);
        for (; i < n; i++) c[co + i] = (float) Math.exp(a[ao + i]);
    }

    @Override
    public void log(float[] a, int ao, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).lanewise(VectorOperators.LOG).intoArray(c, co + i);
        for (; i < n; i++) c[co + i] = (float) Math.log(a[ao + i]);
    }

    @Override
    public void sqrt(float[] a, int ao, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).lanewise(VectorOperators.SQRT).intoArray(c, co + i);
        for (; i < n; i++) c[co + i] = (float) Math.sqrt(a[ao + i]);
    }

    @Override
    public void pow(float[] a, int ao, float p, float[] c, int co, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector vp = FloatVector.broadcast(S, p);
        for (; i < ub; i += L) FloatVector.fromArray(S, a, ao + i).lanewise(VectorOperators.POW, vp).intoArray(c, co + i);
        for (; i < n; i++) c[co + i] = (float) Math.pow(a[ao + i], p);
    }
}
