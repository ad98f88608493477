package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.kernels.Gemm;
import io.peft4j.kernels.Parallel;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One NOLA adapter ({@link Nola}) on one {@link Linear}: {@code y = W x + b + s · B A x} with
 * {@code A = Σ_i α_i A_i} [r, in] and {@code B = Σ_j β_j B_j} [out, r], where the bases {@code A_i}, {@code B_j} are
 * frozen random matrices regenerated from a seed and only the coefficients α [k], β [l] are trained and saved.
 *
 * <p>The bases come from a counter-based generator ({@link RandomBasis}): element {@code e} of basis {@code i} is a
 * pure integer function of (seed, i · size + e), so they are bit-identical on every platform and thread count, and
 * any element can be produced without the others. They are either kept in memory (k · r · in + l · out · r floats)
 * or regenerated on every use; both give bit-identical results.
 *
 * <p>A and B are materialised for the current coefficients and reused until the coefficients change (checked by
 * value on every forward, so an optimizer step, a checkpoint restore or any in-place edit is picked up). Their
 * recorded mixing ops turn the gradients of A and B into {@code dα_i = <dA, A_i>}, {@code dβ_j = <dB, B_j>}.
 */
public final class NolaLayer implements AdapterLayer {
    /** Saved key suffixes of the coefficient vectors. */
    public static final String ALPHA = "nola_alpha", BETA = "nola_beta";

    private final Linear base;
    private final AdapterRuntime runtime;
    private final int r, in, out;
    private final float scaling, dropout;
    final Tensor alpha;                  // [k] coefficients of A's bases
    final Tensor beta;                   // [l] coefficients of B's bases
    final RandomBasis basisA;            // k bases, each [r, in]
    final RandomBasis basisB;            // l bases, each [out, r]
    private boolean enabled = true;
    private float[] seenAlpha, seenBeta; // [k], [l]: the coefficients mixedA / mixedB were built from
    private float[] mixedA, mixedB;      // [r * in], [out * r]; replaced, never written in place (a tape may hold them)

    /**
     * A layer on {@code base} with rank r, scaling s and input dropout, mixing {@code basisA} / {@code basisB} with
     * the given coefficient vectors (used as they are, not copied).
     *
     * @param alpha [k] coefficients of A (trainable iff it requires gradients)
     * @param beta  [l] coefficients of B
     * @param basisA k random bases of size r · in
     * @param basisB l random bases of size out · r
     */
    public NolaLayer(Linear base, AdapterRuntime runtime, int r, float scaling, float dropout, Tensor alpha, Tensor beta,
                     RandomBasis basisA, RandomBasis basisB) {
        this.base = base;
        this.runtime = runtime;
        this.r = r;
        this.in = base.inFeatures();
        this.out = base.outFeatures();
        this.scaling = scaling;
        this.dropout = dropout;
        if (alpha.rank() != 1 || alpha.dim(0) != basisA.count || beta.rank() != 1 || beta.dim(0) != basisB.count)
            throw new IllegalArgumentException(base.name() + ": NOLA coefficients alpha " + alpha.describe() + ", beta " + beta.describe()
                    + " do not match " + basisA.count + " and " + basisB.count + " bases");
        if (basisA.size != (long) r * in || basisB.size != (long) out * r)
            throw new IllegalArgumentException(base.name() + ": NOLA bases of " + basisA.size + " and " + basisB.size
                    + " elements do not fit rank " + r + " on [" + out + ", " + in + "]");
        this.alpha = alpha;
        this.beta = beta;
        this.basisA = basisA;
        this.basisB = basisB;
    }

    @Override public Linear base() { return base; }
    @Override public void setEnabled(boolean on) { enabled = on; }
    public int rank() { return r; }
    public float scaling() { return scaling; }
    public Tensor alpha() { return alpha; }
    public Tensor beta() { return beta; }

    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(ALPHA, alpha);
        m.put(BETA, beta);
        return m;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) return y;
        Tensor xd = runtime.training() && dropout > 0 ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        refresh();
        Tensor a = mixed(alpha, basisA, mixedA, r, in);
        Tensor b = mixed(beta, basisB, mixedB, out, r);
        return addLowRank(y, xd, a, b, scaling);
    }

    /** A = Σ α_i A_i [r, in] for the current coefficients (a copy). */
    public Tensor effectiveA() { refresh(); return Tensor.of(mixedA.clone(), r, in); }

    /** B = Σ β_j B_j [out, r] for the current coefficients (a copy, without the scaling). */
    public Tensor effectiveB() { refresh(); return Tensor.of(mixedB.clone(), out, r); }

    @Override
    public Tensor deltaWeight() {
        refresh();
        Tensor d = Tensor.zeros(out, in);
        Gemm.matmul(Tensor.of(mixedB, out, r), Tensor.of(mixedA, r, in), d, false);
        float[] dd = d.data();
        for (int i = 0; i < dd.length; i++) dd[i] *= scaling;
        return d;
    }

    /** {A [r, in], s · B [out, r]}: B A is exactly the update, so the adapter exports as a plain PEFT LoRA. */
    @Override
    public Tensor[] lowRankFactors() {
        Tensor b = effectiveB();
        float[] bd = b.data();
        for (int i = 0; i < bd.length; i++) bd[i] *= scaling;
        return new Tensor[] {effectiveA(), b};
    }

    /** Rebuilds A and B when the coefficients differ from those they were built from. */
    private void refresh() {
        float[] al = alpha.toFloatArray(), be = beta.toFloatArray();
        if (!Arrays.equals(al, seenAlpha)) {
            float[] m = new float[r * in];
            basisA.mix(al, m);
            mixedA = m;
            seenAlpha = al;
        }
        if (!Arrays.equals(be, seenBeta)) {
            float[] m = new float[out * r];
            basisB.mix(be, m);
            mixedB = m;
            seenBeta = be;
        }
    }

    /** {@code Σ_i c_i basis_i} as a tensor over {@code values}, recording {@code dc_i += <dOut, basis_i>}. */
    private static Tensor mixed(Tensor coef, RandomBasis basis, float[] values, int... shape) {
        Tensor t = Tensor.of(values, shape);
        return Tape.record(t, () -> {
            Tensor g = t.grad();
            if (g == null) return;
            Tensor cg = coef.gradBuffer();
            basis.project(g.contiguous().data(), cg.data(), cg.dataOffset());
        }, coef);
    }

    /**
     * {@code y + s (xd A^T) B^T} as one recorded op that keeps only the [N, r] product for backward (composed ops
     * would keep two N x out intermediates). Gradients flow into y, xd, A and B when they require them.
     *
     * @param a [r, in]
     * @param b [out, r]
     */
    static Tensor addLowRank(Tensor y, Tensor xd, Tensor a, Tensor b, float s) {
        int in = a.dim(1), out = b.dim(0), r = a.dim(0);
        Tensor x2 = xd.contiguous().reshape(-1, in);                 // [N, in]
        int n = x2.dim(0);
        Tensor hs = Tensor.zeros(n, r);                              // [N, r] = s · xd A^T
        Gemm.matmul(x2, a.transpose(0, 1), hs, false);
        float[] hd = hs.data();
        for (int i = 0; i < hd.length; i++) hd[i] *= s;
        Tensor res = y.copyToF32().reshape(n, out);                  // [N, out]
        Gemm.matmul(hs, b.transpose(0, 1), res, true);
        Tensor result = res.reshape(y.shape());
        return Tape.record(result, () -> {
            Tensor g = result.grad();
            if (g == null) return;
            Tensor g2 = Tensor.of(g.data(), n, out);                 // [N, out]
            if (y.requiresGrad()) {
                float[] yg = y.gradBuffer().data(), gd = g.data();
                for (int i = 0; i < gd.length; i++) yg[i] += gd[i];
            }
            if (b.requiresGrad()) Gemm.matmul(g2.transpose(0, 1), hs, b.gradBuffer(), true);         // dB += g^T hs
            if (!a.requiresGrad() && !xd.requiresGrad()) return;
            Tensor du = Tensor.zeros(n, r);                          // [N, r] = s · g B = dL/d(xd A^T)
            Gemm.matmul(g2, b, du, false);
            float[] dud = du.data();
            for (int i = 0; i < dud.length; i++) dud[i] *= s;
            if (a.requiresGrad()) Gemm.matmul(du.transpose(0, 1), x2, a.gradBuffer(), true);         // dA += du^T x
            if (xd.requiresGrad()) Gemm.matmul(du, a, Tensor.of(xd.gradBuffer().data(), n, in), true); // dx += du A
        }, y, xd, a, b);
    }

    /**
     * {@code count} random matrices of {@code size} elements each, uniform in (-bound, bound), defined by a seed:
     * element {@code e} of basis {@code i} is {@code bound · u(seed, i · size + e)} with {@code u} the SplitMix64
     * finaliser of the counter mapped to one of 2^24 evenly spaced values in (-1, 1). Pure integer arithmetic plus
     * one float product: identical on every JVM and platform, in any evaluation order.
     *
     * <p>The bases are handled in blocks of consecutive bases ([kc, size], about {@value #BLOCK_FLOATS} floats), and
     * mixing / projecting is one GEMV per block ({@link Gemm}: vectorised, threaded). A kept basis holds the blocks;
     * otherwise each block is regenerated into a scratch array when used. The GEMV calls are the same either way, so
     * the results are bit-identical.
     */
    public static final class RandomBasis {
        static final int BLOCK_FLOATS = 1 << 18;
        private static final int GRAIN = 8192;
        final long seed;
        final int count;            // number of bases
        final int size;             // elements per basis
        final float bound;
        private final int blockRows;   // bases per block
        private final boolean keep;
        private float[][] blocks;      // [ceil(count / blockRows)][rows * size] when kept (generated on first use)

        /** @param keep keep the bases in memory (count · size floats) instead of regenerating them on every use */
        public RandomBasis(long seed, int count, int size, float bound, boolean keep) {
            if (count < 1 || size < 1) throw new IllegalArgumentException("random basis needs count >= 1 and size >= 1, got " + count + " x " + size);
            this.seed = seed;
            this.count = count;
            this.size = size;
            this.bound = bound;
            this.blockRows = Math.max(1, Math.min(count, BLOCK_FLOATS / size));
            this.keep = keep;
        }

        /** True if the bases are kept in memory. */
        public boolean kept() { return keep; }

        /** Element {@code e} of basis {@code i}. */
        public float value(int i, int e) { return bound * unit(seed, (long) i * size + e); }

        /** A value in (-1, 1) from (seed, index): one of 2^24 evenly spaced, exactly representable floats. */
        static float unit(long seed, long index) {
            long z = seed + (index + 1) * 0x9E3779B97F4A7C15L;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z ^= z >>> 31;
            int u = (int) (z >>> 40);                                // [0, 2^24)
            return ((u - 8388608) + 0.5f) * (1f / 8388608f);
        }

        private int blockCount() { return (count + blockRows - 1) / blockRows; }

        /** Bases [i0, i0 + rows) as a [rows, size] tensor: kept, or generated into {@code scratch}. */
        private Tensor block(int blk, float[] scratch) {
            int i0 = blk * blockRows, rows = Math.min(blockRows, count - i0);
            float[] d;
            if (keep) {
                if (blocks == null) blocks = new float[blockCount()][];
                if (blocks[blk] == null) blocks[blk] = generate(i0, rows, new float[rows * size]);
                d = blocks[blk];
            } else {
                d = generate(i0, rows, scratch.length == rows * size ? scratch : new float[rows * size]);
            }
            return Tensor.of(d, rows, size);
        }

        private float[] generate(int i0, int rows, float[] d) {
            long first = (long) i0 * size;
            Parallel.forRange(0, rows * size, GRAIN, (from, to) -> {
                for (int e = from; e < to; e++) d[e] = bound * unit(seed, first + e);
            });
            return d;
        }

        /** {@code out = Σ_i coef_i · basis_i} ([size]); blocks whose coefficients are all zero (β at init) are skipped. */
        public void mix(float[] coef, float[] out) {
            Arrays.fill(out, 0f);
            Tensor o = Tensor.of(out, 1, size);
            float[] scratch = new float[keep ? 0 : blockRows * size];
            for (int blk = 0; blk < blockCount(); blk++) {
                int i0 = blk * blockRows, rows = Math.min(blockRows, count - i0);
                boolean zero = true;
                for (int i = i0; i < i0 + rows && zero; i++) zero = coef[i] == 0f;
                if (zero) continue;
                Gemm.matmul(Tensor.of(Arrays.copyOfRange(coef, i0, i0 + rows), 1, rows), block(blk, scratch), o, true);
            }
        }

        /** {@code dcoef[off + i] += <g, basis_i>} for every basis i (g [size]). */
        public void project(float[] g, float[] dcoef, int off) {
            if (g.length != size) throw new IllegalArgumentException("gradient of " + g.length + " values for bases of " + size);
            Tensor gt = Tensor.of(g, 1, size);
            float[] scratch = new float[keep ? 0 : blockRows * size];
            for (int blk = 0; blk < blockCount(); blk++) {
                int i0 = blk * blockRows, rows = Math.min(blockRows, count - i0);
                Tensor d = Tensor.zeros(1, rows);
                Gemm.matmul(gt, block(blk, scratch).transpose(0, 1), d, false);
                float[] dd = d.data();
                for (int i = 0; i < rows; i++) dcoef[off + i0 + i] += dd[i];
            }
        }
    }
}
