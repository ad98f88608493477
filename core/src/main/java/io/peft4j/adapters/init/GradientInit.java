package io.peft4j.adapters.init;

import io.peft4j.adapters.Calibrator;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.RandomizedSvd;
import io.peft4j.linalg.Svd;
import io.peft4j.tensor.Tensor;

import java.util.Locale;
import java.util.Map;

/**
 * Math shared by the gradient-driven initialisations ({@link LoraGa}, {@link LoraSb}): the full-weight gradient over
 * calibration batches, the leading singular triplets of a gradient-shaped matrix, and slicing singular vectors into
 * F32 factors.
 */
final class GradientInit {
    private GradientInit() {}

    /**
     * Up to this smaller side an exact thin SVD is used (0.7 s for 512 x 512 here); above it a randomized SVD, whose
     * cost grows with the number of wanted triplets instead of the matrix's smaller side.
     */
    static final int EXACT_SVD_MAX = 512;

    /** The mean full-fine-tuning gradient dL/dW [out, in] of every target over {@code batches} calibration batches. */
    static Map<String, Tensor> gradients(MethodContext ctx, int batches) {
        if (batches <= 0) throw new IllegalArgumentException("method " + ctx.options().method() + ": option batches must be positive, got " + batches);
        return Calibrator.weightGradients(ctx.targets(), ctx.requireCalibration(), batches, ctx.log());
    }

    /**
     * The leading {@code k} singular triplets of the row-major [m, n] matrix {@code a}: exact when
     * {@code min(m, n) <= EXACT_SVD_MAX}, otherwise randomized with {@code niter} power iterations (and at least
     * {@code k} extra sketch columns, like {@code torch.svd_lowrank(q=2k)}), seeded from the module name so a rerun
     * gives the same factors.
     */
    static Svd.Result leading(double[] a, int m, int n, int k, int niter, String module) {
        if (Math.min(m, n) <= EXACT_SVD_MAX) return Svd.truncated(a, m, n, k);
        return RandomizedSvd.compute(a, m, n, k, Math.max(RandomizedSvd.DEFAULT_OVERSAMPLE, k), niter, module.hashCode());
    }

    /** {@code scale · U[:, idx]} as an F32 tensor [m, idx.length] ({@code svd.u()} is [m, k]). */
    static Tensor columnsOfU(Svd.Result svd, int[] idx, double scale) {
        int m = svd.m(), k = svd.k(), r = idx.length;
        double[] u = svd.u();
        float[] out = new float[m * r];                                   // [m, r]
        for (int i = 0; i < m; i++)
            for (int j = 0; j < r; j++) out[i * r + j] = (float) (scale * u[i * k + idx[j]]);
        return Tensor.of(out, m, r);
    }

    /** {@code scale · V[:, idx]^T} as an F32 tensor [idx.length, n] ({@code svd.v()} is [n, k]). */
    static Tensor rowsOfVt(Svd.Result svd, int[] idx, double scale) {
        int n = svd.n(), k = svd.k(), r = idx.length;
        double[] v = svd.v();
        float[] out = new float[r * n];                                   // [r, n]
        for (int j = 0; j < r; j++)
            for (int i = 0; i < n; i++) out[j * n + i] = (float) (scale * v[i * k + idx[j]]);
        return Tensor.of(out, r, n);
    }

    /** {@code from, from + 1, ..., from + count - 1}. */
    static int[] range(int from, int count) {
        int[] idx = new int[count];
        for (int j = 0; j < count; j++) idx[j] = from + j;
        return idx;
    }

    /** The gradient as a row-major double[] [out, in]. */
    static double[] toDouble(Tensor g) { return Dense.fromTensor(g); }

    /**
     * A config whose scaling is 1 for every module (alpha = rank, no rsLoRA), for methods without a scaling
     * hyper-parameter; per-module ranks are kept, each with an alpha pattern equal to its rank.
     */
    static LoraConfig unitScaling(LoraConfig c) {
        LoraConfig.Builder b = c.toBuilder().clearRankPattern().alpha(c.r()).rslora(false);
        for (Map.Entry<String, Integer> e : c.rankPattern().entrySet()) b.rankPattern(e.getKey(), e.getValue()).alphaPattern(e.getKey(), e.getValue());
        return b.build();
    }

    /** An option that must be one of {@code allowed}; the error names the method, the option and the choices. */
    static String choice(MethodConfig o, String key, String... allowed) {
        String v = o.string(key);
        for (String a : allowed) if (a.equals(v)) return v;
        throw new IllegalArgumentException("method " + o.method() + ": option " + key + " must be one of "
                + String.join(", ", allowed) + ", got '" + v + "'");
    }

    static void log(MethodContext ctx, String format, Object... args) {
        if (ctx.log() != null) ctx.log().println(String.format(Locale.ROOT, format, args));
    }
}
