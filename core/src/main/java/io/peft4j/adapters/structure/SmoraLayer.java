package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One SMoRA layer: a rank-r LoRA whose ranks are single-rank experts, k of them active per token (see {@link Smora}):
 * {@code y = W x + b + s · B (G(x) ⊙ A x_d)}, {@code x_d = dropout(x)}, G the top-k gates of the sigmoid router
 * {@code σ(W_g x_d) + bias}. The bias (non-trainable, saved) is moved by the loss-free balancing rule in training
 * forwards.
 */
public final class SmoraLayer implements AdapterLayer {
    static final String ROUTER = "smora_router", A = "smora_A", B = "smora_B", BIAS = "smora_bias";

    private final Linear base;
    private final AdapterRuntime runtime;
    private final int rank, topK;
    private final float scaling, dropout, biasRate, balanceWeight;
    final Tensor router;   // [r, in] W_g
    final Tensor a;        // [r, in]
    final Tensor b;        // [out, r]
    final Tensor bias;     // [r] balancing bias: only chooses ranks, never trained by gradients
    private boolean enabled = true;
    private Tensor aux;              // [1] the optional balancing loss of the last forward, or null
    private boolean[] lastSelected;  // [N·r] the ranks each token of the last forward activated
    private float[] lastGates;       // [N·r] their gates k t_i / Σ t (0 elsewhere), before the scaling

    SmoraLayer(Linear base, AdapterRuntime runtime, int topK, float scaling, float dropout, float biasRate, float balanceWeight,
               Tensor router, Tensor a, Tensor b, Tensor bias) {
        int r = a.dim(0);
        if (a.rank() != 2 || a.dim(1) != base.inFeatures() || b.rank() != 2 || b.dim(0) != base.outFeatures() || b.dim(1) != r
                || router.rank() != 2 || router.dim(0) != r || router.dim(1) != base.inFeatures() || bias.numel() != r)
            throw new IllegalArgumentException(base.name() + ": SMoRA tensors router " + router.describe() + ", A " + a.describe() + ", B "
                    + b.describe() + ", bias " + bias.describe() + " do not fit rank " + r + " on [" + base.outFeatures() + ", " + base.inFeatures() + "]");
        if (topK < 1 || topK > r)
            throw new IllegalArgumentException(base.name() + ": SMoRA top_k " + topK + " must be in [1, rank " + r + "] (the paper activates 8 of 64 ranks)");
        this.base = base;
        this.runtime = runtime;
        this.rank = r;
        this.topK = topK;
        this.scaling = scaling;
        this.dropout = dropout;
        this.biasRate = biasRate;
        this.balanceWeight = balanceWeight;
        this.router = router;
        this.a = a;
        this.b = b;
        this.bias = bias;
    }

    @Override public Linear base() { return base; }
    @Override public void setEnabled(boolean on) { enabled = on; if (!on) aux = null; }
    public int rank() { return rank; }
    public int topK() { return topK; }
    public float scaling() { return scaling; }

    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(ROUTER, router);
        m.put(A, a);
        m.put(B, b);
        m.put(BIAS, bias);
        return m;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) { aux = null; return y; }
        boolean drop = runtime.training() && dropout > 0;
        Tensor xd = drop ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        Tensor logits = TensorOps.linear(TensorOps.reshape(xd, -1, base.inFeatures()), router, null);   // [N, r]
        float[] bv = bias.toFloatArray();
        Routing.Routed routed = Routing.topKSigmoid(logits, bv, topK, scaling);
        lastSelected = routed.selected();
        lastGates = routed.weights();
        aux = balanceWeight > 0 ? Routing.balanceLoss(logits, routed.counts(), topK, true, balanceWeight) : null;
        if (runtime.training() && biasRate > 0) balance(routed.counts());
        return Routing.gatedLora(y, xd, a, b, routed.gates());
    }

    /**
     * The loss-free balancing step of the authors' code (DeepSeek-V3's rule): {@code bias_i += u · sign(mean_j c_j - c_i)}
     * with c the activations per rank in this forward, so overloaded ranks become less likely to be chosen.
     */
    void balance(int[] counts) {
        double mean = 0;
        for (int c : counts) mean += c;
        mean /= counts.length;
        float[] d = bias.data();
        int o = bias.dataOffset();
        for (int i = 0; i < counts.length; i++) d[o + i] += (float) (biasRate * Math.signum(mean - counts[i]));
    }

    /** The optional load-balancing loss of the last forward (when {@code balance_weight} > 0), else null. */
    @Override public Tensor auxiliaryLoss() { return aux; }

    /** [N·r] row-major: the ranks each token of the last forward activated. */
    boolean[] lastSelected() { return lastSelected; }

    /** [N·r] row-major: the gates of the last forward (k t_i / Σ_top-k t, exactly 0 on inactive ranks). */
    float[] lastGates() { return lastGates; }

    /** {@code s B A}: every rank at gate 1 (the real update is routed per token). */
    @Override
    public Tensor deltaWeight() {
        float[] gate = new float[rank];
        java.util.Arrays.fill(gate, scaling);
        return Routing.gatedDelta(a, b, gate);
    }

    /** False: the router activates different ranks per token. */
    @Override public boolean mergeable() { return false; }
}
