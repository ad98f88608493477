package io.peft4j.nn;

import io.peft4j.autograd.NnOps;
import io.peft4j.tensor.Tensor;

/** RMSNorm over the last axis with a learned scale [d]. */
public final class RMSNorm {
    private final String name;
    private final Tensor weight;   // [d]
    private final float eps;

    public RMSNorm(String name, Tensor weight, float eps) {
        if (weight.rank() != 1) throw new IllegalArgumentException(name + ": norm weight must be 1-D, got " + weight.describe());
        this.name = name;
        this.weight = weight;
        this.eps = eps;
    }

    public String name() { return name; }
    public Tensor weight() { return weight; }
    public float eps() { return eps; }

    public Tensor forward(Tensor x) { return NnOps.rmsNorm(x, weight, eps); }
}
