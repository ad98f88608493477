package io.peft4j.nn;

import io.peft4j.autograd.TensorOps;
import io.peft4j.tensor.Tensor;

/** A named lookup table: rows of weight [V, d] for token ids. Frozen by default (weight is whatever was loaded). */
public final class Embedding {
    private final String name;
    private Tensor weight;         // [V, d]
    private EmbeddingHook[] hooks = new EmbeddingHook[0];

    public Embedding(String name, Tensor weight) {
        if (weight.rank() != 2) throw new IllegalArgumentException(name + ": embedding weight must be 2-D, got " + weight.describe());
        this.name = name;
        this.weight = weight;
    }

    public String name() { return name; }
    public Tensor weight() { return weight; }
    public int numEmbeddings() { return weight.dim(0); }
    public int dim() { return weight.dim(1); }

    /** Replaces the weight (merging an embedding adapter); same shape. */
    public void setWeight(Tensor w) {
        if (w.rank() != 2 || w.dim(0) != weight.dim(0) || w.dim(1) != weight.dim(1))
            throw new IllegalArgumentException(name + ": new weight " + java.util.Arrays.toString(w.shape()) + " != " + java.util.Arrays.toString(weight.shape()));
        this.weight = w;
    }

    /** Adds a hook applied after the lookup (embedding adapters). */
    public void addHook(EmbeddingHook h) {
        EmbeddingHook[] n = java.util.Arrays.copyOf(hooks, hooks.length + 1);
        n[hooks.length] = h;
        hooks = n;
    }

    public boolean removeHook(EmbeddingHook h) {
        java.util.List<EmbeddingHook> l = new java.util.ArrayList<>(java.util.List.of(hooks));
        boolean removed = l.remove(h);
        hooks = l.toArray(new EmbeddingHook[0]);
        return removed;
    }

    public java.util.List<EmbeddingHook> hooks() { return java.util.List.of(hooks); }

    /** ids -> [ids.length, d]; errors name the layer and the id out of range. */
    public Tensor forward(int[] ids) {
        int v = weight.dim(0);
        for (int id : ids)
            if (id < 0 || id >= v) throw new IllegalArgumentException(name + ": token id " + id + " out of range [0, " + v + ")");
        Tensor out = TensorOps.embedding(weight, ids);
        for (EmbeddingHook h : hooks) out = h.apply(ids, out);
        return out;
    }
}
