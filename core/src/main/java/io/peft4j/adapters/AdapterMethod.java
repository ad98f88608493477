package io.peft4j.adapters;

import java.util.List;
import java.util.Map;

/**
 * One row of METHODS.md: how an adapter of this kind is created on the targeted linear layers (and, for methods
 * with schedules, how it changes as training goes). Registered in {@link Methods}; everything else (forward,
 * merge, save, load, export) is shared through {@link LoraLayer}, whose factors {@code s · g · B M A} cover the
 * LoRA-shaped family.
 */
public interface AdapterMethod {
    /** The CLI name: "lora-ga", "eva", ... */
    String name();

    /** One line for {@code peft4j methods}. */
    String summary();

    /** The paper (title, arXiv id). */
    String paper();

    /** Hyper-parameters with their defaults. */
    List<MethodOption> options();

    /** True if {@link #initialise} runs calibration passes over training batches. */
    default boolean needsCalibration() { return false; }

    /**
     * Creates the adapter's layers on {@code ctx.targets()} (without attaching them: the caller does). May rewrite
     * base weights through {@link MethodContext#rewriteBase} and change per-module ranks through the returned config.
     */
    Initialised initialise(MethodContext ctx);

    /** Called before every optimizer step {@code step} (0-based), also right after a resume: schedules live here. */
    default void beforeStep(int step, Map<String, LoraLayer> layers, MethodConfig options) {}

    /**
     * Called after optimizer step {@code step} (0-based) was applied at learning rate {@code lr}: proximal steps,
     * rank growth or pruning live here.
     */
    default void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {}

    /**
     * Figures the Trainer writes into each step's row of {@code metrics.jsonl} (under {@code "method"}), after
     * {@link #afterStep}: per-module ranks, group norms, how many modules survive. Keep it cheap.
     */
    default Map<String, Double> report(Map<String, LoraLayer> layers, MethodConfig options) { return Map.of(); }

    /**
     * The adapter's state beyond its tensors (per-module rank limits, importance averages, which modules a selection
     * dropped), as strings: saved in {@value MethodConfig#FILE} and in training checkpoints, given back to
     * {@link #restore}. Methods are shared singletons: keep per-adapter state keyed by the layers, not in fields.
     */
    default Map<String, String> state(Map<String, LoraLayer> layers, MethodConfig options) { return Map.of(); }

    /**
     * Re-applies {@link #state} to layers rebuilt from saved tensors (a load, or a checkpoint resume), and restores
     * what the PEFT tensor layout cannot express (factors shared across layers). {@code state} may be empty.
     */
    default void restore(Map<String, String> state, Map<String, LoraLayer> layers, MethodConfig options) {}

    /**
     * Called after the backward pass of optimizer step {@code step} (0-based), before gradient clipping and the
     * update: gradient transforms (ALLoRA's norm-adaptive scaling, DyLoRA's update of one rank only) live here.
     */
    default void beforeUpdate(int step, Map<String, LoraLayer> layers, MethodConfig options) {}

    /** Called once an adapter of this method has been loaded from disk (e.g. to apply a saved evaluation rank). */
    default void afterLoad(Map<String, LoraLayer> layers, MethodConfig options) {}

    /**
     * True if {@link LoraModel#exportPlainLora(String)} should drop the ranks whose diagonal middle factor (gate)
     * is exactly zero (SoRA), giving a smaller plain LoRA with identical outputs.
     */
    default boolean prunesZeroGates() { return false; }

    /**
     * Rebuilds a non-LoRA-shaped layer ({@link AdapterLayer}) of this method from its saved tensors (key suffix ->
     * tensor, see {@link AdapterLayer#tensors()}); the context gives the module in {@code targets()}. Methods whose
     * layers are all {@link LoraLayer}s never get this call.
     */
    default AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, io.peft4j.tensor.Tensor> saved) {
        throw new UnsupportedOperationException("method " + name() + " has no layers of its own to restore");
    }

    /**
     * The outcome of {@link #initialise}: the config as it ends up (e.g. with a {@code rank_pattern}), the LoRA-shaped
     * layers by module name in the order of the targets, and layers of other shapes ({@link AdapterLayer}).
     */
    record Initialised(LoraConfig config, Map<String, LoraLayer> layers, Map<String, AdapterLayer> otherLayers) {
        public Initialised(LoraConfig config, Map<String, LoraLayer> layers) { this(config, layers, Map.of()); }
    }
}
