package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * FFA-LoRA (Federated Freeze-A LoRA): LoRA whose randomly initialised, non-zero A is frozen, so only the
 * zero-initialised B trains: {@code y = W x + (alpha / r) B A x}. From "Improving LoRA in Privacy-preserving Federated
 * Learning" (Sun, Li, Li, Ding; ICLR 2024, arXiv 2403.12313). With A fixed the update {@code (alpha/r) B A} is linear in
 * the trained parameters, so federated averaging of B is exact and DP-SGD noise is not amplified through a product of
 * two noisy factors; the trainable (and communicated) parameters are {@code r · out} per layer, half of LoRA's
 * {@code r · (in + out)} on a square layer.
 *
 * <p>Scaling: the paper shows that with A frozen, alpha only rescales B's effective learning rate, and that FFA-LoRA
 * is insensitive to it; the LoRA config's alpha / r (or rsLoRA's alpha / sqrt r) is therefore used unchanged.
 *
 * <p>Options: {@code a_init} — {@code kaiming} (default: PEFT's default A, U(-1/sqrt in, 1/sqrt in), as the
 * paper's PEFT-based experiments use) or {@code gaussian} (N(0, 1/r^2), PEFT's gaussian init).
 */
public final class FfaLora implements AdapterMethod {
    @Override public String name() { return "ffa-lora"; }

    @Override public String summary() { return "LoRA with A random and frozen, only B (zero at init) trained: r·out trainables per layer"; }

    @Override public String paper() { return "Improving LoRA in Privacy-preserving Federated Learning (arXiv 2403.12313)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(new MethodOption("a_init", "kaiming", "frozen A: kaiming (PEFT's default U(-1/sqrt in, 1/sqrt in)) | gaussian (N(0, 1/r^2))"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        String init = ctx.options().string("a_init");
        LoraConfig c = ctx.config();
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = c.rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = Factors.loraA(ctx, init, r, in);                  // frozen: requiresGrad stays false
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            layers.put(module, ctx.layer(module, a, b, null, null));
        }
        return new Initialised(c, layers);
    }
}
