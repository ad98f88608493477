package io.peft4j.nn;

import io.peft4j.autograd.NnOps;
import io.peft4j.tensor.Tensor;

/** LayerNorm over the last axis with learned scale and shift [d]. */
public final class LayerNorm {
    private final String name;
    private final Tensor weight;   // [d]
    private final Tensor bias;     // [d] or null
    private final float eps;

    public LayerNorm(String name, Tensor weight, Tensor bias, float eps) {
        if (weight.rank() != 1) throw new IllegalArgumentException(name + ": norm weight must be 1-D, got " + weight.describe());
        if (bias != null && (bias.rank() != 1 || bias.dim(0) != weight.dim(0)))
            throw new IllegalArgumentException(name + ": norm bias " + bias.describe() + " does not match weight " + weight.describe());
        this.name = name;
        this.weight = weight;
        this.bias = bias;
        this.eps = eps;
    }

    public String name() { return name; }
    public Tensor weight() { return weight; }
    public Tensor bias() { return bias; }
    public float eps() { return eps; }

    public Tensor forward(Tensor x) { return NnOps.layerNorm(x, weight, bias, eps); }
}
