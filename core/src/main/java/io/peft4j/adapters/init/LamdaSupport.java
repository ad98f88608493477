package io.peft4j.adapters.init;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.linalg.RandomizedSvd;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.List;
import java.util.Map;

/**
 * The math LaMDA and LaMDA++ share: the spectral initialisation of one layer, the freezing schedule of B, and
 * LaMDA++'s rank allocation. Conventions: a torch weight {@code W [out, in] = U diag(σ) V^T}; the paper's
 * first projection (PMA, acting on the input) is {@code A = V_r^T [r, in]}, its second (PMB) {@code B = U_r [out, r]},
 * and the low-dimensional adapter {@code S [r, r]} is the layer's middle factor.
 */
final class LamdaSupport {
    private LamdaSupport() {}

    static final String FREEZE_STEPS = "freeze_steps", FREEZE_ORDER = "freeze_order", S_INIT = "s_init", SVD_NITER = "svd_niter";

    /** The options both methods take. */
    static List<MethodOption> commonOptions() {
        return List.of(
                new MethodOption(FREEZE_STEPS, "100", "optimizer steps over which B (PMB) is frozen rank by rank (the paper's t_i); "
                        + "from this step on B is frozen whole and only S trains; 0 freezes B from the start"),
                new MethodOption(FREEZE_ORDER, "largest_first", "which ranks of B freeze first: largest_first (the top singular "
                        + "directions, as the authors' code does) or smallest_first"),
                new MethodOption(S_INIT, "singular", "singular: S = diag(σ_1..σ_r) / scaling and W is rewritten to its residual "
                        + "W - U_r Σ_r V_r^T (outputs unchanged); zero: S = 0 and W untouched"),
                new MethodOption(SVD_NITER, "4", "power iterations of the randomized SVD of W (seeded by the module name); -1: exact SVD"));
    }

    /** The top {@code k} singular triplets of the layer's weight, randomized (seeded by the module name) or exact. */
    static Svd.Result topSvd(String module, Linear lin, int k, int niter) {
        Tensor w = lin.weight();
        if (niter < -1) throw new IllegalArgumentException("option " + SVD_NITER + " must be -1 (exact) or >= 0, got " + niter);
        return niter < 0 ? Svd.truncated(w, k) : RandomizedSvd.compute(w, k, niter, module.hashCode());
    }

    /** Throws unless {@code r} fits the layer (rank at most min(out, in)), naming the module. */
    static void checkFits(String module, Linear lin, int r) {
        int cap = Math.min(lin.outFeatures(), lin.inFeatures());
        if (r < 1 || r > cap)
            throw new IllegalArgumentException(module + ": rank " + r + " does not fit a [" + lin.outFeatures() + ", " + lin.inFeatures() + "] layer (1.." + cap + ")");
    }

    /**
     * One LaMDA layer of rank {@code r} from the (at least r) top triplets {@code svd}: A = V_r^T frozen, B = U_r and
     * S trainable; with {@code s_init=singular} S = Σ_r / s and the base is rewritten so that outputs are unchanged.
     */
    static LoraLayer build(MethodContext ctx, LoraConfig finalConfig, String module, Svd.Result svd, int r) {
        Linear lin = ctx.targets().get(module);
        int in = lin.inFeatures(), out = lin.outFeatures(), k = svd.k();
        if (k < r) throw new IllegalStateException(module + ": " + k + " singular triplets for rank " + r);
        String sInit = ctx.options().string(S_INIT);
        if (!sInit.equals("singular") && !sInit.equals("zero"))
            throw new IllegalArgumentException("option " + S_INIT + " must be singular or zero, got '" + sInit + "'");
        double scaling = finalConfig.scalingFor(module);
        double[] u = svd.u(), s = svd.s(), v = svd.v();       // u [out, k], s [k], v [in, k]
        float[] ad = new float[r * in], bd = new float[out * r], md = new float[r * r];
        for (int j = 0; j < r; j++) {
            for (int i = 0; i < in; i++) ad[j * in + i] = (float) v[i * k + j];
            for (int o = 0; o < out; o++) bd[o * r + j] = (float) u[o * k + j];
            if (sInit.equals("singular")) md[j * r + j] = (float) (s[j] / scaling);
        }
        Tensor a = Tensor.of(ad, r, in);                                   // frozen throughout (PMA)
        Tensor b = Tensor.of(bd, out, r).requiresGrad(true);               // trained, then frozen by the schedule (PMB)
        Tensor mid = Tensor.of(md, r, r).requiresGrad(true);               // the low-dimensional adapter S
        LoraLayer layer = ctx.layer(finalConfig, module, a, b, mid, null);
        if (sInit.equals("singular")) {
            // b0 = s · B0 S0 exactly as the layer computes it, so W - b0 A0 + (the adapter's s B S A) is W up to rounding
            Tensor b0 = layer.effectiveB();
            float[] d = b0.data();
            for (int i = 0; i < d.length; i++) d[i] *= layer.scaling();
            ctx.rewriteBase(module, a, b0);
        }
        return layer;
    }

    /**
     * How many of a rank-{@code rank} B's columns are frozen before optimizer step {@code step}: none at step 0,
     * then linearly more, {@code floor(step · rank / freezeSteps)}, until all of them at {@code freezeSteps}.
     */
    static int frozenColumns(int step, int rank, int freezeSteps) {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0, got " + step);
        if (freezeSteps < 0) throw new IllegalArgumentException("option " + FREEZE_STEPS + " must be >= 0, got " + freezeSteps);
        if (step >= freezeSteps) return rank;
        return (int) ((long) step * rank / freezeSteps);
    }

    /**
     * Applies the schedule for optimizer step {@code step}: a pure function of the step (so a resumed run sets the
     * same state), except that a B already frozen whole (a reloaded finished adapter) is never unfrozen.
     */
    static void beforeStep(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        int freezeSteps = options.integer(FREEZE_STEPS);
        String order = options.string(FREEZE_ORDER);
        boolean largestFirst = switch (order) {
            case "largest_first" -> true;
            case "smallest_first" -> false;
            default -> throw new IllegalArgumentException("option " + FREEZE_ORDER + " must be largest_first or smallest_first, got '" + order + "'");
        };
        for (LoraLayer l : layers.values()) {
            if (!l.loraB().requiresGrad()) { l.setFrozenBColumns(null); continue; }
            int r = l.rank(), f = frozenColumns(step, r, freezeSteps);
            if (f >= r) {
                l.setFrozenBColumns(null);
                l.setTrainable("B", false);
                continue;
            }
            boolean[] mask = new boolean[r];
            for (int j = 0; j < f; j++) mask[largestFirst ? j : r - 1 - j] = true;
            l.setFrozenBColumns(mask);
        }
    }

    /**
     * LaMDA++'s normalised spectral energy of a layer: the share of {@code ||W||_F^2} its top {@code r} singular
     * values hold, {@code sum_{i<r} σ_i^2 / sum_i σ_i^2} (1 for a zero weight).
     */
    static double topEnergy(double[] singularValues, int r, double frobeniusSquared) {
        if (!(frobeniusSquared > 0)) return 1;
        double e = 0;
        for (int i = 0; i < r; i++) e += singularValues[i] * singularValues[i];
        return Math.min(1, e / frobeniusSquared);
    }

    static double frobeniusSquared(Linear lin) {
        double s = 0;
        for (float x : lin.weight().toFloatArray()) s += (double) x * x;
        return s;
    }

    /**
     * Integer ranks summing to {@code budget}, proportional to {@code weights} (uniform when all are zero), each in
     * {@code [minRank, caps[i]]}: every layer starts at minRank and each further unit goes to the layer furthest below
     * its proportional target (ties to the lower index), so the result is deterministic.
     */
    static int[] allocate(double[] weights, int budget, int minRank, int[] caps) {
        int n = weights.length;
        long capSum = 0;
        for (int i = 0; i < n; i++) {
            if (caps[i] < minRank) throw new IllegalArgumentException("layer " + i + ": cap " + caps[i] + " below the minimum rank " + minRank);
            if (!(weights[i] >= 0) || Double.isInfinite(weights[i])) throw new IllegalArgumentException("layer " + i + ": weight " + weights[i] + " is not a finite non-negative number");
            capSum += caps[i];
        }
        if ((long) minRank * n > budget || capSum < budget)
            throw new IllegalArgumentException("a rank budget of " + budget + " cannot be split over " + n + " layers with ranks in ["
                    + minRank + ", cap] (caps sum to " + capSum + ")");
        double total = 0;
        for (double w : weights) total += w;
        double[] target = new double[n];
        for (int i = 0; i < n; i++) target[i] = total > 0 ? budget * weights[i] / total : (double) budget / n;
        int[] ranks = new int[n];
        java.util.Arrays.fill(ranks, minRank);
        for (int left = budget - minRank * n; left > 0; left--) {
            int best = -1;
            double bestGap = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                if (ranks[i] >= caps[i]) continue;
                double gap = target[i] - ranks[i];
                if (gap > bestGap) { bestGap = gap; best = i; }
            }
            ranks[best]++;
        }
        return ranks;
    }
}
