package io.peft4j.adapters;

import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.EmbeddingHook;
import io.peft4j.tensor.Tensor;

import java.util.List;

/**
 * LoRA on an embedding layer, as PEFT's {@code lora.Embedding}: {@code out + s · A^T[ids] B^T} with
 * {@code lora_embedding_A} [r, V] and {@code lora_embedding_B} [d, r]. PEFT initialises A to zero and B normal (the
 * reverse of linear layers), so the adapter is an identity at init. No dropout (PEFT applies none to embeddings).
 */
public final class LoraEmbeddingLayer implements EmbeddingHook {
    private final String adapterName;
    private final Embedding base;
    private final int rank;
    private final float scaling;
    final Tensor a;    // [r, V]
    final Tensor b;    // [d, r]
    private boolean enabled = true;

    LoraEmbeddingLayer(String adapterName, Embedding base, int rank, float scaling, Tensor a, Tensor b) {
        this.adapterName = adapterName;
        this.base = base;
        this.rank = rank;
        this.scaling = scaling;
        this.a = a.requiresGrad(true);
        this.b = b.requiresGrad(true);
    }

    public String adapterName() { return adapterName; }
    public Embedding base() { return base; }
    public int rank() { return rank; }
    public float scaling() { return scaling; }
    public Tensor loraEmbeddingA() { return a; }
    public Tensor loraEmbeddingB() { return b; }
    public List<Tensor> parameters() { return List.of(a, b); }
    void enabled(boolean e) { enabled = e; }

    @Override
    public Tensor apply(int[] ids, Tensor out) {
        if (!enabled) return out;
        Tensor rows = TensorOps.embedding(TensorOps.transpose(a, 0, 1), ids);          // [N, r]
        return TensorOps.add(out, TensorOps.scale(TensorOps.linear(rows, b, null), scaling));
    }

    /** {@code W + s (B A)^T} [V, d], F32. */
    Tensor mergedWeight(Tensor w) {
        Tensor merged = w.copyToF32();
        int v = merged.dim(0), d = merged.dim(1);
        float[] md = merged.data(), ad = a.toFloatArray(), bd = b.toFloatArray();
        for (int t = 0; t < v; t++)
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int k = 0; k < rank; k++) s += (double) bd[j * rank + k] * ad[k * v + t];
                md[t * d + j] += (float) (scaling * s);
            }
        return merged;
    }
}
