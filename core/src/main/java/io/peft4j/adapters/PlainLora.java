package io.peft4j.adapters;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** LoRA itself (Hu et al.) with PEFT's inits (config {@code init_lora_weights}), rsLoRA and DoRA. */
final class PlainLora implements AdapterMethod {
    @Override public String name() { return "lora"; }
    @Override public String summary() { return "W x + (alpha/r) B A x; PEFT inits (true, gaussian, pissa, olora), rsLoRA, DoRA"; }
    @Override public String paper() { return "LoRA: Low-Rank Adaptation of Large Language Models (arXiv 2106.09685)"; }
    @Override public List<MethodOption> options() { return List.of(); }

    @Override
    public Initialised initialise(MethodContext ctx) {
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        ctx.targets().forEach((name, lin) -> layers.put(name, LoraInit.create(ctx.adapter(), name, lin, ctx.config(), ctx.runtime(), ctx.rng())));
        return new Initialised(ctx.config(), layers);
    }
}
