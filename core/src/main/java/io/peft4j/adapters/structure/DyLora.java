package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.WeakHashMap;

/**
 * DyLoRA: one LoRA adapter trained for every rank in [r_min, r] at once, so that after training any truncation
 * {@code W x + (alpha / b) B[:, :b] A[:b, :] x}, b <= r, can be served without retraining or a rank search. From
 * "DyLoRA: Parameter Efficient Tuning of Pre-trained Models using Dynamic Search-Free Low-Rank Adaptation"
 * (Valipour, Rezagholizadeh, Kobyzev, Ghodsi; EACL 2023, arXiv 2210.07558).
 *
 * <p>Training: before every optimizer step a rank b is drawn uniformly from {r_min, ..., r} (the paper's uniform
 * p_B) and the forward pass uses only the first b ranks with scaling alpha / b ({@link LoraLayer#setRankLimit}); the
 * draw is a pure function of the option {@code seed} and the step index, so a resumed run draws the same ranks. In
 * the paper's backward pass only the b-th rank (row b of A, column b of B) is updated, which keeps what the lower
 * ranks learned ("nested dropout" ordering): {@code update=bth}, the default. {@code update=all} updates all first b
 * ranks (the paper's ablation). As in a PyTorch implementation that detaches the lower ranks, their gradient is zero
 * but AdamW's momentum from earlier steps still moves them. After each update the layers go back to the evaluation
 * rank, so evaluation during and after training, saving and export all see {@code eval_rank}.
 *
 * <p>Serving at any rank: {@link #useRank(Map, int)} (or {@link #useRank(LoraModel, String, int)}) switches a trained
 * adapter to rank b; {@link LoraModel#exportPlainLora(String)} then writes a plain PEFT LoRA of rank b (ranks beyond the
 * limit are left out). A saved adapter keeps {@code eval_rank} in {@code peft4j_method.json} and is loaded at that
 * rank.
 *
 * <p>Where the paper is silent or we chose: one b per step shared by all layers (with a {@code rank_pattern}, a layer
 * of rank r_l uses the same quantile, b_l = r_min + floor(u (r_l - r_min + 1)) for the step's u in [0, 1)); gradient
 * clipping sees the masked gradient; rsLoRA is refused (the paper scales by alpha / b). Init is PEFT's LoRA default
 * (Kaiming-uniform A, zero B), so the adapter is an identity at step 0.
 *
 * <p>Options: {@code r_min} (1), {@code update} (bth | all), {@code seed} (0), {@code eval_rank} (0 = the full rank r).
 */
public final class DyLora implements AdapterMethod {
    /** Each layer's scaling at its full rank (alpha / r): truncations derive alpha / b from it without drift. */
    private static final Map<LoraLayer, Float> FULL_SCALING = Collections.synchronizedMap(new WeakHashMap<>());

    @Override public String name() { return "dylora"; }

    @Override public String summary() { return "LoRA trained at a random rank b <= r each step (nested truncation, alpha/b): usable at any rank after training"; }

    @Override public String paper() { return "DyLoRA: Parameter Efficient Tuning of Pre-trained Models using Dynamic Search-Free Low-Rank Adaptation (arXiv 2210.07558)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("r_min", "1", "smallest rank drawn during training"),
                new MethodOption("update", "bth", "bth (only the sampled b-th rank is updated, the paper's rule) | all (all first b ranks)"),
                new MethodOption("seed", "0", "seed of the per-step rank draws (a pure function of seed and step)"),
                new MethodOption("eval_rank", "0", "rank used outside training steps, when saved and loaded (0 = full rank r)"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        LoraConfig c = ctx.config();
        if (c.useRslora()) throw new IllegalArgumentException("method dylora scales a rank-b truncation by alpha / b as the paper does: turn rsLoRA off");
        String update = o.string("update");
        if (!update.equals("bth") && !update.equals("all"))
            throw new IllegalArgumentException("method dylora: option update must be bth or all, got '" + update + "'");
        int rMin = o.integer("r_min"), evalRank = o.integer("eval_rank");
        if (evalRank < 0) throw new IllegalArgumentException("method dylora: eval_rank must be >= 0 (0 = full rank), got " + evalRank);
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = c.rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            if (rMin < 1 || rMin > r)
                throw new IllegalArgumentException("method dylora: r_min " + rMin + " must be in [1, " + r + "] (the rank of " + module + ")");
            Tensor a = Factors.loraA(ctx, "kaiming", r, in).requiresGrad(true);
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            LoraLayer l = ctx.layer(module, a, b, null, null);
            FULL_SCALING.put(l, l.scaling());
            layers.put(module, l);
        }
        useRank(layers, evalRank);
        return new Initialised(c, layers);
    }

    @Override
    public void beforeStep(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        double u = draw(options.integer("seed"), step);
        int rMin = options.integer("r_min");
        for (LoraLayer l : layers.values()) setRank(l, sampledRank(u, rMin, l.rank()));
    }

    @Override
    public void beforeUpdate(int step, Map<String, LoraLayer> layers, MethodConfig options) {
        if (!options.string("update").equals("bth")) return;
        for (LoraLayer l : layers.values()) keepOnlyRank(l, l.rankLimit() - 1);
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        useRank(layers, options.integer("eval_rank"));
    }

    @Override
    public void afterLoad(Map<String, LoraLayer> layers, MethodConfig options) {
        for (LoraLayer l : layers.values()) FULL_SCALING.putIfAbsent(l, l.scaling());
        useRank(layers, options.integer("eval_rank"));
    }

    /** The step's quantile u in [0, 1): a pure function of (seed, step). */
    static double draw(long seed, int step) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + step).nextDouble();
    }

    /** The rank of a layer of rank r for quantile u: uniform over {rMin, ..., r} as u is uniform. */
    static int sampledRank(double u, int rMin, int r) {
        int lo = Math.min(rMin, r);
        return Math.min(r, lo + (int) Math.floor(u * (r - lo + 1)));
    }

    /** The rank DyLoRA trains at step {@code step} with these options, for a layer of rank {@code r}. */
    public static int rankAt(int step, int r, MethodConfig options) {
        return sampledRank(draw(options.integer("seed"), step), options.integer("r_min"), r);
    }

    /**
     * Serves every layer at rank {@code rank} (capped at each layer's rank; 0 = full rank) with scaling alpha / rank:
     * the nested truncation DyLoRA trained, no retraining.
     */
    public static void useRank(Map<String, LoraLayer> layers, int rank) {
        if (rank < 0) throw new IllegalArgumentException("rank must be >= 0 (0 = full rank), got " + rank);
        for (LoraLayer l : layers.values()) setRank(l, rank == 0 ? l.rank() : Math.min(rank, l.rank()));
    }

    /** {@link #useRank(Map, int)} on one adapter of a model. */
    public static void useRank(LoraModel model, String adapter, int rank) {
        if (!model.method(adapter).method().equals("dylora"))
            throw new IllegalArgumentException("adapter '" + adapter + "' was built by " + model.method(adapter).method() + ", not dylora");
        useRank(model.layers(adapter), rank);
    }

    private static void setRank(LoraLayer l, int b) {
        Float full = FULL_SCALING.get(l);
        if (full == null) {
            if (l.rankLimit() != l.rank()) throw new IllegalStateException(l.base().name() + ": DyLoRA layer truncated before its full-rank scaling was known");
            full = l.scaling();
            FULL_SCALING.put(l, full);
        }
        l.setRankLimit(b, (float) ((double) full * l.rank() / b));
    }

    /** Zeroes the gradients of every rank but {@code keep}: rows of A and columns of B (ranks beyond the limit are already zero). */
    private static void keepOnlyRank(LoraLayer l, int keep) {
        int r = l.rank();
        Tensor a = l.loraA(), b = l.loraB();
        if (a.requiresGrad() && a.grad() != null) {
            Tensor g = a.grad();
            int in = a.dim(1);
            float[] d = g.data();
            for (int j = 0; j < keep; j++) java.util.Arrays.fill(d, g.dataOffset() + j * in, g.dataOffset() + (j + 1) * in, 0f);
        }
        if (b.requiresGrad() && b.grad() != null) {
            Tensor g = b.grad();
            int out = b.dim(0);
            float[] d = g.data();
            for (int o = 0; o < out; o++) for (int j = 0; j < keep; j++) d[g.dataOffset() + o * r + j] = 0f;
        }
    }
}
