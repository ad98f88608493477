package io.peft4j.nn;

import io.peft4j.autograd.TensorOps;
import io.peft4j.tensor.Tensor;

/** A named lookup table: rows of weight [V, d] for token ids. Frozen by default (weight is whatever was loaded). */
public final class Embedding {
    private final String name;
    private final Tensor weight;   // [V, d]

    public Embedding(String name, Tensor weight) {
        if (weight.rank() != 2) throw new IllegalArgumentException(name + ": embedding weight must be 2-D, got " + weight.describe());
        this.name = name;
        this.weight = weight;
    }

    public String name() { return name; }
    public Tensor weight() { return weight; }
    public int numEmbeddings() { return weight.dim(0); }
    public int dim() { return weight.dim(1); }

    /** ids -> [ids.length, d]; errors name the layer and the id out of range. */
    public Tensor forward(int[] ids) {
        int v = weight.dim(0);
        for (int id : ids)
            if (id < 0 || id >= v) throw new IllegalArgumentException(name + ": token id " + id + " out of range [0, " + v + ")");
        return TensorOps.embedding(weight, ids);
    }
}
