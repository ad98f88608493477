package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LaMDA: "LaMDA: Large Model Fine-Tuning via Spectrally Decomposed Low-Dimensional Adaptation" (Azizi, Kundu,
 * Pedram; EMNLP Findings 2024), arXiv:2406.12832; authors' code github.com/ArminAzizi98/LaMDA.
 *
 * <p>The update is {@code s · B S A}: the first projection A (PMA) [r, in] is frozen throughout, a low-dimensional
 * adapter S [r, r] trains throughout, and the second projection B (PMB) [out, r] trains at first and is frozen rank by
 * rank during the first {@code freeze_steps} optimizer steps, after which only S trains. Per layer and step the
 * trainable count is therefore {@code r^2 + out · (r - f(step))} with {@code f(step) = floor(step · r / freeze_steps)}
 * (f = r from {@code freeze_steps} on), i.e. r^2 per layer once the freezing is over.
 *
 * <p>Initialisation from W's spectrum, {@code W [out, in] = U diag(σ) V^T}: {@code A = V_r^T}, {@code B = U_r} (the top r
 * singular directions) and {@code S = diag(σ_1..σ_r) / s}, with the base rewritten to the residual
 * {@code W - U_r Σ_r V_r^T} so the model is unchanged at step 0 ({@code s_init=zero} instead starts S at zero and
 * leaves W alone).
 *
 * <p>Choices where the paper (as reachable here: its abstract and figure caption, and the authors' code) is silent:
 * <ul>
 *   <li>the schedule: the paper freezes PMB "gradually, based on the singular values" and completely after t_i
 *       iterations; the authors' trainer zeroes the gradient of B's first t columns (the largest singular directions
 *       under an SVD ordering) and sets requires_grad=False once all are frozen. We freeze one column after another at
 *       equal intervals so that all r are frozen at step {@code freeze_steps} (the authors' formula
 *       {@code t = iter / (0.3 · max_steps)} freezes only a handful of columns in a whole run), largest singular
 *       directions first by default ({@code freeze_order});</li>
 *   <li>S starts at the singular values with a residual base (as PiSSA); the released code instead starts from PEFT's
 *       default LoRA init and a random S;</li>
 *   <li>while B is partly frozen, a frozen column takes no gradient and is put back after every optimizer update, so
 *       AdamW's momentum cannot carry it further (the authors' PyTorch code only zeroes its gradient); from
 *       {@code freeze_steps} on B is frozen whole and the optimizer skips it;</li>
 *   <li>a B already frozen whole (a reloaded finished adapter) is not unfrozen when training restarts at step 0.</li>
 * </ul>
 * The scaling is the config's {@code alpha / r} (the paper's α); it only changes the step size of S.
 */
public final class Lamda implements AdapterMethod {
    @Override public String name() { return "lamda"; }

    @Override
    public String summary() {
        return "LaMDA: A (frozen) and B from W's top singular vectors, a trainable r x r S; B freezes rank by rank over freeze_steps";
    }

    @Override
    public String paper() {
        return "LaMDA: Large Model Fine-Tuning via Spectrally Decomposed Low-Dimensional Adaptation (Azizi et al., EMNLP Findings 2024), arXiv:2406.12832";
    }

    @Override public List<MethodOption> options() { return LamdaSupport.commonOptions(); }

    @Override
    public Initialised initialise(MethodContext ctx) {
        int niter = ctx.options().integer(LamdaSupport.SVD_NITER);
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        int done = 0;
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = ctx.config().rankFor(module);
            LamdaSupport.checkFits(module, e.getValue(), r);
            Svd.Result svd = LamdaSupport.topSvd(module, e.getValue(), r, niter);
            layers.put(module, LamdaSupport.build(ctx, ctx.config(), module, svd, r));
            if (ctx.log() != null && (++done % 16 == 0 || done == ctx.targets().size()))
                ctx.log().printf("lamda: %d/%d layers initialised from their SVD%n", done, ctx.targets().size());
        }
        return new Initialised(ctx.config(), layers);
    }

    @Override
    public void beforeStep(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        LamdaSupport.beforeStep(step, layers, options);
    }

    /** Frozen columns of B stay exactly where they were frozen, whatever AdamW's momentum says. */
    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        for (LoraLayer l : layers.values()) l.restoreFrozenBColumns();
    }
}
