package io.peft4j.adapters;

import io.peft4j.kernels.Gemm;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.io.PrintStream;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * What an {@link AdapterMethod} gets to build an adapter: the targeted layers (PEFT's target rules already
 * applied), the LoRA config and the method's options, a seeded random stream, calibration batches for data-driven
 * inits (null when none were given), and a log for progress lines.
 *
 * @param targets  the layers to adapt, by module name, in module order
 * @param offsets  filled by {@link #rewriteBase}: module -> {A0 [r0, in], B0' [out, r0]} with W rewritten to W - B0' A0
 */
public record MethodContext(String adapter, Module model, LoraConfig config, MethodConfig options,
                            Map<String, Linear> targets, AdapterRuntime runtime, SplittableRandom rng,
                            Calibration calibration, PrintStream log, Map<String, Tensor[]> offsets) {

    /** The calibration batches; an error naming the method when none were given. */
    public Calibration requireCalibration() {
        if (calibration == null)
            throw new IllegalArgumentException("method " + options.method() + " initialises from data: give it calibration batches (the training data)");
        return calibration;
    }

    /**
     * A layer on {@code module} with factors {@code s · g · B M A}, {@code s} the scaling the returned config gives
     * the module (so a reload reproduces it: a method without a scale sets alpha = r). A factor's trainability is
     * its tensor's {@code requiresGrad} flag (set it before calling). {@code mid} and {@code gain} may be null.
     */
    public LoraLayer layer(LoraConfig finalConfig, String module, Tensor a, Tensor b, Tensor mid, Tensor gain) {
        Linear lin = targets.get(module);
        if (lin == null) throw new IllegalArgumentException("module " + module + " is not a target of this adapter");
        int r = a.dim(0);
        LoraInit.checkRank(module, r, lin.inFeatures(), lin.outFeatures());
        if (a.rank() != 2 || a.dim(1) != lin.inFeatures() || b.rank() != 2 || b.dim(0) != lin.outFeatures() || b.dim(1) != r)
            throw new IllegalArgumentException(module + ": factors A " + a.describe() + ", B " + b.describe() + " do not fit ["
                    + lin.outFeatures() + ", " + lin.inFeatures() + "]");
        a.name(module + ".lora_A");
        b.name(module + ".lora_B");
        if (mid != null) mid.name(module + ".lora_M");
        if (gain != null) gain.name(module + ".lora_gain");
        if (finalConfig.rankFor(module) != r)
            throw new IllegalArgumentException(module + ": factor rank " + r + " but the config gives rank " + finalConfig.rankFor(module) + " (set a rank_pattern)");
        return new LoraLayer(adapter, lin, runtime, r, (float) finalConfig.scalingFor(module), (float) finalConfig.loraDropout(),
                a, b, mid, gain, null, null);
    }

    /** A layer with this context's config (ranks and scaling unchanged). */
    public LoraLayer layer(String module, Tensor a, Tensor b, Tensor mid, Tensor gain) {
        return layer(config, module, a, b, mid, gain);
    }

    /**
     * Rewrites the base weight of {@code module} to {@code W - b0 · a0} so that an adapter starting at
     * {@code b0 a0} leaves the model unchanged (as PiSSA and LoRA-GA do), and records the offset: it is saved with
     * the adapter, re-applied on load, and folded into an exported plain LoRA.
     *
     * @param a0 [r0, in]
     * @param b0 [out, r0], already multiplied by whatever scaling and middle factor the adapter applies
     */
    public void rewriteBase(String module, Tensor a0, Tensor b0) {
        Linear lin = targets.get(module);
        if (offsets.containsKey(module)) throw new IllegalStateException(module + ": base already rewritten by this adapter");
        Tensor before = lin.weight();
        applyOffset(lin, a0, b0);
        offsets.put(module, new Tensor[] {a0.copyToF32(), b0.copyToF32(), before});
    }

    static void applyOffset(Linear lin, Tensor a0, Tensor b0) { subtractProduct(lin, b0, a0, 1f); }

    /** Replaces the layer's weight by an F32 {@code W - scale · (b a)} (PiSSA/OLoRA's and the methods' base rewrite). */
    static void subtractProduct(Linear lin, Tensor b, Tensor a, float scale) {
        Tensor w = lin.weight().copyToF32();                 // [out, in]
        Tensor d = Tensor.zeros(lin.outFeatures(), lin.inFeatures());
        Gemm.matmul(b, a, d, false);
        float[] wd = w.data(), dd = d.data();
        for (int i = 0; i < wd.length; i++) wd[i] -= scale * dd[i];
        lin.setWeight(w);
    }

    /** Uniform(-bound, bound) values from the context's random stream. */
    public Tensor uniform(double bound, int... shape) { return LoraInit.uniform(rng, bound, shape); }

    /** Gaussian(0, std) values from the context's random stream. */
    public Tensor gaussian(double std, int... shape) { return LoraInit.gaussian(rng, std, shape); }
}
