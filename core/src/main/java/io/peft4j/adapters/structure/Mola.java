package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * MoLA, "Higher Layers Need More LoRA Experts" (Gao et al., arXiv 2402.08562; NAACL 2025 Findings as "MoLA: MoE LoRA
 * with Layer-wise Expert Allocation"; code github.com/GCYZSL/MoLA). Every targeted linear layer gets a mixture of
 * LoRA experts and a router; the number of experts differs per decoder layer:
 * <pre>
 *   y = W x + b + Σ_{i ∈ top-k(p)} (p_i / Σ_{j ∈ top-k} p_j) · (alpha / r) · B_i A_i dropout(x),   p = softmax(R x)
 * </pre>
 * with R [E, in] the router (a bias-free linear layer, trained and saved with the adapter) and E the layer's expert
 * count. As in the authors' code: each expert is a LoRA of the config's rank r and scaling alpha / r, A Kaiming-uniform
 * and B zero (so the model is unchanged at init), the router Kaiming-uniform (U(±1/√in)) and fed the input without
 * dropout, the experts the dropped-out input (one dropout mask shared by a layer's experts; the authors' code draws
 * one per expert call, the same distribution per expert). Every expert is computed for every token and weighted by
 * its gate (exactly 0 off the top-k), which gives the same outputs and gradients as dispatching only the chosen ones.
 *
 * <p>Options:
 * <ul>
 *   <li>{@code experts} (default {@code 2,4,6,8}, the paper's best "MoLA-▽" allocation): expert counts over groups of
 *       consecutive decoder layers, lowest layers first. G counts spread over a model of L layers give layer l the
 *       count of group {@code floor(l · G / L)} (32 layers and {@code 2,4,6,8}: layers 0-7 get 2 experts, 24-31 get 8,
 *       as the paper's "2-4-6-8"); L counts give one per layer (the authors' per-layer list); one count gives every
 *       layer the same number. The layer index is read from the module name ({@code layers.N.}, {@code h.N.},
 *       {@code block(s).N.}, {@code layer.N.}); a targeted module without one is an error, as is G > L.</li>
 *   <li>{@code top_k} (default 2, the paper's): experts per token; a layer with fewer experts uses all of them.</li>
 *   <li>{@code balance_weight} (default 0 = off): the authors' code has an optional ({@code --obalance}) Switch-style
 *       load-balancing loss with weight 0.001, off in their example runs; when set, each layer's
 *       {@code weight · E · Σ_i f_i P_i} is returned through {@link AdapterLayer#auxiliaryLoss()} and added to the
 *       training loss. Where the paper is silent: the authors sum it per decoder layer over the concatenated routers
 *       of that layer's modules; here it is per module (the same loss when one module per layer is targeted), and,
 *       as there, padding positions count as tokens.</li>
 * </ul>
 * Trainable parameters per module: {@code E · (r · (in + out) + in)}. Not mergeable (per-token routing) and no plain
 * LoRA form: merge and export refuse; the adapter lives in its own format ({@code mola_router}, {@code mola_A}
 * [E·r, in], {@code mola_B} [out, E·r] per module).
 */
public final class Mola implements AdapterMethod {
    @Override public String name() { return "mola"; }

    @Override public String summary() { return "mixture of LoRA experts per layer with a top-k router, more experts in higher layers"; }

    @Override public String paper() { return "Higher Layers Need More LoRA Experts (Gao et al., arXiv 2402.08562)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("experts", "2,4,6,8", "expert counts over groups of consecutive layers, lowest first (one per layer, or one for all)"),
                new MethodOption("top_k", "2", "experts per token (capped at a layer's expert count)"),
                new MethodOption("balance_weight", "0", "weight of the Switch load-balancing loss (authors' optional 0.001; 0 = off)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        Plan plan = Plan.of(ctx);
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            int experts = plan.expertsFor(module), r = ctx.config().rankFor(module);
            Tensor router = ctx.uniform(1 / Math.sqrt(in), experts, in).requiresGrad(true).name(module + "." + MolaLayer.ROUTER);
            Tensor a = ctx.uniform(1 / Math.sqrt(in), experts * r, in).requiresGrad(true).name(module + "." + MolaLayer.A);
            Tensor b = Tensor.zeros(out, experts * r).requiresGrad(true).name(module + "." + MolaLayer.B);
            layers.put(module, layer(ctx, module, plan, router, a, b));
        }
        return new Initialised(ctx.config(), Map.of(), layers);
    }

    @Override
    public AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, Tensor> saved) {
        Plan plan = Plan.of(ctx);
        Tensor router = require(saved, module, MolaLayer.ROUTER), a = require(saved, module, MolaLayer.A), b = require(saved, module, MolaLayer.B);
        int experts = plan.expertsFor(module);
        if (router.dim(0) != experts)
            throw new IllegalArgumentException(module + ": saved router has " + router.dim(0) + " experts but option experts=" + plan.spec + " gives " + experts);
        return layer(ctx, module, plan, router.requiresGrad(true), a.requiresGrad(true), b.requiresGrad(true));
    }

    private static MolaLayer layer(MethodContext ctx, String module, Plan plan, Tensor router, Tensor a, Tensor b) {
        LoraConfig c = ctx.config();
        return new MolaLayer(ctx.targets().get(module), ctx.runtime(), c.rankFor(module), plan.topK, (float) c.scalingFor(module),
                (float) c.loraDropout(), plan.balance, router, a, b);
    }

    private static Tensor require(Map<String, Tensor> saved, String module, String key) {
        Tensor t = saved.get(key);
        if (t == null) throw new IllegalArgumentException(module + ": MoLA tensor '" + key + "' missing (have " + saved.keySet() + ")");
        return t;
    }

    /** The parsed options and the model's layer count. */
    record Plan(String spec, int[] counts, int layers, int topK, float balance) {
        static Plan of(MethodContext ctx) {
            MethodConfig o = ctx.options();
            String spec = o.string("experts");
            String[] parts = spec.split(",");
            int[] counts = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                try { counts[i] = Integer.parseInt(parts[i].trim()); }
                catch (NumberFormatException e) { throw new IllegalArgumentException("mola: experts must be comma-separated integers, got '" + spec + "'"); }
                if (counts[i] < 1) throw new IllegalArgumentException("mola: every expert count must be >= 1, got '" + spec + "'");
            }
            int topK = o.integer("top_k");
            if (topK < 1) throw new IllegalArgumentException("mola: top_k must be >= 1, got " + topK);
            double balance = o.number("balance_weight");
            if (!(balance >= 0) || Double.isInfinite(balance)) throw new IllegalArgumentException("mola: balance_weight must be >= 0, got " + balance);
            int layers = 0;
            for (String name : ctx.model().linears().keySet()) layers = Math.max(layers, Routing.layerIndex(name) + 1);
            if (counts.length > 1 && counts.length > layers)
                throw new IllegalArgumentException("mola: experts lists " + counts.length + " layer groups (" + spec + ") but the model has "
                        + layers + " numbered layers");
            return new Plan(spec, counts, layers, topK, (float) balance);
        }

        /** The expert count of a module: its layer's group. */
        int expertsFor(String module) {
            if (counts.length == 1) return counts[0];
            int l = Routing.layerIndex(module);
            if (l < 0) throw new IllegalArgumentException("mola: module " + module + " has no layer index (layers.N.) to pick its expert count from experts=" + spec);
            return counts[(int) ((long) l * counts.length / layers)];
        }
    }
}
