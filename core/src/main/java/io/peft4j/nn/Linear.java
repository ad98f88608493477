package io.peft4j.nn;

import io.peft4j.autograd.TensorOps;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A named affine layer {@code y = x W^T + b} with a hook point for adapters. The weight is kept in whatever float
 * dtype and storage it was loaded in (a memory-mapped BF16 segment stays one) and is frozen by default.
 *
 * <p>GPT-2's Conv1D stores its weight as [in, out] ({@code fanInFanOut}); this layer then keeps a transposed view of
 * that storage as its [out, in] weight, so nothing is copied and the GEMM reads the original layout.
 */
public final class Linear {
    private final String name;
    private Tensor weight;        // [out, in] (a transposed view of an [in, out] tensor when fanInFanOut)
    private Tensor bias;          // [out] or null
    private final boolean fanInFanOut;
    private final int inFeatures, outFeatures;
    private final List<LinearHook> hooks = new ArrayList<>(0);
    private LinearHook[] hookArray = new LinearHook[0];   // snapshot read by forward: no iterator allocation per call

    /**
     * @param name        HF module name, used in error messages and by adapters to match target modules
     * @param stored      the weight as stored: [out, in], or [in, out] when {@code fanInFanOut}
     * @param bias        [out] or null
     * @param fanInFanOut true for GPT-2 Conv1D weights stored [in, out]
     */
    public Linear(String name, Tensor stored, Tensor bias, boolean fanInFanOut) {
        if (stored.rank() != 2) throw new IllegalArgumentException(name + ": weight must be 2-D, got " + stored.describe());
        if (!stored.dtype().isFloat()) throw new IllegalArgumentException(name + ": weight must be a float tensor, got " + stored.describe());
        this.name = name;
        this.fanInFanOut = fanInFanOut;
        this.weight = fanInFanOut ? stored.transpose(0, 1) : stored;
        this.outFeatures = weight.dim(0);
        this.inFeatures = weight.dim(1);
        if (bias != null && (bias.rank() != 1 || bias.dim(0) != outFeatures))
            throw new IllegalArgumentException(name + ": bias " + Arrays.toString(bias.shape()) + " does not match " + outFeatures + " outputs");
        this.bias = bias;
    }

    /** A linear layer over an [out, in] weight. */
    public Linear(String name, Tensor weight, Tensor bias) { this(name, weight, bias, false); }

    public String name() { return name; }
    public int inFeatures() { return inFeatures; }
    public int outFeatures() { return outFeatures; }
    public boolean fanInFanOut() { return fanInFanOut; }

    /** The weight as an [out, in] tensor (a transposed view when {@link #fanInFanOut()}). */
    public Tensor weight() { return weight; }

    /** The weight in its stored layout: [in, out] when {@link #fanInFanOut()}, else [out, in]. */
    public Tensor storedWeight() { return fanInFanOut ? weight.transpose(0, 1) : weight; }

    public Tensor bias() { return bias; }

    /**
     * Replaces the weight (merge / unmerge of adapters, quantised bases); same shape, given as [out, in] whatever
     * the stored layout was.
     */
    public void setWeight(Tensor w) {
        if (w.rank() != 2 || w.dim(0) != outFeatures || w.dim(1) != inFeatures)
            throw new IllegalArgumentException(name + ": new weight " + Arrays.toString(w.shape()) + " != [" + outFeatures + ", " + inFeatures + "]");
        this.weight = w;
    }

    public void setBias(Tensor b) {
        if (b != null && (b.rank() != 1 || b.dim(0) != outFeatures))
            throw new IllegalArgumentException(name + ": bias " + Arrays.toString(b.shape()) + " does not match " + outFeatures + " outputs");
        this.bias = b;
    }

    /** {@code x} [..., in] -> [..., out]: the base product, then every hook in order. */
    public Tensor forward(Tensor x) {
        if (x.dim(-1) != inFeatures)
            throw new IllegalArgumentException(name + ": input " + Arrays.toString(x.shape()) + " has last dim " + x.dim(-1) + ", layer expects " + inFeatures);
        Tensor y = TensorOps.linear(x, weight, bias);
        LinearHook[] hs = hookArray;
        for (LinearHook h : hs) y = h.apply(x, y);
        return y;
    }

    /** The base product only, ignoring hooks (merge checks, adapters that need W x). */
    public Tensor forwardBase(Tensor x) { return TensorOps.linear(x, weight, bias); }

    public void addHook(LinearHook hook) {
        hooks.add(hook);
        hookArray = hooks.toArray(new LinearHook[0]);
    }

    /** Removes {@code hook}; returns false if it was not attached. */
    public boolean removeHook(LinearHook hook) {
        boolean removed = hooks.remove(hook);
        hookArray = hooks.toArray(new LinearHook[0]);
        return removed;
    }

    /** The attached hooks in application order (unmodifiable). */
    public List<LinearHook> hooks() { return Collections.unmodifiableList(hooks); }

    @Override
    public String toString() {
        return "Linear(" + name + ", in=" + inFeatures + ", out=" + outFeatures + ", " + weight.dtype()
                + (bias != null ? ", bias" : "") + (fanInFanOut ? ", fan_in_fan_out" : "") + (hooks.isEmpty() ? "" : ", " + hooks.size() + " hooks") + ")";
    }
}
