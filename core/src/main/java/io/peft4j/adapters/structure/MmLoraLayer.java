package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.autograd.NnOps;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One MM-LoRA layer (see {@link MmLora}): parallel LoRAs, one per modality, each token going through the LoRA of its
 * modality only: {@code y = W x + b + s_m B_m A_m dropout(x)} with m the token's tag from
 * {@link AdapterRuntime#tokenTags()} (null = every token modality 0). The LoRAs are stored stacked, modality m owning
 * rows {@code [o_m, o_m + r_m)} of A and the same columns of B, and run as one rank-(Σ r_m) LoRA whose gates are the
 * 0 / s_m modality mask: a token's other-modality ranks are multiplied by an exact 0, so they neither change its output
 * nor receive gradient from it.
 */
public final class MmLoraLayer implements AdapterLayer {
    static final String A = "mmlora_A", B = "mmlora_B";

    private final Linear base;
    private final AdapterRuntime runtime;
    private final int[] ranks;       // [M] rank of each modality's LoRA
    private final int[] offsets;     // [M + 1] first stacked rank of each modality
    private final float[] scalings;  // [M] alpha / r_m
    private final float dropout;
    final Tensor a;                  // [Σ r_m, in]
    final Tensor b;                  // [out, Σ r_m]
    private boolean enabled = true;

    MmLoraLayer(Linear base, AdapterRuntime runtime, int[] ranks, float[] scalings, float dropout, Tensor a, Tensor b) {
        int total = 0;
        for (int r : ranks) total += r;
        if (a.rank() != 2 || a.dim(0) != total || a.dim(1) != base.inFeatures() || b.rank() != 2 || b.dim(0) != base.outFeatures() || b.dim(1) != total)
            throw new IllegalArgumentException(base.name() + ": MM-LoRA tensors A " + a.describe() + ", B " + b.describe() + " do not fit ranks "
                    + Arrays.toString(ranks) + " on [" + base.outFeatures() + ", " + base.inFeatures() + "]");
        this.base = base;
        this.runtime = runtime;
        this.ranks = ranks.clone();
        this.offsets = new int[ranks.length + 1];
        for (int m = 0; m < ranks.length; m++) offsets[m + 1] = offsets[m] + ranks[m];
        this.scalings = scalings.clone();
        this.dropout = dropout;
        this.a = a;
        this.b = b;
    }

    @Override public Linear base() { return base; }
    @Override public void setEnabled(boolean on) { enabled = on; }
    public int modalities() { return ranks.length; }
    /** The rank of modality m's LoRA. */
    public int rank(int m) { return ranks[m]; }
    /** The first row of A (column of B) that modality m owns. */
    public int offset(int m) { return offsets[m]; }

    @Override
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put(A, a);
        t.put(B, b);
        return t;
    }

    @Override
    public Tensor apply(Tensor x, Tensor y) {
        if (!enabled) return y;
        int n = Math.toIntExact(x.numel() / base.inFeatures());
        int[] tags = runtime.tokenTags();
        if (tags != null && tags.length != n)
            throw new IllegalStateException(base.name() + ": " + tags.length + " token tags set for an input of " + n
                    + " rows (the tags must be [batch * seqLen] of the batch being run)");
        int total = offsets[ranks.length];
        float[] g = new float[n * total];           // [N, R] the modality mask with each LoRA's scaling
        for (int t = 0; t < n; t++) {
            int m = tags == null ? 0 : tags[t];
            if (m < 0 || m >= ranks.length)
                throw new IllegalStateException(base.name() + ": token " + t + " has modality " + m + " but the adapter has "
                        + ranks.length + " modalities (0.." + (ranks.length - 1) + ")");
            Arrays.fill(g, t * total + offsets[m], t * total + offsets[m + 1], scalings[m]);
        }
        boolean drop = runtime.training() && dropout > 0;
        Tensor xd = drop ? NnOps.dropout(x, dropout, runtime.nextSeed(), true) : x;
        return Routing.gatedLora(y, xd, a, b, Tensor.of(g, n, total));
    }

    /** One modality's update {@code s_m B_m A_m} [out, in]: what merging would add for inputs of that modality only. */
    public Tensor deltaWeight(int modality) {
        float[] gate = new float[offsets[ranks.length]];
        Arrays.fill(gate, offsets[modality], offsets[modality + 1], scalings[modality]);
        return Routing.gatedDelta(a, b, gate);
    }

    /** Every modality's update summed (the layer applies one of them per token, so this is not a merge). */
    @Override
    public Tensor deltaWeight() {
        float[] gate = new float[offsets[ranks.length]];
        for (int m = 0; m < ranks.length; m++) Arrays.fill(gate, offsets[m], offsets[m + 1], scalings[m]);
        return Routing.gatedDelta(a, b, gate);
    }

    /** False: each token uses its own modality's LoRA. */
    @Override public boolean mergeable() { return false; }
}
