package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * S2-LoRA (Sparsely Shared LoRA): one A [r, in] and one B [out, r] shared by every layer of a module type, and per
 * layer only a vector of r rank coefficients {@code lambda_l}, kept sparse by an L1 penalty:
 * {@code y = W_l x + s · B diag(lambda_l) A x}. From "Sparsely Shared LoRA on Whisper for Child Speech Recognition"
 * (Liu, Qin, Peng, Lee; arXiv 2309.11756), which derives it from AdaLoRA's learnable rank coefficients.
 *
 * <p>Sharing: layers share A and B when their module names end in the same segment and their weights have the same
 * shape ({@code share=type}: all {@code q_proj} together, all {@code down_proj} together), or when only their shapes
 * agree ({@code share=shape}: the paper's "globally shared", across types of equal shape). The layers of one group
 * hold the very same two tensors, so every layer's backward accumulates into one gradient and the optimizer updates
 * them once ({@code LoraModel.parameters} lists a shared tensor once). Saving writes A and B under every module's PEFT
 * key (PEFT's layout has no sharing); loading re-ties them ({@link #restore}: the groups are saved in the method state,
 * and the copies must be bitwise equal). Trainable parameters: {@code r (in + out)} per group plus {@code r} per layer.
 *
 * <p>Choices where the paper is silent (or its text was not available): the coefficients start at zero and A, B at
 * N(0, 0.02^2) as in AdaLoRA, which the paper builds on (so the model is unchanged at init and A, B train once the
 * coefficients move); the L1 penalty {@code l1 · sum |lambda|} is applied as its proximal step (soft threshold by
 * {@code lr · l1}) after every optimizer update, so coefficients become exactly zero rather than small; the scaling is
 * LoRA's alpha / r. A plain-LoRA export drops the ranks whose coefficient is exactly zero (identical outputs, smaller
 * adapter). Metrics: the number of non-zero coefficients per layer and in all.
 */
public final class S2Lora implements AdapterMethod {
    private static final String GROUP_KEY = "group.";

    @Override public String name() { return "s2-lora"; }

    @Override public String summary() { return "A and B shared across layers of one type; per layer a sparse (L1, proximal) rank-coefficient vector"; }

    @Override public String paper() { return "Sparsely Shared LoRA on Whisper for Child Speech Recognition (arXiv 2309.11756)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("l1", "0.1", "L1 strength on the rank coefficients: after each update they shrink by lr·l1 towards 0 (exact zeros)"),
                new MethodOption("share", "type", "type (one A, B per module type and shape, e.g. all q_proj) | shape (one A, B per weight shape)"),
                new MethodOption("init_std", "0.02", "std of the shared A and B at init (AdaLoRA's); the coefficients start at 0"));
    }

    @Override public boolean prunesZeroGates() { return true; }

    @Override
    public Initialised initialise(MethodContext ctx) {
        String share = ctx.options().string("share");
        double std = ctx.options().number("init_std");
        if (ctx.options().number("l1") < 0) throw new IllegalArgumentException("method s2-lora: l1 must be >= 0");
        Map<String, Tensor[]> shared = new LinkedHashMap<>();              // group -> {A [r, in], B [out, r]}
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int r = ctx.config().rankFor(module);
            String group = groupKey(module, lin.outFeatures(), lin.inFeatures(), share);
            Tensor[] ab = shared.get(group);
            if (ab == null) {
                ab = new Tensor[] {ctx.gaussian(std, r, lin.inFeatures()).requiresGrad(true), ctx.gaussian(std, lin.outFeatures(), r).requiresGrad(true)};
                shared.put(group, ab);
            } else if (ab[0].dim(0) != r) {
                throw new IllegalArgumentException("method s2-lora: modules sharing " + group + " must have one rank; " + module + " has " + r + ", the group " + ab[0].dim(0));
            }
            Tensor coeff = Tensor.zeros(r).requiresGrad(true);             // [r] diagonal rank coefficients
            layers.put(module, ctx.layer(module, ab[0], ab[1], coeff, null));
        }
        return new Initialised(ctx.config(), layers);
    }

    /** Which A, B a module uses: {@code <last name segment>[out x in]} (type) or {@code [out x in]} (shape). */
    static String groupKey(String module, int out, int in, String share) {
        String shape = "[" + out + "x" + in + "]";
        return switch (share) {
            case "type" -> module.substring(module.lastIndexOf('.') + 1) + shape;
            case "shape" -> shape;
            default -> throw new IllegalArgumentException("method s2-lora: share must be type or shape, got '" + share + "'");
        };
    }

    /** Groups of layers by shared factors (module names in order), as the option says. */
    static Map<String, List<String>> groups(Map<String, LoraLayer> layers, String share) {
        Map<String, List<String>> g = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            Linear lin = e.getValue().base();
            g.computeIfAbsent(groupKey(e.getKey(), lin.outFeatures(), lin.inFeatures(), share), k -> new ArrayList<>()).add(e.getKey());
        }
        return g;
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        double t = lr * options.number("l1");
        if (t <= 0) return;
        for (LoraLayer l : layers.values()) if (l.mid().requiresGrad()) Proximal.softThreshold(l.mid(), l.rank(), t);
    }

    @Override
    public Map<String, Double> report(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, Double> out = new LinkedHashMap<>();
        long nonzero = 0, all = 0;
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            int n = 0;
            Tensor m = e.getValue().mid();
            for (int j = 0; j < e.getValue().rank(); j++) if (m.getFlat(j) != 0f) n++;
            out.put("rank/" + e.getKey(), (double) n);
            nonzero += n;
            all += e.getValue().rank();
        }
        out.put("nonzero_coefficients", (double) nonzero);
        out.put("coefficients", (double) all);
        return out;
    }

    /** The sharing groups: {@code group.<key>} -> comma-separated module names. */
    @Override
    public Map<String, String> state(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, String> s = new LinkedHashMap<>();
        groups(layers, options.string("share")).forEach((k, v) -> s.put(GROUP_KEY + k, String.join(",", v)));
        return s;
    }

    /**
     * Re-ties the layers of each group to one A and one B (those of the group's first layer): PEFT's file holds a copy
     * per module. Uses the saved groups, or the option's rule when none were saved; copies that differ are an error.
     */
    @Override
    public void restore(Map<String, String> state, Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, List<String>> groups = new LinkedHashMap<>();
        state.forEach((k, v) -> { if (k.startsWith(GROUP_KEY)) groups.put(k.substring(GROUP_KEY.length()), List.of(v.split(","))); });
        if (groups.isEmpty()) groups.putAll(groups(layers, options.string("share")));
        for (Map.Entry<String, List<String>> g : groups.entrySet()) {
            LoraLayer first = null;
            for (String module : g.getValue()) {
                LoraLayer l = layers.get(module);
                if (l == null) throw new IllegalArgumentException("method s2-lora: group " + g.getKey() + " names module " + module + ", which the adapter does not have");
                if (first == null) { first = l; continue; }
                tie(first, l, "A", first.loraA(), l.loraA());
                tie(first, l, "B", first.loraB(), l.loraB());
            }
        }
    }

    private static void tie(LoraLayer owner, LoraLayer l, String factor, Tensor shared, Tensor copy) {
        if (shared == copy) return;
        if (!Arrays.equals(shared.toFloatArray(), copy.toFloatArray()))
            throw new IllegalArgumentException("method s2-lora: " + l.base().name() + " has a " + factor + " that differs from the one it shares with "
                    + owner.base().name() + " (the saved copies of a shared factor must be equal)");
        l.shareFactor(factor, shared);
    }
}
