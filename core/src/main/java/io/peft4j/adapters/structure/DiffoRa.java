package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * DiffoRA: a Differential Adaptation Matrix (DAM) decides which modules get LoRA. Each targeted module {@code i} has
 * a LoRA and a DAM entry {@code gamma_i}; the binary choice "adapt this module or not" is relaxed to
 * {@code gamma_i in [0, 1]}, {@code y = W_i x + gamma_i · s · B_i A_i x}, learned jointly with the LoRA factors;
 * then the DAM is discretised: the modules with the largest entries keep their LoRA, the others are dropped. From
 * "DiffoRA: Enabling Parameter-Efficient LLM Fine-Tuning via Differential Low-Rank Matrix Adaptation" (Jiang, Wang,
 * Yuan; arXiv 2502.08905, v2 titled "... via Differential Module Selection").
 *
 * <p>The stored copies of the paper held its abstract but not its method section, so the details below are peft4j's,
 * chosen to follow the abstract and the differentiable-architecture-search recipe it names (continuous relaxation,
 * discretisation, weight sharing):
 * <ul>
 *   <li>Relaxation: {@code gamma_i} is the layer's trainable gain, started at {@code dam_init} (0.5: a zero logit
 *   through a sigmoid, or two equal softmax weights over {LoRA, none}) and projected back onto [0, 1] after every
 *   update ({@link #afterStep}). It is trained on the training loss together with A and B (a first-order, single-level
 *   search; no held-out split).</li>
 *   <li>Discretisation after update {@code select_step} (1-based): the {@code ceil(keep_ratio · modules)} largest
 *   entries (ties: module order) keep their LoRA; every other module's A, B and gain are set to zero and frozen, so it
 *   contributes nothing, trains nothing, and is left out of a plain-LoRA export.</li>
 *   <li>Weight sharing: the kept modules continue with the A, B learned during the search (no re-initialisation), and
 *   their entry is frozen at its value, so the outputs of the kept modules do not jump at the discretisation.</li>
 * </ul>
 * Trainable parameters: {@code r (in + out) + 1} per module during the search; after it, {@code r (in + out)} per kept
 * module. The set of dropped modules is the method's state (saved, and re-applied on load). Metrics: each DAM entry and
 * the number of adapted modules.
 */
public final class DiffoRa implements AdapterMethod {
    private static final String DROPPED_KEY = "dropped";

    @Override public String name() { return "diffora"; }

    @Override public String summary() { return "a learned [0,1] weight per module (the DAM) selects which modules keep LoRA; the others are dropped at select_step"; }

    @Override public String paper() { return "DiffoRA: Enabling Parameter-Efficient LLM Fine-Tuning via Differential Low-Rank Matrix Adaptation (arXiv 2502.08905)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("keep_ratio", "0.5", "fraction of the targeted modules that keep their LoRA at the discretisation (at least one)"),
                new MethodOption("select_step", "100", "the DAM is discretised after this many updates"),
                new MethodOption("dam_init", "0.5", "initial DAM entry of every module, in [0, 1]"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        double keep = ctx.options().number("keep_ratio"), init = ctx.options().number("dam_init");
        if (!(keep > 0 && keep <= 1)) throw new IllegalArgumentException("method diffora: keep_ratio must be in (0, 1], got " + keep);
        if (!(init >= 0 && init <= 1)) throw new IllegalArgumentException("method diffora: dam_init must be in [0, 1], got " + init);
        if (ctx.options().integer("select_step") < 1) throw new IllegalArgumentException("method diffora: select_step must be >= 1");
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            int r = ctx.config().rankFor(e.getKey()), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = ctx.uniform(1 / Math.sqrt(in), r, in).requiresGrad(true);     // PEFT's Kaiming-uniform A
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            Tensor gamma = Tensor.of(new float[] {(float) init}, 1).requiresGrad(true);
            layers.put(e.getKey(), ctx.layer(e.getKey(), a, b, null, gamma));
        }
        return new Initialised(ctx.config(), layers);
    }

    /** True once the DAM was discretised (every entry frozen). */
    static boolean discretised(Map<String, LoraLayer> layers) {
        for (LoraLayer l : layers.values()) if (l.gain().requiresGrad()) return false;
        return true;
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        if (discretised(layers)) return;
        for (LoraLayer l : layers.values()) {                              // the relaxation's domain is [0, 1]
            Tensor g = l.gain();
            g.data()[g.dataOffset()] = Math.min(1f, Math.max(0f, g.getFlat(0)));
        }
        if (step + 1 >= options.integer("select_step")) discretise(layers, options.number("keep_ratio"));
    }

    /** Keeps the modules with the largest entries, drops the rest; returns the kept modules in module order. */
    static List<String> discretise(Map<String, LoraLayer> layers, double keepRatio) {
        List<String> order = new ArrayList<>(layers.keySet());
        order.sort((x, y) -> Float.compare(layers.get(y).gain().getFlat(0), layers.get(x).gain().getFlat(0)));   // stable
        int keep = Math.max(1, (int) Math.ceil(keepRatio * layers.size() - 1e-9));
        Set<String> kept = new HashSet<>(order.subList(0, keep));
        List<String> result = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            if (kept.contains(e.getKey())) { result.add(e.getKey()); e.getValue().setTrainable("gain", false); }
            else drop(e.getValue());
        }
        return result;
    }

    private static void drop(LoraLayer l) {
        for (Tensor t : new Tensor[] {l.loraA(), l.loraB(), l.gain()}) java.util.Arrays.fill(t.data(), t.dataOffset(), t.dataOffset() + (int) t.numel(), 0f);
        l.setTrainable("A", false);
        l.setTrainable("B", false);
        l.setTrainable("gain", false);
    }

    @Override
    public Map<String, Double> report(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, Double> out = new LinkedHashMap<>();
        boolean done = discretised(layers);
        int adapted = 0;
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            LoraLayer l = e.getValue();
            out.put("dam/" + e.getKey(), (double) l.gain().getFlat(0));
            if (!done || l.loraA().requiresGrad()) adapted++;
        }
        out.put("adapted_modules", (double) adapted);
        return out;
    }

    /** {@code dropped}: the modules the discretisation dropped (comma-separated; empty before it). */
    @Override
    public Map<String, String> state(Map<String, LoraLayer> layers, MethodConfig options) {
        if (!discretised(layers)) return Map.of();
        List<String> dropped = new ArrayList<>();
        layers.forEach((k, l) -> { if (!l.loraA().requiresGrad()) dropped.add(k); });
        return Map.of(DROPPED_KEY, String.join(",", dropped));
    }

    @Override
    public void restore(Map<String, String> state, Map<String, LoraLayer> layers, MethodConfig options) {
        String dropped = state.get(DROPPED_KEY);
        if (dropped == null) return;
        for (LoraLayer l : layers.values()) l.setTrainable("gain", false);
        if (dropped.isEmpty()) return;
        for (String m : dropped.split(",")) {
            LoraLayer l = layers.get(m);
            if (l == null) throw new IllegalArgumentException("method diffora: state drops module " + m + ", which the adapter does not have");
            drop(l);
        }
    }
}
