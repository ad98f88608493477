package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.AdapterRuntime;
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
 * MM-LoRA, the multimodal LoRA of Arcana: "Improving Multi-modal Large Language Model through Boosting Vision
 * Capabilities" (Sun, Zhang et al., arXiv 2410.13733). The decoder's linear layers get two parallel LoRAs, one for the
 * language tokens and one for the visual tokens, each with its own parameters; a token goes through its modality's
 * LoRA only:
 * <pre>
 *   y_t = W x_t + b + (alpha / r_m) · B_m A_m dropout(x_t),   m = modality of token t (0 = language, 1 = vision)
 * </pre>
 * The modality of every token comes from the data: a TEXT row given as {@code "segments": [{"text": ..., "modality":
 * 0 | 1 | "text" | "image"}, ...]} (see {@code DataLoader}) gives each token its segment's modality; batches carry the
 * tags ({@code Batch.tags()}) and the Trainer / Evaluator hand them to the layers through
 * {@link AdapterRuntime#tokenTags(int[])} before each forward. Without tags every token is modality 0.
 *
 * <p>Options: {@code modalities} (default 2: language and vision, as the paper; more give more parallel LoRAs) and
 * {@code ranks} (comma-separated rank per modality; default empty = the config's r for each). Where the paper (whose
 * method section the stored text did not include) is silent or was not readable: each LoRA is initialised as PEFT's
 * LoRA (A Kaiming-uniform, B zero: identity at init) with its own scaling alpha / r_m (alpha / √r_m with rsLoRA) and
 * the config's dropout; padding tokens count as modality 0. Trainable parameters per module:
 * {@code Σ_m r_m (in + out)}. Not mergeable as a whole (each modality has its own update; {@link MmLoraLayer#deltaWeight(int)}
 * gives one modality's), no plain-LoRA form: merge and export refuse.
 */
public final class MmLora implements AdapterMethod {
    @Override public String name() { return "mm-lora"; }

    @Override public String summary() { return "two parallel LoRAs per layer, one per modality, chosen per token by the data's modality mask"; }

    @Override public String paper() { return "Improving Multi-modal Large Language Model through Boosting Vision Capabilities (Arcana, Sun et al., arXiv 2410.13733)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("modalities", "2", "parallel LoRAs per layer, one per modality tag (0 = language, 1 = vision)"),
                new MethodOption("ranks", "", "rank of each modality's LoRA, comma-separated (empty = the config's r for each)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            int total = 0;
            for (int r : ranks(ctx, module)) total += r;
            // one Kaiming-uniform draw for the stacked A is the same as one per modality: rows are independent
            Tensor a = ctx.uniform(1 / Math.sqrt(in), total, in).requiresGrad(true).name(module + "." + MmLoraLayer.A);
            Tensor b = Tensor.zeros(out, total).requiresGrad(true).name(module + "." + MmLoraLayer.B);
            layers.put(module, layer(ctx, module, a, b));
        }
        return new Initialised(ctx.config(), Map.of(), layers);
    }

    @Override
    public AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, Tensor> saved) {
        Tensor a = saved.get(MmLoraLayer.A), b = saved.get(MmLoraLayer.B);
        if (a == null || b == null)
            throw new IllegalArgumentException(module + ": MM-LoRA needs tensors " + MmLoraLayer.A + " and " + MmLoraLayer.B + " (have " + saved.keySet() + ")");
        return layer(ctx, module, a.requiresGrad(true), b.requiresGrad(true));
    }

    private static MmLoraLayer layer(MethodContext ctx, String module, Tensor a, Tensor b) {
        LoraConfig c = ctx.config();
        int[] ranks = ranks(ctx, module);
        float[] scalings = new float[ranks.length];
        for (int m = 0; m < ranks.length; m++)
            scalings[m] = (float) (c.useRslora() ? c.alphaFor(module) / Math.sqrt(ranks[m]) : c.alphaFor(module) / ranks[m]);
        return new MmLoraLayer(ctx.targets().get(module), ctx.runtime(), ranks, scalings, (float) c.loraDropout(), a, b);
    }

    /** The rank of each modality's LoRA on a module. */
    static int[] ranks(MethodContext ctx, String module) {
        MethodConfig o = ctx.options();
        int m = o.integer("modalities");
        if (m < 1) throw new IllegalArgumentException("mm-lora: modalities must be >= 1, got " + m);
        int[] ranks = new int[m];
        String spec = o.string("ranks").trim();
        if (spec.isEmpty()) {
            java.util.Arrays.fill(ranks, ctx.config().rankFor(module));
            return ranks;
        }
        String[] parts = spec.split(",");
        if (parts.length != m) throw new IllegalArgumentException("mm-lora: ranks '" + spec + "' gives " + parts.length + " ranks for " + m + " modalities");
        for (int i = 0; i < m; i++) {
            try { ranks[i] = Integer.parseInt(parts[i].trim()); }
            catch (NumberFormatException e) { throw new IllegalArgumentException("mm-lora: ranks must be comma-separated integers, got '" + spec + "'"); }
            if (ranks[i] < 1) throw new IllegalArgumentException("mm-lora: every rank must be >= 1, got '" + spec + "'");
        }
        return ranks;
    }
}
