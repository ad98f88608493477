package io.peft4j.testing;

import io.peft4j.autograd.Tape;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Central finite-difference gradient check. The op runs in F32; the scalar objective
 * {@code L = sum(out * R)} (R fixed random) is accumulated in double, and each input element is perturbed by
 * {@code ±h}. Analytic gradients come from the tape with seed R.
 *
 * <p>Tolerance: F32 forward rounding (~6e-8 relative) divided by 2h, plus the O(h^2) truncation term, bounds the
 * numeric error at roughly 1e-4 for h = 1e-2 and O(1) values; the defaults (atol 2e-3, rtol 1e-2) sit above that
 * and far below the size of any real gradient bug.
 */
public final class GradCheck {
    public double h = 1e-2;
    public double atol = 2e-3;
    public double rtol = 1e-2;

    /** Max elements checked per input (a random subset beyond that, to keep tests fast). */
    public int maxChecksPerInput = 200;

    public static GradCheck defaults() { return new GradCheck(); }

    public GradCheck tolerance(double atol, double rtol) { this.atol = atol; this.rtol = rtol; return this; }

    public GradCheck step(double h) { this.h = h; return this; }

    /**
     * Checks d(sum(f(inputs) * R))/d(input) for every input that requires gradients. Throws AssertionError with the
     * first mismatch (input index, element, analytic, numeric).
     */
    public void check(String label, Function<Tensor[], Tensor> f, Tensor... inputs) {
        for (Tensor t : inputs) if (t.requiresGrad()) t.clearGrad();
        Tensor out;
        Tensor seed;
        try (Tape tape = Tape.record()) {
            out = f.apply(inputs);
            seed = Tensor.randn(12345, 1f, out.shape());
            if (!out.requiresGrad()) throw new AssertionError(label + ": output does not require gradients");
            tape.backward(out, seed);
        }
        float[] r = seed.toFloatArray();
        SplittableRandom pick = new SplittableRandom(99);
        for (int in = 0; in < inputs.length; in++) {
            Tensor x = inputs[in];
            if (!x.requiresGrad()) continue;
            if (!x.isDense()) throw new IllegalArgumentException("grad-check inputs must be dense F32 tensors");
            Tensor g = x.grad();
            float[] analytic = g == null ? new float[(int) x.numel()] : g.toFloatArray();
            float[] xd = x.data();
            int base = x.dataOffset();
            int n = (int) x.numel();
            int checks = Math.min(n, maxChecksPerInput);
            for (int c = 0; c < checks; c++) {
                int i = n <= maxChecksPerInput ? c : pick.nextInt(n);
                float orig = xd[base + i];
                xd[base + i] = (float) (orig + h);
                double plus = objective(f.apply(inputs), r);
                xd[base + i] = (float) (orig - h);
                double minus = objective(f.apply(inputs), r);
                xd[base + i] = orig;
                // the actual perturbation is what F32 could represent
                double actualH = ((double) (float) (orig + h) - (double) (float) (orig - h)) / 2;
                double numeric = (plus - minus) / (2 * actualH);
                double a = analytic[i];
                if (Math.abs(a - numeric) > atol + rtol * Math.max(Math.abs(a), Math.abs(numeric)))
                    throw new AssertionError(String.format("%s: input %d %s element %d: analytic %.6g, numeric %.6g",
                            label, in, Arrays.toString(x.shape()), i, a, numeric));
            }
        }
    }

    private static double objective(Tensor out, float[] r) {
        float[] o = out.toFloatArray();
        double s = 0;
        for (int i = 0; i < o.length; i++) s += (double) o[i] * r[i];
        return s;
    }
}
