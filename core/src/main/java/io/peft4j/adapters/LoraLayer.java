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
 * One LoRA adapter on one {@link Linear}: {@code y = W x + b + s · B A dropout(x)} with {@code s = alpha / r}
 * ({@code alpha / sqrt r} with rsLoRA), optionally DoRA's magnitude re-scaling. Products are ordered so nothing
 * out x in is formed while training: {@code (x A^T) B^T}.
 *
 * <p>DoRA (as PEFT computes it): {@code y + (m / ||W + s B A||_row - 1) · (W x) + (m / ||·||_row) · s · B A x}, where
 * the row norm is treated as a constant in backward (DoRA paper, section 4.3).
 */
public final class LoraLayer implements LinearHook {
    private final String adapterName;
    private final Linear base;
    private final AdapterRuntime runtime;
    private final int rank;
    private final float scaling;
    private final float dropout;

    Tensor a;          // [r, in]
    Tensor b;          // [out, r]
    Tensor bBias;      // [out] (lora_bias) or null
    Tensor magnitude;  // [out] (DoRA) or null
    private boolean enabled = true;
    private float[] frozenNorm;  // [out]; tests only: hold DoRA's detached row norm fixed under finite differences

    LoraLayer(String adapterName, Linear base, AdapterRuntime runtime, int rank, float scaling, float dropout,
              Tensor a, Tensor b, Tensor bBias, Tensor magnitude) {
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
    public Tensor magnitude() { return magnitude; }
    public boolean isDora() { return magnitude != null; }
    public boolean enabled() { return enabled; }
    void enabled(boolean e) { enabled = e; }

    /** The trainable tensors of this layer. */
    public List<Tensor> parameters() {
        List<Tensor> p = new ArrayList<>(4);
        p.add(a);
        p.add(b);
        if (bBias != null) p.add(bBias);
        if (magnitude != null) p.add(magnitude);
        return p;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) return y;
        boolean drop = runtime.training() && dropout > 0;
        Tensor xd = drop ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        if (magnitude == null) return addLora(xd, y);
        Tensor lora = TensorOps.linear(TensorOps.linear(xd, a, null), b, bBias);    // [..., out]

        Tensor magScale = TensorOps.div(magnitude, Tensor.of(rowNorms(), base.outFeatures()));   // [out]
        Tensor baseResult;                                                                      // W x without bias
        if (drop) baseResult = TensorOps.linear(xd, base.weight(), null);
        else baseResult = base.bias() == null ? y : TensorOps.sub(y, base.bias());
        Tensor scaled = TensorOps.mul(TensorOps.add(baseResult, TensorOps.scale(lora, scaling)), magScale);
        return TensorOps.add(y, TensorOps.sub(scaled, baseResult));
    }

    /**
     * {@code y + s (xd A^T) B^T + s b_B} as one recorded op: it keeps only {@code s xd A^T} [N, r] for backward and
     * allocates one output, where the composed ops kept three N x out intermediates and their gradients.
     */
    private Tensor addLora(Tensor xd, Tensor y) {
        int in = a.dim(1), out = b.dim(0), r = rank;
        Tensor x2 = xd.contiguous().reshape(-1, in);                 // [N, in]
        int n = x2.dim(0);
        Tensor hs = Tensor.zeros(n, r);                              // [N, r] = s · xd A^T
        Gemm.matmul(x2, a.transpose(0, 1), hs, false);
        float[] hd = hs.data();
        for (int i = 0; i < hd.length; i++) hd[i] *= scaling;
        Tensor res = y.copyToF32().reshape(n, out);                  // [N, out]
        Gemm.matmul(hs, b.transpose(0, 1), res, true);
        if (bBias != null) {
            float[] rd = res.data(), bb = bBias.toFloatArray();
            for (int i = 0; i < n; i++) for (int o = 0; o < out; o++) rd[i * out + o] += scaling * bb[o];
        }
        Tensor result = res.reshape(y.shape());
        return Tape.record(result, () -> {
            Tensor g = result.grad();
            if (g == null) return;
            Tensor g2 = Tensor.of(g.data(), n, out);                 // [N, out]
            if (y.requiresGrad()) {
                float[] yg = y.gradBuffer().data(), gd = g.data();
                for (int i = 0; i < gd.length; i++) yg[i] += gd[i];
            }
            if (b.requiresGrad()) Gemm.matmul(g2.transpose(0, 1), hs, b.gradBuffer(), true);          // dB += g^T hs
            if (bBias != null && bBias.requiresGrad()) {
                float[] bg = bBias.gradBuffer().data(), gd = g.data();
                for (int i = 0; i < n; i++) for (int o = 0; o < out; o++) bg[o] += scaling * gd[i * out + o];
            }
            if (a.requiresGrad() || xd.requiresGrad()) {
                Tensor dh = Tensor.zeros(n, r);                      // [N, r] = s · g B
                Gemm.matmul(g2, b, dh, false);
                float[] dd = dh.data();
                for (int i = 0; i < dd.length; i++) dd[i] *= scaling;
                if (a.requiresGrad()) Gemm.matmul(dh.transpose(0, 1), x2, a.gradBuffer(), true);    // dA += dh^T x
                if (xd.requiresGrad()) Gemm.matmul(dh, a, Tensor.of(xd.gradBuffer().data(), n, in), true);   // dx += dh A
            }
        }, y, xd, a, b, bBias);
    }

    /** {@code s · B A} [out, in]. */
    public Tensor deltaWeight() {
        Tensor d = Tensor.zeros(base.outFeatures(), base.inFeatures());
        Gemm.matmul(b, a, d, false);
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
