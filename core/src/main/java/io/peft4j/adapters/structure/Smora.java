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
 * SMoRA, "Each Rank Could be an Expert: Single-Ranked Mixture of Experts LoRA for Multi-Task Learning" (Zhao, Zhou
 * et al., arXiv 2501.15103; code github.com/StyxXuan/smora, PEFT tuner "srmole"). One LoRA of rank r whose every rank
 * is an expert; a router activates k ranks per token:
 * <pre>
 *   y = W x + b + (alpha / k) · B (G(x) ⊙ A x_d),   x_d = dropout(x)
 *   t = σ(W_g x_d) + bias,   G_i = k · t_i / Σ_{j ∈ top-k(t)} t_j  for i in the top-k of t,  0 otherwise
 * </pre>
 * W_g [r, in] is the trained router (bias-free, Kaiming-uniform), A Kaiming-uniform, B zero (identity at init). What
 * is taken from the authors' code where the paper's summary formula (a softmax over the top-k) differs: sigmoid
 * scores, the balancing bias added before the top-k and kept in the gate values, the gates normalised to sum to k,
 * the scaling alpha / k (alpha / √k with rsLoRA), the router fed the dropped-out input.
 *
 * <p>Load balancing is the paper's auxiliary-loss-free rule (DeepSeek-V3's): a non-trainable bias per rank, updated in
 * every training forward by {@code bias_i += u · sign(mean_j c_j - c_i)} (c = activations per rank in that forward,
 * padding positions included as in the authors' code), saved with the adapter and restored with checkpoints.
 * Option {@code balance_weight} adds, on request, a Switch/DeepSeek-style auxiliary loss
 * {@code weight · r · Σ_i f_i P_i} (f_i = c_i / (N k), P_i = the mean normalised score σ_i / Σ_j σ_j) through
 * {@link AdapterLayer#auxiliaryLoss()}; it is not part of the paper (0 = off by default).
 *
 * <p>Options: {@code top_k} (default 8, the paper's 8 active ranks, meant with r = 64; must be at most r),
 * {@code bias_update_rate} (default 1e-5, the authors' u), {@code balance_weight} (default 0). Trainable parameters per
 * module: {@code r · (2 in + out)}; the bias (r values) is saved but not trained. Not mergeable, no plain-LoRA form.
 */
public final class Smora implements AdapterMethod {
    @Override public String name() { return "smora"; }

    @Override public String summary() { return "every rank of one LoRA is an expert; a router activates the top-k ranks per token"; }

    @Override public String paper() { return "Each Rank Could be an Expert: Single-Ranked Mixture of Experts LoRA for Multi-Task Learning (Zhao et al., arXiv 2501.15103)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("top_k", "8", "ranks active per token (the paper: 8 of r = 64); at most r"),
                new MethodOption("bias_update_rate", "1e-5", "step u of the loss-free balancing bias (0 = frozen bias)"),
                new MethodOption("balance_weight", "0", "weight of an optional Switch-style balancing loss (not in the paper; 0 = off)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int in = e.getValue().inFeatures(), out = e.getValue().outFeatures(), r = ctx.config().rankFor(module);
            Tensor router = ctx.uniform(1 / Math.sqrt(in), r, in).requiresGrad(true).name(module + "." + SmoraLayer.ROUTER);
            Tensor a = ctx.uniform(1 / Math.sqrt(in), r, in).requiresGrad(true).name(module + "." + SmoraLayer.A);
            Tensor b = Tensor.zeros(out, r).requiresGrad(true).name(module + "." + SmoraLayer.B);
            Tensor bias = Tensor.zeros(r).name(module + "." + SmoraLayer.BIAS);
            layers.put(module, layer(ctx, module, router, a, b, bias));
        }
        return new Initialised(ctx.config(), Map.of(), layers);
    }

    @Override
    public AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, Tensor> saved) {
        Tensor router = require(saved, module, SmoraLayer.ROUTER), a = require(saved, module, SmoraLayer.A);
        Tensor b = require(saved, module, SmoraLayer.B), bias = require(saved, module, SmoraLayer.BIAS);
        if (a.dim(0) != ctx.config().rankFor(module))
            throw new IllegalArgumentException(module + ": saved SMoRA rank " + a.dim(0) + " but the config gives rank " + ctx.config().rankFor(module));
        return layer(ctx, module, router.requiresGrad(true), a.requiresGrad(true), b.requiresGrad(true), bias.reshape(Math.toIntExact(bias.numel())));
    }

    private static SmoraLayer layer(MethodContext ctx, String module, Tensor router, Tensor a, Tensor b, Tensor bias) {
        MethodConfig o = ctx.options();
        LoraConfig c = ctx.config();
        int k = o.integer("top_k");
        double u = o.number("bias_update_rate"), w = o.number("balance_weight");
        if (!(u >= 0) || Double.isInfinite(u)) throw new IllegalArgumentException("smora: bias_update_rate must be >= 0, got " + u);
        if (!(w >= 0) || Double.isInfinite(w)) throw new IllegalArgumentException("smora: balance_weight must be >= 0, got " + w);
        double alpha = c.alphaFor(module);
        float scaling = (float) (c.useRslora() ? alpha / Math.sqrt(k) : alpha / k);
        return new SmoraLayer(ctx.targets().get(module), ctx.runtime(), k, scaling, (float) c.loraDropout(), (float) u, (float) w,
                router, a, b, bias);
    }

    private static Tensor require(Map<String, Tensor> saved, String module, String key) {
        Tensor t = saved.get(key);
        if (t == null) throw new IllegalArgumentException(module + ": SMoRA tensor '" + key + "' missing (have " + saved.keySet() + ")");
        return t;
    }
}
