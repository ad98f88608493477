package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoRA-GA, from "LoRA-GA: Low-Rank Adaptation with Gradient Approximation" (Wang, Yu, Li; arXiv 2407.05000): plain
 * LoRA whose A and B start from the singular vectors of the full-fine-tuning gradient, so that the first update of
 * the adapter product points where full fine-tuning would go.
 *
 * <p>For each target, {@code G = mean dL/dW} [out, in] over {@code batches} calibration batches, {@code G = U S V^T}.
 * With the paper's (and the authors' default) direction "ArB2r": {@code A0 = c · V[:, 0:r]^T} [r, in] and
 * {@code B0 = c · U[:, r:2r]} [out, r]. One SGD step of rate eta on A and B then changes the adapter by
 * <pre>  Δ(s B A) = -eta s^2 (G A0^T A0 + B0 B0^T G) + O(eta^2) = -eta s^2 c^2 G_2r,</pre>
 * where {@code G_2r = U_2r S_2r V_2r^T} is the best rank-2r approximation of G (Theorem 3.1 of the paper): the LoRA
 * product moves along the most important part of the full gradient instead of a random projection of it.
 * "A2rBr" swaps the two blocks (same product); "ArBr" interleaves them (B takes even, A odd indices).
 *
 * <p>The scale c ({@code scale}): "stable" (default) {@code c = out^{1/4} / sqrt(gamma)}, the paper's scale-stable
 * choice (section 3.3; {@code gamma = stable_gamma}, 16 by default as in the authors' code and PEFT); "gd_scale"
 * {@code c = 1 / s}, so that the first step equals SGD on the rank-2r part of the gradient exactly; "unit" c = 1;
 * "weight_svd" {@code c = mean_{j<r} sqrt(sigma_j(W) / s)}. The scaling s is the config's alpha / r (or rsLoRA's).
 *
 * <p>The model is unchanged at step 0: W is rewritten to {@code W - s B0 A0} ({@link MethodContext#rewriteBase}); the
 * offset is saved with the adapter and folded into an exported plain LoRA.
 *
 * <p>Choices where the paper is silent: the gradient's SVD is exact up to a smaller side of 512 (the authors always
 * use {@code torch.svd_lowrank(q=4r, niter=4)}), randomized above; when {@code 2r > min(out, in)} there are not
 * 2r singular directions, so the second block is shifted to the last r directions (it overlaps the first) and the
 * layer is reported in the log; "ArBr" needs {@code 2r <= min(out, in)}. The authors' optional {@code norm_clip}
 * (shrinking the offset below W's largest entry) is not offered.
 */
public final class LoraGa implements AdapterMethod {
    @Override public String name() { return "lora-ga"; }

    @Override public String summary() { return "A, B from the SVD of the full-weight gradient over calibration batches; W offset so step 0 is unchanged"; }

    @Override public String paper() { return "LoRA-GA: Low-Rank Adaptation with Gradient Approximation (arXiv 2407.05000)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("batches", "64", "calibration batches averaged into the gradient (the authors: 64 batches of 2 samples)"),
                new MethodOption("direction", "ArB2r", "which singular vectors go where: ArB2r (A = V[:, :r]^T, B = U[:, r:2r]), A2rBr, or ArBr (interleaved)"),
                new MethodOption("scale", "stable", "factor scale: stable (out^(1/4)/sqrt(gamma)), gd_scale (1/s), unit, weight_svd"),
                new MethodOption("stable_gamma", "16", "gamma of the stable scale"),
                new MethodOption("svd_niter", "4", "power iterations of the randomized SVD used when a layer's smaller side exceeds 512"));
    }

    @Override public boolean needsCalibration() { return true; }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        String direction = GradientInit.choice(o, "direction", "ArB2r", "A2rBr", "ArBr");
        String scale = GradientInit.choice(o, "scale", "stable", "gd_scale", "unit", "weight_svd");
        double gamma = o.number("stable_gamma");
        if (!(gamma > 0)) throw new IllegalArgumentException("method lora-ga: option stable_gamma must be positive, got " + gamma);
        int niter = o.integer("svd_niter");
        if (niter < 0) throw new IllegalArgumentException("method lora-ga: option svd_niter must be >= 0, got " + niter);
        LoraConfig cfg = ctx.config();
        // validate every layer before the (costly) calibration passes
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet())
            indices(direction, cfg.rankFor(e.getKey()), e.getValue(), e.getKey());

        Map<String, Tensor> grads = GradientInit.gradients(ctx, o.integer("batches"));
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int out = lin.outFeatures(), in = lin.inFeatures(), r = cfg.rankFor(module);
            double s = cfg.scalingFor(module);
            int[][] idx = indices(direction, r, lin, module);             // {A's, B's}
            int need = 1 + Math.max(max(idx[0]), max(idx[1]));
            double[] g = GradientInit.toDouble(grads.remove(module));     // [out, in]; the F32 copy can go
            Svd.Result svd = GradientInit.leading(g, out, in, need, niter, module);
            double c = switch (scale) {
                case "stable" -> Math.pow(out, 0.25) / Math.sqrt(gamma);
                case "gd_scale" -> 1 / s;
                case "unit" -> 1;
                default -> weightSvdScale(lin, r, s, niter, module);
            };
            Tensor a = GradientInit.rowsOfVt(svd, idx[0], c).requiresGrad(true);     // [r, in]
            Tensor b = GradientInit.columnsOfU(svd, idx[1], c).requiresGrad(true);   // [out, r]
            LoraLayer layer = ctx.layer(module, a, b, null, null);
            Tensor b0 = b.copyToF32();                                    // [out, r] = s · B0
            float[] bd = b0.data();
            for (int i = 0; i < bd.length; i++) bd[i] *= (float) s;
            ctx.rewriteBase(module, a, b0);
            layers.put(module, layer);
            if (ctx.log() != null) {
                double total = Dense.frobenius(g), kept = 0;
                for (int j = 0; j < need; j++) kept += svd.s()[j] * svd.s()[j];
                GradientInit.log(ctx, "lora-ga %s: |G| %.3g, top-%d singular directions hold %.1f%% of |G|^2%s", module, total, need,
                        total > 0 ? 100 * kept / (total * total) : 0.0, need < 2 * r ? " (2r exceeds the layer: blocks overlap)" : "");
            }
        }
        return new Initialised(cfg, layers);
    }

    /**
     * Singular-vector indices {A's [r], B's [r]} for a direction. Block directions shift their second block to the
     * last r directions when {@code 2r > min(out, in)}.
     */
    static int[][] indices(String direction, int r, Linear lin, String module) {
        int k = Math.min(lin.outFeatures(), lin.inFeatures());
        if (r > k) throw new IllegalArgumentException("lora-ga: rank r=" + r + " is larger than layer " + module + " allows (in "
                + lin.inFeatures() + ", out " + lin.outFeatures() + ")");
        int second = Math.min(r, k - r);
        return switch (direction) {
            case "ArB2r" -> new int[][] {GradientInit.range(0, r), GradientInit.range(second, r)};
            case "A2rBr" -> new int[][] {GradientInit.range(second, r), GradientInit.range(0, r)};
            default -> {
                if (2 * r > k) throw new IllegalArgumentException("lora-ga: direction ArBr needs 2r <= min(out, in), but layer " + module
                        + " is [" + lin.outFeatures() + ", " + lin.inFeatures() + "] with r=" + r + " (use direction ArB2r)");
                int[] a = new int[r], b = new int[r];
                for (int j = 0; j < r; j++) { b[j] = 2 * j; a[j] = 2 * j + 1; }
                yield new int[][] {a, b};
            }
        };
    }

    /** The authors' "weightS" scale: the mean of sqrt(sigma_j(W) / s) over W's top r singular values. */
    private static double weightSvdScale(Linear lin, int r, double s, int niter, String module) {
        Tensor w = lin.weight();
        double[] sv = GradientInit.leading(Dense.fromTensor(w), w.dim(0), w.dim(1), r, niter, module).s();
        double sum = 0;
        for (int j = 0; j < r; j++) sum += Math.sqrt(sv[j] / s);
        return sum / r;
    }

    private static int max(int[] a) {
        int m = a[0];
        for (int v : a) m = Math.max(m, v);
        return m;
    }
}
