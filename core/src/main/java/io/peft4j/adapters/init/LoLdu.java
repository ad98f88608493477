package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoLDU: {@code ΔW = σ · P^T L_r diag(z) U_r} from the pivoted LDU decomposition {@code P W = L diag(D) U} of the
 * pretrained weight: L_r = L[:, :r] (unit lower triangular, |entries| <= 1 by partial pivoting, rows moved back to W's
 * order) is the frozen B [out, r], U_r = U[:r, :] (unit upper triangular) the frozen A [r, in], z [r] a trainable
 * diagonal (the layer's {@code mid} vector) initialised to D[:r], and σ a trainable scalar (the layer's {@code gain})
 * initialised to {@code alpha / r}. The base is rewritten to {@code W - σ P^T L_r diag(z) U_r} so the model is
 * unchanged at step 0. From "LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for Parameter-Efficient
 * Fine-Tuning" (Shi et al., arXiv 2410.13618). Only the paper's abstract was available to us; the details follow the
 * authors' released code (github SKDDJ/LoLDU, {@code minloldu}: {@code torch.linalg.lu}, {@code lora_B = L[:, :r]},
 * {@code vector_z = D[:r]}, {@code lora_A = U[:r]}, {@code scaling_factor = alpha / r}, residual subtracted from W).
 *
 * <p>Trainable parameters per layer: {@code r + 1} (z and σ). The leading r factors come from r steps of partially
 * pivoted elimination (see {@link LowRankSketch#topLdu}), which equal the leading part of the full LU that the
 * authors compute, at O(r^2 (out + in)) instead of O(out · in · min(out, in)).
 *
 * <p>Options:
 * <ul>
 *   <li>{@code diag_init}: {@code lu} (default: z = D[:r]), or the released code's alternatives {@code zeros},
 *       {@code ones}, {@code constant} (mean of D[:r]), {@code uniform} (U(-|m|/2, |m|/2) with m the mean of
 *       D[:r], drawn from the adapter's seeded stream). The base is always rewritten with the adapter as
 *       initialised, so every variant is an identity at step 0 (the authors' code subtracts the {@code lu}
 *       product whatever z starts at; here a zero z leaves W untouched).</li>
 *   <li>{@code train_scale} (default true): whether σ trains. The released code collects only z for the
 *       optimiser (its σ is a parameter left out of the optimiser); METHODS.md's row trains "D and a scale".
 *       With false, r parameters per layer.</li>
 * </ul>
 * The adapter's config is returned with {@code alpha = r} (and rsLoRA off) so LoRA's fixed scaling is 1 and σ carries
 * the scale alone.
 */
public final class LoLdu implements AdapterMethod {
    @Override public String name() { return "loldu"; }

    @Override public String summary() { return "pivoted LDU of W: frozen L_r and U_r, trainable diagonal z (init D_r) and scale σ; base rewritten"; }

    @Override public String paper() { return "LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for Parameter-Efficient Fine-Tuning (arXiv 2410.13618)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("diag_init", "lu", "lu (z = D[:r]) | zeros | ones | constant (mean of D[:r]) | uniform (U(-|mean|/2, |mean|/2))"),
                new MethodOption("train_scale", "true", "train the scalar scale σ (initialised to alpha / r) as well as z"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        String diagInit = o.string("diag_init");
        if (!List.of("lu", "zeros", "ones", "constant", "uniform").contains(diagInit))
            throw new IllegalArgumentException("method loldu: option diag_init must be lu, zeros, ones, constant or uniform, got '" + diagInit + "'");
        boolean trainScale = o.flag("train_scale");
        LoraConfig c = ctx.config();
        LoraConfig unit = unitScaling(c, ctx.targets().keySet());

        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int r = c.rankFor(module), in = lin.inFeatures(), out = lin.outFeatures();
            LowRankSketch.TopLdu ldu = LowRankSketch.topLdu(lin.weight(), r);
            Tensor b = LowRankSketch.tensor(ldu.l(), 1, out, r);     // frozen
            Tensor a = LowRankSketch.tensor(ldu.u(), 1, r, in);      // frozen
            Tensor z = Tensor.of(diagonal(ldu.d(), diagInit, ctx), r).requiresGrad(true);
            Tensor gain = Tensor.of(new float[] {(float) c.scalingFor(module)}, 1).requiresGrad(trainScale);
            LoraLayer layer = ctx.layer(unit, module, a, b, z, gain);
            Tensor b0 = layer.effectiveB();                           // [out, r] = σ B diag(z); the scaling is 1
            boolean zero = true;
            for (float v : b0.data()) if (v != 0) { zero = false; break; }
            if (!zero) ctx.rewriteBase(module, a, b0);
            layers.put(module, layer);
        }
        if (ctx.log() != null)
            ctx.log().printf("loldu: %d layers initialised from a pivoted LDU of W (z init %s, scale %s)%n", layers.size(), diagInit,
                    trainScale ? "trained" : "frozen");
        return new Initialised(unit, layers);
    }

    private static float[] diagonal(double[] d, String init, MethodContext ctx) {
        int r = d.length;
        float[] z = new float[r];
        double mean = 0;
        for (double v : d) mean += v / r;
        for (int j = 0; j < r; j++) {
            z[j] = switch (init) {
                case "lu" -> (float) d[j];
                case "zeros" -> 0f;
                case "ones" -> 1f;
                case "constant" -> (float) mean;
                default -> (float) ((ctx.rng().nextDouble() - 0.5) * Math.abs(mean));
            };
        }
        return z;
    }

    /** {@code c} with LoRA's fixed scaling 1 on every module: alpha = r, alpha_pattern = rank_pattern where ranks differ. */
    static LoraConfig unitScaling(LoraConfig c, Iterable<String> modules) {
        LoraConfig.Builder b = c.toBuilder().clearRankPattern().alpha(c.r()).rslora(false);
        c.rankPattern().forEach(b::rankPattern);
        for (String m : modules) if (c.rankFor(m) != c.r()) b.alphaPattern(m, c.rankFor(m));
        return b.build();
    }
}
