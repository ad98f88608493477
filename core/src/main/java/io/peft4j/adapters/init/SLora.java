package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SLoRA (Structured LoRA): {@code ΔW = s · B M A} with a small trainable r x r matrix M between LoRA's factors, all
 * three trained. From "NLoRA: Nyström-Initiated Low-Rank Adaptation for Large Language Models" (Guo, Chang, Wu;
 * arXiv 2502.14482, EMNLP Findings 2025), section on SLoRA.
 *
 * <p>Initialisation as the authors' released code does it ({@code slora_init}): A [r, in] and M [r, r] Kaiming-uniform
 * with a = sqrt 5 (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in for A and r for M), B [out, r] zero, so the model is
 * unchanged at step 0 and no base weight is rewritten. The scaling is LoRA's {@code alpha / r}.
 * Trainable parameters per layer: {@code r (in + out) + r^2}.
 */
public final class SLora implements AdapterMethod {
    @Override public String name() { return "slora"; }

    @Override public String summary() { return "LoRA with a trainable r x r middle matrix: B M A (Kaiming A and M, zero B)"; }

    @Override public String paper() { return "NLoRA: Nyström-Initiated Low-Rank Adaptation for Large Language Models (arXiv 2502.14482), SLoRA"; }

    @Override public List<MethodOption> options() { return List.of(); }

    @Override
    public Initialised initialise(MethodContext ctx) {
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = ctx.config().rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = ctx.uniform(1 / Math.sqrt(in), r, in).requiresGrad(true);
            Tensor mid = ctx.uniform(1 / Math.sqrt(r), r, r).requiresGrad(true);
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            layers.put(module, ctx.layer(module, a, b, mid, null));
        }
        return new Initialised(ctx.config(), layers);
    }
}
