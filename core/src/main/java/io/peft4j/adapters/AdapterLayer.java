package io.peft4j.adapters;

import io.peft4j.nn.Linear;
import io.peft4j.nn.LinearHook;
import io.peft4j.tensor.Tensor;

import java.util.Map;

/**
 * An adapter on one {@link Linear} that is not of the {@code s · g · B M A} shape of {@link LoraLayer}: mixtures with
 * routers (MoLA, SMoRA, MM-LoRA), updates generated from seeds (NOLA), Kronecker products (DiffuseKronA). The model
 * ({@link LoraModel}) attaches it, switches it on and off, lists its trainable tensors, merges it through
 * {@link #deltaWeight()} and saves {@link #tensors()}; its method rebuilds it from them
 * ({@link AdapterMethod#restoreLayer}).
 */
public interface AdapterLayer extends LinearHook {
    /** The wrapped layer. */
    Linear base();

    /** Turns the adapter's contribution on or off (the model does this for active / disabled / merged adapters). */
    void setEnabled(boolean on);

    /**
     * Every tensor saved with the adapter, by key suffix after the module name (e.g. {@code "nola_coef_A"}, saved as
     * {@code base_model.model.<module>.nola_coef_A}); trainable ones require gradients. Suffixes must not be
     * {@code weight} or {@code bias} (those name modules_to_save copies).
     */
    Map<String, Tensor> tensors();

    /**
     * What merging adds to W, [out, in] F32. A layer whose contribution depends on the input (a router) returns the
     * update it would apply with every route open, and says so by {@link #mergeable()} being false.
     */
    Tensor deltaWeight();

    /** True if {@code W + deltaWeight()} reproduces the adapter exactly (no input-dependent routing). */
    default boolean mergeable() { return true; }

    /**
     * The update as plain LoRA factors {A [r, in], B [out, r]} with {@code B A = deltaWeight()}, or null when it has
     * no exact low-rank form (then the method's own format is the only one).
     */
    default Tensor[] lowRankFactors() { return null; }

    /** An auxiliary training loss collected during the last forward (e.g. a router's load balancing), or null. */
    default Tensor auxiliaryLoss() { return null; }
}
