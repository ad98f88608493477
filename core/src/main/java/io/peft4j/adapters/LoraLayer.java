package io.peft4j.adapters;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.kernels.Gemm;
import io.peft4j.nn.Linear;
import io.peft4j.nn.LinearHook;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One LoRA-shaped adapter on one {@link Linear}: {@code y = W x + b + s · g · B M A dropout(x)} with {@code s = alpha / r}
 * ({@code alpha / sqrt r} with rsLoRA), optionally DoRA's magnitude re-scaling. Plain LoRA has no middle factor
 * {@code M} and no gain {@code g}; the initialisation family adds them: an r x r core (SLoRA, NLoRA, IntTune, LoRA-SB,
 * LaMDA) or a diagonal (LoLDU), and a trainable scalar gain (LoLDU). Any factor may be frozen (its tensor does not
 * require gradients); {@link #parameters()} lists the trainable ones. Products are ordered so nothing out x in is
 * formed while training: {@code ((x A^T) M^T) B^T}.
 *
 * <p>DoRA (as PEFT computes it): {@code y + (m / ||W + s B A||_row - 1) · (W x) + (m / ||·||_row) · s · B A x}, where
 * the row norm is treated as a constant in backward (DoRA paper, section 4.3).
 */
public final class LoraLayer implements LinearHook {
    private final String adapterName;
    private final Linear base;
    private final AdapterRuntime runtime;
    private final int rank;
    private float scaling;
    private int rankLimit;       // only ranks [0, rankLimit) contribute (DyLoRA's nested truncation); = rank normally
    private final float dropout;

    Tensor a;          // [r, in]
    Tensor b;          // [out, r]
    Tensor mid;        // [r, r] core or [r] diagonal between A and B, or null (plain LoRA)
    Tensor gain;       // [1] trainable scalar multiplying the update, or null
    Tensor bBias;      // [out] (lora_bias) or null
    Tensor magnitude;  // [out] (DoRA) or null
    private boolean enabled = true;
    private float[] frozenNorm;  // [out]; tests only: hold DoRA's detached row norm fixed under finite differences
    private float[] bFrozenValues;      // [out * r]: B's values at the time each column was frozen (valid for frozen columns)
    private boolean[] bFrozenColumns;   // [r]: true where B's column (rank) takes no gradient (a schedule's partial freeze), or null

    LoraLayer(String adapterName, Linear base, AdapterRuntime runtime, int rank, float scaling, float dropout,
              Tensor a, Tensor b, Tensor bBias, Tensor magnitude) {
        this(adapterName, base, runtime, rank, scaling, dropout, a, b, null, null, bBias, magnitude);
    }

    LoraLayer(String adapterName, Linear base, AdapterRuntime runtime, int rank, float scaling, float dropout,
              Tensor a, Tensor b, Tensor mid, Tensor gain, Tensor bBias, Tensor magnitude) {
        if (mid != null && !(mid.rank() == 1 && mid.dim(0) == rank) && !(mid.rank() == 2 && mid.dim(0) == rank && mid.dim(1) == rank))
            throw new IllegalArgumentException(base.name() + ": middle factor must be [" + rank + "] or [" + rank + ", " + rank + "], got " + mid.describe());
        if (gain != null && gain.numel() != 1) throw new IllegalArgumentException(base.name() + ": gain must hold one value");
        this.mid = mid;
        this.gain = gain;
        this.rankLimit = rank;
        this.adapterName = adapterName;
        this.base = base;
        this.runtime = runtime;
        this.rank = rank;
        this.scaling = scaling;
        this.dropout = dropout;
        this.a = a;
        this.b = b;
        this.bBias = bBias;
        this.magnitude = magnitude;
    }

    public String adapterName() { return adapterName; }
    public Linear base() { return base; }
    public int rank() { return rank; }
    public float scaling() { return scaling; }
    public Tensor loraA() { return a; }
    public Tensor loraB() { return b; }
    public Tensor loraBBias() { return bBias; }
    /** The middle factor: [r, r], [r] (diagonal), or null. */
    public Tensor mid() { return mid; }
    public int rankLimit() { return rankLimit; }

    /**
     * Uses only the first {@code limit} ranks (rows of A, columns of B) from now on, with scaling {@code scaling}
     * (DyLoRA trains and serves nested truncations of one adapter). Gradients of the ranks left out are zero.
     */
    public void setRankLimit(int limit, float scaling) {
        if (magnitude != null) throw new IllegalStateException(base.name() + ": rank truncation does not combine with DoRA");
        if (limit < 1 || limit > rank) throw new IllegalArgumentException(base.name() + ": rank limit " + limit + " outside [1, " + rank + "]");
        this.rankLimit = limit;
        this.scaling = scaling;
    }
    public Tensor gain() { return gain; }
    public Tensor magnitude() { return magnitude; }
    public boolean isDora() { return magnitude != null; }
    public boolean enabled() { return enabled; }
    void enabled(boolean e) { enabled = e; }

    /** The trainable tensors of this layer (frozen factors left out). */
    public List<Tensor> parameters() {
        List<Tensor> p = new ArrayList<>(6);
        for (Tensor t : new Tensor[] {a, b, mid, gain, bBias, magnitude}) if (t != null && t.requiresGrad()) p.add(t);
        return p;
    }

    /**
     * Freezes single columns (ranks) of B while the rest of B trains, for schedules that freeze B rank by rank
     * (LaMDA): a frozen column's gradient stays zero and it is not counted as trainable ({@link #frozenBEntries()}).
     * {@code null} (or no true entry) lets every column train. The optimizer still holds B as one tensor, and AdamW's
     * momentum would carry a just-frozen column a little further: {@link #restoreFrozenBColumns} after each update
     * holds it exactly. Freezing B as a whole ({@link #setTrainable}) stops its updates entirely. Not with DoRA.
     *
     * @param frozen [r] true for each column that takes no gradient
     */
    public void setFrozenBColumns(boolean[] frozen) {
        if (frozen != null && frozen.length != rank)
            throw new IllegalArgumentException(base.name() + ": column mask of B has " + frozen.length + " entries, rank is " + rank);
        if (frozen != null && magnitude != null) throw new IllegalArgumentException(base.name() + ": column freezing of B is not available with DoRA");
        boolean any = false;
        if (frozen != null) for (boolean f : frozen) any |= f;
        if (any) {
            // keep the values each newly frozen column has now, so restoreFrozenBColumns can undo the optimizer's
            // momentum on it (AdamW moves a parameter whose gradient is zero while its moments are not)
            int out = b.dim(0);
            if (bFrozenValues == null) bFrozenValues = new float[out * rank];
            float[] bd = b.data();
            int off = b.dataOffset();
            for (int j = 0; j < rank; j++)
                if (frozen[j] && (bFrozenColumns == null || !bFrozenColumns[j]))
                    for (int o = 0; o < out; o++) bFrozenValues[o * rank + j] = bd[off + o * rank + j];
        } else {
            bFrozenValues = null;
        }
        bFrozenColumns = any ? frozen.clone() : null;
    }

    /** Puts B's frozen columns back to the values they had when frozen (call after each optimizer update). */
    public void restoreFrozenBColumns() {
        if (bFrozenColumns == null) return;
        int out = b.dim(0);
        float[] bd = b.data();
        int off = b.dataOffset();
        for (int j = 0; j < rank; j++)
            if (bFrozenColumns[j]) for (int o = 0; o < out; o++) bd[off + o * rank + j] = bFrozenValues[o * rank + j];
    }

    /** The columns of B frozen by {@link #setFrozenBColumns} ([r], a copy), or null when none is. */
    public boolean[] frozenBColumns() { return bFrozenColumns == null ? null : bFrozenColumns.clone(); }

    /** Scalars of a trainable B held by a column freeze (0 when B is frozen as a whole or no column is). */
    public long frozenBEntries() {
        if (bFrozenColumns == null || !b.requiresGrad()) return 0;
        long n = 0;
        for (boolean f : bFrozenColumns) if (f) n += b.dim(0);
        return n;
    }

    private static void zeroColumns(float[] g, boolean[] cols, int rows, int r) {
        for (int o = 0; o < rows; o++) for (int j = 0; j < r; j++) if (cols[j]) g[o * r + j] = 0f;
    }

    /**
     * Makes this layer use {@code shared} as its factor "A" or "B" (same shape as now), so that several layers hold
     * one tensor (S2-LoRA shares A and B across layers): every layer's backward accumulates into its one gradient.
     */
    public void shareFactor(String factor, Tensor shared) {
        Tensor now = switch (factor) {
            case "A" -> a;
            case "B" -> b;
            default -> throw new IllegalArgumentException("only A or B can be shared, not '" + factor + "'");
        };
        if (!java.util.Arrays.equals(now.shape(), shared.shape()))
            throw new IllegalArgumentException(base.name() + ": shared " + factor + " " + shared.describe() + " does not fit " + now.describe());
        if (factor.equals("A")) a = shared;
        else b = shared;
    }

    /** Freezes or unfreezes one factor ("A", "B", "M", "gain"); a frozen factor also drops its gradient. */
    public void setTrainable(String factor, boolean trainable) {
        Tensor t = switch (factor) {
            case "A" -> a;
            case "B" -> b;
            case "M" -> mid;
            case "gain" -> gain;
            default -> throw new IllegalArgumentException("unknown factor '" + factor + "' (A, B, M, gain)");
        };
        if (t == null) throw new IllegalArgumentException(base.name() + ": this layer has no factor " + factor);
        t.requiresGrad(trainable);
        if (!trainable) t.clearGrad();
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) return y;
        boolean drop = runtime.training() && dropout > 0;
        Tensor xd = drop ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        if (magnitude == null) return addLora(xd, y);
        Tensor h = TensorOps.linear(xd, a, null);                                    // [..., r]
        if (mid != null) h = mid.rank() == 2 ? TensorOps.linear(h, mid, null) : TensorOps.mul(h, mid);
        if (gain != null) h = TensorOps.mul(h, gain);
        Tensor lora = TensorOps.linear(h, b, bBias);                                 // [..., out]

        Tensor magScale = TensorOps.div(magnitude, Tensor.of(rowNorms(), base.outFeatures()));   // [out]
        Tensor baseResult;                                                                      // W x without bias
        if (drop) baseResult = TensorOps.linear(xd, base.weight(), null);
        else baseResult = base.bias() == null ? y : TensorOps.sub(y, base.bias());
        Tensor scaled = TensorOps.mul(TensorOps.add(baseResult, TensorOps.scale(lora, scaling)), magScale);
        return TensorOps.add(y, TensorOps.sub(scaled, baseResult));
    }

    /**
     * {@code y + s g ((xd A^T) M^T) B^T + s b_B} as one recorded op: it keeps only the [N, r] products for backward
     * and allocates one output, where composed ops kept three N x out intermediates and their gradients.
     */
    private Tensor addLora(Tensor xd, Tensor y) {
        int in = a.dim(1), out = b.dim(0), r = rank;
        Tensor x2 = xd.contiguous().reshape(-1, in);                 // [N, in]
        int n = x2.dim(0);
        Tensor hs = Tensor.zeros(n, r);                              // [N, r] = s · xd A^T
        Gemm.matmul(x2, a.transpose(0, 1), hs, false);
        scaleInPlace(hs, scaling);
        truncateRanks(hs);
        Tensor u = hs;                                               // [N, r] = hs M^T (= hs when there is no M)
        if (mid != null) {
            u = Tensor.zeros(n, r);
            if (mid.rank() == 2) Gemm.matmul(hs, mid.transpose(0, 1), u, false);
            else mulColumns(hs.data(), mid.toFloatArray(), u.data(), n, r);
            truncateRanks(u);
        }
        float gv = gain == null ? 1f : gain.getFlat(0);
        Tensor ug = gv == 1f ? u : scaled(u, gv);                    // [N, r] = g · u
        Tensor res = y.copyToF32().reshape(n, out);                  // [N, out]
        Gemm.matmul(ug, b.transpose(0, 1), res, true);
        if (bBias != null) {
            float[] rd = res.data(), bb = bBias.toFloatArray();
            for (int i = 0; i < n; i++) for (int o = 0; o < out; o++) rd[i * out + o] += scaling * bb[o];
        }
        Tensor result = res.reshape(y.shape());
        final Tensor uf = u;
        return Tape.record(result, () -> {
            Tensor g = result.grad();
            if (g == null) return;
            Tensor g2 = Tensor.of(g.data(), n, out);                 // [N, out]
            if (y.requiresGrad()) {
                float[] yg = y.gradBuffer().data(), gd = g.data();
                for (int i = 0; i < gd.length; i++) yg[i] += gd[i];
            }
            if (b.requiresGrad()) {
                Gemm.matmul(g2.transpose(0, 1), ug, b.gradBuffer(), true);          // dB += g^T ug
                if (bFrozenColumns != null) zeroColumns(b.gradBuffer().data(), bFrozenColumns, out, r);
            }
            if (bBias != null && bBias.requiresGrad()) {
                float[] bg = bBias.gradBuffer().data(), gd = g.data();
                for (int i = 0; i < n; i++) for (int o = 0; o < out; o++) bg[o] += scaling * gd[i * out + o];
            }
            boolean needU = a.requiresGrad() || xd.requiresGrad() || (mid != null && mid.requiresGrad());
            if (!needU && (gain == null || !gain.requiresGrad())) return;
            Tensor du = Tensor.zeros(n, r);                          // [N, r] = g B (the gradient of g · u, before g)
            Gemm.matmul(g2, b, du, false);
            truncateRanks(du);
            float[] dud = du.data();
            if (gain != null && gain.requiresGrad()) {
                float[] ud = uf.data();
                double s = 0;
                for (int i = 0; i < dud.length; i++) s += (double) dud[i] * ud[i];
                gain.gradBuffer().data()[0] += (float) s;
            }
            if (!needU) return;
            if (gv != 1f) scaleInPlace(du, gv);                      // now dL/du
            Tensor dh = du;                                          // [N, r] = dL/dhs
            if (mid != null) {
                if (mid.requiresGrad()) {
                    if (mid.rank() == 2) Gemm.matmul(du.transpose(0, 1), hs, mid.gradBuffer(), true);   // dM += du^T hs
                    else {
                        float[] md = mid.gradBuffer().data(), hd = hs.data();
                        for (int i = 0; i < n; i++) for (int j = 0; j < r; j++) md[j] += dud[i * r + j] * hd[i * r + j];
                    }
                }
                dh = Tensor.zeros(n, r);
                if (mid.rank() == 2) Gemm.matmul(du, mid, dh, false);
                else mulColumns(dud, mid.toFloatArray(), dh.data(), n, r);
                truncateRanks(dh);
            }
            if (!a.requiresGrad() && !xd.requiresGrad()) return;
            scaleInPlace(dh, scaling);                               // dL/d(xd A^T)
            if (a.requiresGrad()) Gemm.matmul(dh.transpose(0, 1), x2, a.gradBuffer(), true);          // dA += dh^T x
            if (xd.requiresGrad()) Gemm.matmul(dh, a, Tensor.of(xd.gradBuffer().data(), n, in), true);   // dx += dh A
        }, y, xd, a, b, mid, gain, bBias);
    }

    /** Zeroes the columns at or beyond {@link #rankLimit} of an [N, r] block (nothing when all ranks are used). */
    private void truncateRanks(Tensor t) {
        if (rankLimit == rank) return;
        float[] d = t.data();
        int r = rank, n = d.length / r;
        for (int i = 0; i < n; i++) java.util.Arrays.fill(d, i * r + rankLimit, i * r + r, 0f);
    }

    private static void scaleInPlace(Tensor t, float f) {
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] *= f;
    }

    private static Tensor scaled(Tensor t, float f) {
        float[] src = t.data(), d = new float[src.length];
        for (int i = 0; i < d.length; i++) d[i] = src[i] * f;
        return Tensor.of(d, t.shape());
    }

    /** {@code out[i, j] = h[i, j] · diag[j]} over an [n, r] block. */
    private static void mulColumns(float[] h, float[] diag, float[] out, int n, int r) {
        for (int i = 0; i < n; i++) for (int j = 0; j < r; j++) out[i * r + j] = h[i * r + j] * diag[j];
    }

    /** {@code g · M · ...}: the factor that multiplies B to give the effective up-projection, [r, r] F32 (identity when plain). */
    public Tensor effectiveMid() {
        float[] m = new float[rank * rank];
        float gv = gain == null ? 1f : gain.getFlat(0);
        if (mid == null) for (int j = 0; j < rank; j++) m[j * rank + j] = gv;
        else if (mid.rank() == 1) { float[] d = mid.toFloatArray(); for (int j = 0; j < rank; j++) m[j * rank + j] = gv * d[j]; }
        else { float[] d = mid.toFloatArray(); for (int i = 0; i < m.length; i++) m[i] = gv * d[i]; }
        // ranks beyond the limit neither feed (columns) nor receive (rows) anything
        for (int i = 0; i < rank; i++) for (int j = 0; j < rank; j++) if (i >= rankLimit || j >= rankLimit) m[i * rank + j] = 0;
        return Tensor.of(m, rank, rank);
    }

    /** The effective up-projection {@code B · g M} [out, r]: with A and the scaling it gives the plain-LoRA form. */
    public Tensor effectiveB() {
        if (mid == null && gain == null && rankLimit == rank) return b.copyToF32();
        Tensor eb = Tensor.zeros(b.dim(0), rank);
        Gemm.matmul(b, effectiveMid(), eb, false);
        return eb;
    }

    /** {@code s · g B M A} [out, in]. */
    public Tensor deltaWeight() {
        Tensor d = Tensor.zeros(base.outFeatures(), base.inFeatures());
        Gemm.matmul(effectiveB(), a, d, false);
        float[] dd = d.data();
        for (int i = 0; i < dd.length; i++) dd[i] *= scaling;
        return d;
    }

    /** ||W + s B A|| per output row, in double; a constant for autograd. */
    float[] rowNorms() { return frozenNorm != null ? frozenNorm : rowNorms(base.weight(), deltaWeight()); }

    /** Fixes DoRA's row norm at its current value (for finite-difference checks of the detached-norm gradient). */
    void freezeNorm() { frozenNorm = rowNorms(base.weight(), deltaWeight()); }

    static float[] rowNorms(Tensor w, Tensor delta) {
        int out = w.dim(0), in = w.dim(1);
        Tensor wc = w.contiguous();
        float[] row = new float[in];
        float[] dd = delta.data();
        float[] norms = new float[out];
        for (int o = 0; o < out; o++) {
            wc.storage().readFloats(wc.dtype(), wc.offset() + (long) o * in, row, 0, in);
            double s = 0;
            for (int i = 0; i < in; i++) { double v = row[i] + dd[o * in + i]; s += v * v; }
            norms[o] = (float) Math.sqrt(s);
        }
        return norms;
    }

    /**
     * The weight with this adapter merged, [out, in] F32: {@code W + s B A}, or with DoRA
     * {@code m / ||W + s B A||_row · (W + s B A)}.
     */
    Tensor mergedWeight(Tensor w) {
        Tensor delta = deltaWeight();
        Tensor merged = w.copyToF32();
        float[] md = merged.data(), dd = delta.data();
        for (int i = 0; i < md.length; i++) md[i] += dd[i];
        if (magnitude != null) {
            int out = merged.dim(0), in = merged.dim(1);
            float[] m = magnitude.toFloatArray();
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += (double) md[o * in + i] * md[o * in + i];
                float f = (float) (m[o] / Math.sqrt(s));
                for (int i = 0; i < in; i++) md[o * in + i] *= f;
            }
        }
        return merged;
    }

    /** The bias with this adapter merged ({@code b + s · lora_B.bias}), or the base bias when there is no lora bias. */
    Tensor mergedBias(Tensor bias) {
        if (bBias == null) return bias;
        float[] add = bBias.toFloatArray();
        float[] out = bias == null ? new float[add.length] : bias.toFloatArray();
        for (int i = 0; i < out.length; i++) out[i] += scaling * add[i];
        return Tensor.of(out, out.length);
    }
}
