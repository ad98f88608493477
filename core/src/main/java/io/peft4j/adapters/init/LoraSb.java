package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoRA-SB, from "Initialization using Update Approximation is a Silver Bullet for Extremely Efficient Low-Rank
 * Fine-Tuning" (Ponkshe, Singhal, Gorbunov, Tumanov, Horvath, Vepakomma; arXiv 2411.19557): the LoRA-XS form
 * {@code W x + s · B R A x} with B [out, r] and A [r, in] frozen and only the r x r core R trained (r^2 parameters
 * per layer), started from the first full-fine-tuning update.
 *
 * <p>For each target, the first update of full fine-tuning is estimated from the mean gradient G over
 * {@code batches} calibration batches: {@code ΔW = -lr · sign(G)} for Adam (its first step, "adam", the default and
 * what the authors' code does) or {@code ΔW = -lr · G} for SGD ("sgd"). With {@code ΔW ≈ U_r S_r V_r^T} its
 * truncated SVD: {@code B = U_r}, {@code A = V_r^T}, {@code R = S_r / s}, so {@code s B R A} is the best rank-r
 * approximation of ΔW (Eckart-Young). Because B and A are orthonormal, a step on R moves W by
 * {@code -eta s^2 B B^T G A^T A}: the full gradient projected onto the initial subspaces, whatever the scale, so the
 * method has no scaling hyper-parameter: the returned config sets alpha = r (s = 1), as the authors' scripts do.
 *
 * <p>The base is NOT rewritten by default, as in the authors' code: at step 0 the model is
 * {@code W + (ΔW)_r}, i.e. it already carries the (rank-r) simulated first step. {@code rewrite_base=true} subtracts
 * {@code B R A} from W instead, so the outputs are unchanged at step 0 (a peft4j option, not in the paper).
 *
 * <p>Choices where the paper is silent: the step size {@code lr} of the simulated update (the authors' scripts use
 * the training learning rate divided by the warm-up steps, i.e. the rate of the first warm-up step; 1e-5 here); the
 * SVD is exact up to a smaller side of 512 and randomized above (the authors use {@code torch.svd_lowrank} with
 * 10 power iterations); sign(0) = 0.
 */
public final class LoraSb implements AdapterMethod {
    @Override public String name() { return "lora-sb"; }

    @Override public String summary() { return "B R A with B, A frozen and r x r R trained, from the SVD of the estimated first full-FT update; s = 1"; }

    @Override public String paper() { return "Initialization using Update Approximation is a Silver Bullet for Extremely Efficient Low-Rank Fine-Tuning (arXiv 2411.19557)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("batches", "16", "calibration batches averaged into the gradient (the authors: 50-170 samples)"),
                new MethodOption("update", "adam", "the estimated first update: adam (-lr sign(G)) or sgd (-lr G)"),
                new MethodOption("lr", "1e-5", "step size of the estimated first update (the authors: training lr / warm-up steps)"),
                new MethodOption("rewrite_base", "false", "subtract B R A from W so the model is unchanged at step 0 (not in the paper)"),
                new MethodOption("svd_niter", "10", "power iterations of the randomized SVD used when a layer's smaller side exceeds 512"));
    }

    @Override public boolean needsCalibration() { return true; }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        boolean adam = GradientInit.choice(o, "update", "adam", "sgd").equals("adam");
        double lr = o.number("lr");
        if (!(lr > 0)) throw new IllegalArgumentException("method lora-sb: option lr must be positive, got " + lr);
        boolean rewrite = o.flag("rewrite_base");
        int niter = o.integer("svd_niter");
        if (niter < 0) throw new IllegalArgumentException("method lora-sb: option svd_niter must be >= 0, got " + niter);
        LoraConfig cfg = GradientInit.unitScaling(ctx.config());
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            int r = cfg.rankFor(e.getKey()), k = Math.min(e.getValue().inFeatures(), e.getValue().outFeatures());
            if (r > k) throw new IllegalArgumentException("lora-sb: rank r=" + r + " is larger than layer " + e.getKey() + " allows (in "
                    + e.getValue().inFeatures() + ", out " + e.getValue().outFeatures() + ")");
        }
        if (ctx.config().loraAlpha() != ctx.config().r() || ctx.config().useRslora())
            GradientInit.log(ctx, "lora-sb has no scaling hyper-parameter: lora_alpha %s%s is replaced by alpha = r (s = 1)",
                    ctx.config().loraAlpha(), ctx.config().useRslora() ? " with rsLoRA" : "");

        Map<String, Tensor> grads = GradientInit.gradients(ctx, o.integer("batches"));
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int out = lin.outFeatures(), in = lin.inFeatures(), r = cfg.rankFor(module);
            double s = cfg.scalingFor(module);
            double[] dw = estimatedUpdate(GradientInit.toDouble(grads.remove(module)), adam, lr);   // [out, in]
            Svd.Result svd = GradientInit.leading(dw, out, in, r, niter, module);
            int[] top = GradientInit.range(0, r);
            Tensor b = GradientInit.columnsOfU(svd, top, 1);               // [out, r], frozen
            Tensor a = GradientInit.rowsOfVt(svd, top, 1);                 // [r, in], frozen
            float[] rd = new float[r * r];                                // [r, r] = S_r / s
            for (int j = 0; j < r; j++) rd[j * r + j] = (float) (svd.s()[j] / s);
            Tensor mid = Tensor.of(rd, r, r).requiresGrad(true);
            LoraLayer layer = ctx.layer(cfg, module, a, b, mid, null);
            if (rewrite) {
                Tensor b0 = layer.effectiveB();                           // [out, r] = B R
                float[] bd = b0.data();
                for (int i = 0; i < bd.length; i++) bd[i] *= (float) s;
                ctx.rewriteBase(module, a, b0);
            }
            layers.put(module, layer);
            if (ctx.log() != null) {
                double total = 0, kept = 0;
                for (double v : dw) total += v * v;
                for (int j = 0; j < r; j++) kept += svd.s()[j] * svd.s()[j];
                GradientInit.log(ctx, "lora-sb %s: rank-%d part holds %.1f%% of |ΔW|^2", module, r, total > 0 ? 100 * kept / total : 0.0);
            }
        }
        return new Initialised(cfg, layers);
    }

    /**
     * The estimated first full-fine-tuning update [out, in], written over the gradient {@code g} (returned):
     * {@code -lr sign(G)} (Adam) or {@code -lr G} (SGD).
     */
    static double[] estimatedUpdate(double[] g, boolean adam, double lr) {
        for (int i = 0; i < g.length; i++) g[i] = adam ? -lr * Math.signum(g[i]) : -lr * g[i];
        return g;
    }
}
