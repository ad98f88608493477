package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * GS-LoRA (Group Sparse LoRA): plain LoRA whose modules are grouped, with a group-lasso penalty
 * {@code lambda · sum_g ||theta_g||_2} over the groups' LoRA parameters so that training keeps only the groups it
 * needs and sets the others exactly to zero. From "Continual Forgetting for Pre-trained Vision Models" (CVPR 2024,
 * arXiv 2403.11530) and its extension "Practical Continual Forgetting for Pre-trained Vision Models" (GS-LoRA++,
 * arXiv 2501.09705).
 *
 * <p>As in the paper and the authors' code (bjzhb666/GS-LoRA, {@code get_structure_loss}): one group is every LoRA
 * of one Transformer block (their FFN fc1 and fc2, A and B together), the group norm is the plain L2 norm over all of
 * the group's A and B entries, groups are not weighted by size, and A, B start as in LoRA (A random, B = 0). The paper
 * targets the FFN layers; pick them with the LoRA config's {@code target_modules} (e.g. {@code up_proj, gate_proj,
 * down_proj} on Llama, {@code fc1, fc2} on ViT). peft4j groups by whatever modules are targeted.
 *
 * <p>Choices where peft4j differs or the paper is silent:
 * <ul>
 *   <li>The paper adds {@code alpha · L_structure} to the loss and lets AdamW follow its subgradient, which only
 *   drives groups near zero. Here the penalty is applied as its proximal step after every optimizer update
 *   ({@link #afterStep}): the block soft threshold {@code theta_g <- max(0, 1 - lr·lambda / ||theta_g||) theta_g},
 *   so a group whose norm falls below {@code lr · lambda} becomes exactly zero (proximal gradient, the standard
 *   exact-zero method for the group lasso). The threshold uses the step's learning rate, not AdamW's per-parameter
 *   step, so {@code lambda} is on a different scale from the paper's loss weight; its default 0.1 is the authors'
 *   default {@code --alpha}.</li>
 *   <li>A block is the module name up to its first numeric path segment ({@code model.layers.3}); option
 *   {@code grouping=module} makes every targeted module its own group instead.</li>
 *   <li>The forgetting objective (GS-LoRA's {@code L_retain + beta · max(0, BND - L_forget)}, and GS-LoRA++'s
 *   prototype terms) is a training loss, not part of the adapter: {@link io.peft4j.unlearn.ForgettingObjective},
 *   given to the Trainer by {@code peft4j forget}. Its hyper-parameters are options of this method, so they are
 *   saved with the adapter ({@code beta}, {@code bnd}, {@code prototype}, {@code proto_*}); a plain
 *   {@code peft4j train --method gs-lora} has no data to forget and ignores them.</li>
 * </ul>
 * A group that reached zero may grow again if its gradient outweighs the threshold (as the proximal method allows).
 * A zeroed module (A and B exactly zero) contributes nothing and is left out of a plain-LoRA export. Trainable
 * parameters: LoRA's {@code r (in + out)} per module. Metrics: each group's norm, how many groups are non-zero.
 */
public final class GsLora implements AdapterMethod {
    @Override public String name() { return "gs-lora"; }

    @Override public String summary() { return "LoRA with a group-lasso proximal step over per-block LoRA groups: unneeded groups become exactly zero"; }

    @Override public String paper() { return "Continual Forgetting for Pre-trained Vision Models (arXiv 2403.11530); GS-LoRA++: arXiv 2501.09705 (forgetting objective and prototype losses: io.peft4j.unlearn)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("lambda", "0.1", "group-lasso strength: after each update a group shrinks by lr·lambda in norm, reaching exactly 0 below it"),
                new MethodOption("grouping", "block", "block (all LoRAs of one Transformer block form a group, as the paper) | module (one group per module)"),
                // the forgetting objective's (peft4j forget; io.peft4j.unlearn.ForgettingObjective)
                new MethodOption("beta", "0.2", "forgetting: weight of the bounded term max(0, bnd - CE(forget data))"),
                new MethodOption("bnd", "10", "forgetting: cross-entropy bound of the forgotten data; past it the term and its gradient are 0"),
                new MethodOption("prototype", "false", "forgetting: add GS-LoRA++'s prototype terms (GS-LoRA++; classification only)"),
                new MethodOption("proto_forget_weight", "0.01", "GS-LoRA++: weight of max(0, proto_bnd - D(feature, prototype)) on forgotten rows"),
                new MethodOption("proto_retain_weight", "0.01", "GS-LoRA++: weight of D(feature, prototype) on kept rows"),
                new MethodOption("proto_bnd", "18", "GS-LoRA++: bound of the forgotten rows' prototype distance"),
                new MethodOption("proto_distance", "kl", "GS-LoRA++: kl (KL(softmax(prototype) || softmax(feature))) | l2 (mean squared difference)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        groupKey("x", ctx.options().string("grouping"));      // validates the option before anything is built
        if (ctx.options().number("lambda") < 0) throw new IllegalArgumentException("method gs-lora: lambda must be >= 0");
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            int r = ctx.config().rankFor(e.getKey()), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = ctx.uniform(1 / Math.sqrt(in), r, in).requiresGrad(true);     // PEFT's Kaiming-uniform A
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            layers.put(e.getKey(), ctx.layer(e.getKey(), a, b, null, null));
        }
        return new Initialised(ctx.config(), layers);
    }

    /** The groups: key -> the A and B tensors of every layer in it, in module order. */
    static Map<String, List<Tensor>> groups(Map<String, LoraLayer> layers, String grouping) {
        Map<String, List<Tensor>> g = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            List<Tensor> members = g.computeIfAbsent(groupKey(e.getKey(), grouping), k -> new ArrayList<>());
            members.add(e.getValue().loraA());
            members.add(e.getValue().loraB());
        }
        return g;
    }

    static String groupKey(String module, String grouping) {
        return switch (grouping) {
            case "block" -> Proximal.block(module);
            case "module" -> module;
            default -> throw new IllegalArgumentException("method gs-lora: grouping must be block or module, got '" + grouping + "'");
        };
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        double t = lr * options.number("lambda");
        if (t <= 0) return;
        for (List<Tensor> group : groups(layers, options.string("grouping")).values()) Proximal.blockSoftThreshold(group, t);
    }

    @Override
    public Map<String, Double> report(Map<String, LoraLayer> layers, MethodConfig options) {
        Map<String, Double> out = new LinkedHashMap<>();
        int alive = 0, n = 0;
        for (Map.Entry<String, List<Tensor>> g : groups(layers, options.string("grouping")).entrySet()) {
            double norm = Proximal.norm(g.getValue());
            out.put("group_norm/" + g.getKey(), norm);
            n++;
            if (norm > 0) alive++;
        }
        out.put("groups", (double) n);
        out.put("groups_alive", (double) alive);
        return out;
    }
}
