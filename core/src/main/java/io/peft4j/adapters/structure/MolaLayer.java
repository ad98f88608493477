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
 * One MoLA mixture on one {@link Linear}: E LoRA experts of rank r and a linear router,
 * {@code y = W x + b + Σ_{i ∈ top-k} g_i(x) · s · B_i A_i dropout(x)} with {@code g = renormalised top-k of
 * softmax(R x)} (see {@link Mola}). The experts are stored stacked, expert i owning rows {@code [i r, (i+1) r)} of A
 * and the same columns of B, and run as one gated rank-(E·r) LoRA.
 */
public final class MolaLayer implements AdapterLayer {
    static final String ROUTER = "mola_router", A = "mola_A", B = "mola_B";

    private final Linear base;
    private final AdapterRuntime runtime;
    private final int experts, rank, topK;
    private final float scaling, dropout, balanceWeight;
    final Tensor router;   // [E, in]
    final Tensor a;        // [E·r, in] the experts' A stacked
    final Tensor b;        // [out, E·r] the experts' B side by side
    private boolean enabled = true;
    private Tensor aux;             // [1] the balancing loss of the last forward, or null
    private boolean[] lastSelected; // [N·E] the experts each token of the last forward chose (tests, reports)
    private float[] lastGates;      // [N·E] their renormalised gates, 0 for the others

    MolaLayer(Linear base, AdapterRuntime runtime, int rank, int topK, float scaling, float dropout, float balanceWeight,
              Tensor router, Tensor a, Tensor b) {
        int e = router.dim(0);
        if (router.rank() != 2 || router.dim(1) != base.inFeatures() || a.rank() != 2 || a.dim(0) != e * rank
                || a.dim(1) != base.inFeatures() || b.rank() != 2 || b.dim(0) != base.outFeatures() || b.dim(1) != e * rank)
            throw new IllegalArgumentException(base.name() + ": MoLA tensors router " + router.describe() + ", A " + a.describe() + ", B "
                    + b.describe() + " do not fit " + e + " experts of rank " + rank + " on [" + base.outFeatures() + ", " + base.inFeatures() + "]");
        this.base = base;
        this.runtime = runtime;
        this.experts = e;
        this.rank = rank;
        this.topK = Math.min(topK, e);
        this.scaling = scaling;
        this.dropout = dropout;
        this.balanceWeight = balanceWeight;
        this.router = router;
        this.a = a;
        this.b = b;
    }

    @Override public Linear base() { return base; }
    @Override public void setEnabled(boolean on) { enabled = on; if (!on) aux = null; }
    public int experts() { return experts; }
    public int expertRank() { return rank; }
    /** Experts chosen per token: min(top_k, experts). */
    public int topK() { return topK; }

    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(ROUTER, router);
        m.put(A, a);
        m.put(B, b);
        return m;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) { aux = null; return y; }
        Tensor x2 = TensorOps.reshape(x, -1, base.inFeatures());                 // [N, in]
        Tensor logits = TensorOps.linear(x2, router, null);                       // [N, E]: the router sees x itself
        Routing.Routed r = Routing.topKSoftmax(logits, topK, rank, scaling);
        lastSelected = r.selected();
        lastGates = r.weights();
        aux = balanceWeight > 0 ? Routing.balanceLoss(logits, r.counts(), topK, false, balanceWeight) : null;
        boolean drop = runtime.training() && dropout > 0;
        Tensor xd = drop ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        return Routing.gatedLora(y, xd, a, b, r.gates());
    }

    /** The switch-style balancing loss of the last forward (when its weight is set), else null. */
    @Override public Tensor auxiliaryLoss() { return aux; }

    /** [N·E] row-major: which experts each token of the last forward chose. */
    boolean[] lastSelected() { return lastSelected; }

    /** [N·E] row-major: the renormalised router weights of the last forward (exactly 0 off the top-k). */
    float[] lastGates() { return lastGates; }

    /** The update with every expert's gate at 1: {@code s Σ_i B_i A_i} (routing makes the real one input-dependent). */
    @Override
    public Tensor deltaWeight() {
        float[] gate = new float[experts * rank];
        java.util.Arrays.fill(gate, scaling);
        return Routing.gatedDelta(a, b, gate);
    }

    /** False: the router weighs the experts per token, so no single weight reproduces the layer. */
    @Override public boolean mergeable() { return false; }
}
