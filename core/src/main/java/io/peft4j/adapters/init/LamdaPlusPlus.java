package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * LaMDA++: LaMDA ({@link Lamda}) with a "lite-weight" adaptive rank per layer from the normalised spectrum of the
 * pre-trained weights, from "LaMDA: Large Model Fine-Tuning via Spectrally Decomposed Low-Dimensional Adaptation"
 * (Azizi, Kundu, Pedram; EMNLP Findings 2024), arXiv:2406.12832.
 *
 * <p>For every targeted W the normalised energy of its top r singular values, {@code E = sum_{i<r} σ_i^2 / ||W||_F^2},
 * says how much of W a rank-r adapter path spans; a layer whose energy is spread (low E) gets more rank. The ranks
 * are proportional to {@code 1 - E}, kept in {@code [min_rank, min(max_rank, out, in)]}, and sum to the fixed budget
 * {@code sum of the config's ranks} (r x modules without a rank_pattern); they are written to the final config's
 * {@code rank_pattern} (exact module names). Each layer is then a LaMDA layer of its rank, with the same schedule.
 *
 * <p>Choices where the paper (as reachable here: its abstract) is silent: the score {@code 1 - E} measured at the
 * config's rank, proportional allocation with deterministic largest-gap rounding, the bounds (default 1 and 2r),
 * and alpha left at lora_alpha (so a layer's scaling is alpha / its rank, as PEFT's rank_pattern gives).
 */
public final class LamdaPlusPlus implements AdapterMethod {
    static final String MIN_RANK = "min_rank", MAX_RANK = "max_rank";

    @Override public String name() { return "lamda++"; }

    @Override
    public String summary() {
        return "LaMDA++: LaMDA with per-layer ranks from the normalised singular-value energy of W under a fixed budget";
    }

    @Override
    public String paper() {
        return "LaMDA: Large Model Fine-Tuning via Spectrally Decomposed Low-Dimensional Adaptation (Azizi et al., EMNLP Findings 2024), arXiv:2406.12832";
    }

    @Override
    public List<MethodOption> options() {
        List<MethodOption> o = new ArrayList<>(LamdaSupport.commonOptions());
        o.add(new MethodOption(MIN_RANK, "1", "smallest rank a layer may get"));
        o.add(new MethodOption(MAX_RANK, "0", "largest rank a layer may get (0: twice the config's rank); never above min(out, in)"));
        return o;
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        LoraConfig cfg = ctx.config();
        int niter = ctx.options().integer(LamdaSupport.SVD_NITER);
        int minRank = ctx.options().integer(MIN_RANK), maxRankOpt = ctx.options().integer(MAX_RANK);
        if (minRank < 1) throw new IllegalArgumentException("option " + MIN_RANK + " must be >= 1, got " + minRank);
        if (maxRankOpt < 0) throw new IllegalArgumentException("option " + MAX_RANK + " must be >= 0, got " + maxRankOpt);
        List<String> modules = new ArrayList<>(ctx.targets().keySet());
        int n = modules.size();
        double[] spread = new double[n];
        int[] caps = new int[n];
        Svd.Result[] svds = new Svd.Result[n];
        int budget = 0;
        for (int i = 0; i < n; i++) {
            String module = modules.get(i);
            Linear lin = ctx.targets().get(module);
            int r = cfg.rankFor(module);
            LamdaSupport.checkFits(module, lin, r);
            budget += r;
            int dimCap = Math.min(lin.outFeatures(), lin.inFeatures());
            caps[i] = Math.min(dimCap, maxRankOpt == 0 ? 2 * r : maxRankOpt);
            if (caps[i] < minRank)
                throw new IllegalArgumentException(module + ": " + MAX_RANK + " / layer size allow rank " + caps[i] + ", below " + MIN_RANK + " " + minRank);
            // one SVD serves both the energy (top r) and the layer's init (top r_l <= the cap)
            svds[i] = LamdaSupport.topSvd(module, lin, Math.max(r, caps[i]), niter);
            spread[i] = 1 - LamdaSupport.topEnergy(svds[i].s(), r, LamdaSupport.frobeniusSquared(lin));
        }
        int[] ranks = LamdaSupport.allocate(spread, budget, minRank, caps);

        LoraConfig.Builder b = cfg.toBuilder().clearRankPattern();
        cfg.alphaPattern().forEach(b::alphaPattern);
        for (int i = 0; i < n; i++) if (ranks[i] != cfg.r()) b.rankPattern(modules.get(i), ranks[i]);
        LoraConfig finalConfig = b.build();

        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            String module = modules.get(i);
            layers.put(module, LamdaSupport.build(ctx, finalConfig, module, svds[i].truncate(ranks[i]), ranks[i]));
            if (ctx.log() != null)
                ctx.log().printf(Locale.ROOT, "lamda++: %s top-%d energy %.3f -> rank %d%n", module, cfg.rankFor(module), 1 - spread[i], ranks[i]);
        }
        return new Initialised(finalConfig, layers);
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
