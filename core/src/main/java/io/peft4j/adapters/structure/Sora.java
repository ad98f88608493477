package io.peft4j.adapters.structure;

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
 * SoRA: LoRA with a gate vector between the factors, {@code y = W x + (alpha / r) B diag(g) A x}, whose gate is
 * driven to exact zeros by a proximal gradient step (soft threshold) after every optimizer update:
 * {@code g <- T_{eta_t lambda}(g)}, {@code T_xi(x) = sign(x) max(|x| - xi, 0)}, eta_t the step's learning rate. Ranks
 * whose gate is zero contribute nothing and are pruned when the adapter is exported, leaving a smaller plain LoRA with
 * identical outputs (per-module ranks through a {@code rank_pattern}). From "Sparse Low-rank Adaptation of Pre-trained
 * Language Models" (Ding, Lv, Wang, Chen, Liu, Zhou, Sun; EMNLP 2023, arXiv 2311.11696); details as the authors'
 * released code (TsinghuaC3I/SoRA).
 *
 * <p>The gate is the layer's diagonal middle factor ({@code lora_M}, [r], trainable), initialised N(0, 1) as in the
 * authors' code ({@code gate_init=normal}; {@code ones} gives a plain-LoRA start); B starts at zero so the adapter is
 * an identity at step 0, A is PEFT's Kaiming-uniform default, and the config's alpha / r is kept (the authors' code
 * scales by alpha / r). Trainable parameters per layer: {@code r (in + out) + r}.
 *
 * <p>Sparsifying scheduler ({@code lambda_schedule}): lambda grows stage by stage from {@code lambda} to
 * {@code max_lambda} over {@code lambda_stages} stages of {@code stage_steps} optimizer steps each ({@code linear},
 * {@code log_linear} = log of a linear ramp of e^lambda, {@code exp_linear} = geometric), then stays at the last
 * value, as the authors' {@code SparseAdamW}; the schedule is a pure function of the step, so a resumed run continues
 * it exactly. The paper runs each stage as a further training phase to trace memorisation against sparsity; here the
 * stages follow one another within one run.
 *
 * <p>Where we chose: the threshold is lambda times the scheduled learning rate, the paper's {@code T_{eta_t lambda}}
 * (the authors' main code thresholds by a raw constant, about 1e-3 per step at a learning rate near 1e-3: the default
 * {@code lambda = 1} matches that); the authors also add an L1 penalty on the gate to the loss, which the proximal step
 * already implements and is left out; the gate takes the same AdamW settings as A and B (their code gives it a
 * separate AdamW without weight decay: keep weight decay 0, the Trainer default). {@link #proximalStep} and
 * {@link #softThreshold} are public so the proximal step can be used with any gated adapter (e.g. LoLDU's diagonal)
 * through {@code Trainer.withAfterUpdate}.
 */
public final class Sora implements AdapterMethod {
    @Override public String name() { return "sora"; }

    @Override public String summary() { return "LoRA with a gate B diag(g) A driven sparse by a proximal (soft-threshold) step; zero-gate ranks pruned on export"; }

    @Override public String paper() { return "Sparse Low-rank Adaptation of Pre-trained Language Models (arXiv 2311.11696)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("lambda", "1", "sparsity strength: after each update the gate is soft-thresholded by lambda x learning rate"),
                new MethodOption("gate_init", "normal", "normal (N(0, 1), the authors' code) | ones"),
                new MethodOption("lambda_schedule", "none", "sparsifying scheduler: none | linear | log_linear | exp_linear (lambda -> max_lambda)"),
                new MethodOption("max_lambda", "10", "last lambda of the schedule"),
                new MethodOption("lambda_stages", "10", "number of lambda values in the schedule"),
                new MethodOption("stage_steps", "0", "optimizer steps per schedule stage (required with a schedule)"));
    }

    @Override public boolean prunesZeroGates() { return true; }

    @Override
    public Initialised initialise(MethodContext ctx) {
        MethodConfig o = ctx.options();
        String gateInit = o.string("gate_init");
        if (!gateInit.equals("normal") && !gateInit.equals("ones"))
            throw new IllegalArgumentException("method sora: option gate_init must be normal or ones, got '" + gateInit + "'");
        lambdaAt(0, o);   // validates the schedule options now rather than at the first step
        LoraConfig c = ctx.config();
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            int r = c.rankFor(module), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
            Tensor a = Factors.loraA(ctx, "kaiming", r, in).requiresGrad(true);
            Tensor b = Tensor.zeros(out, r).requiresGrad(true);
            Tensor gate = (gateInit.equals("ones") ? Tensor.full(1f, r) : ctx.gaussian(1.0, r)).requiresGrad(true);
            layers.put(module, ctx.layer(module, a, b, gate, null));
        }
        return new Initialised(c, layers);
    }

    @Override
    public void afterStep(int step, double lr, Map<String, LoraLayer> layers, MethodConfig options) {
        proximalStep(layers.values(), lambdaAt(step, options) * lr);
    }

    /** {@code T_t(x) = sign(x) max(|x| - t, 0)}: exactly zero when |x| <= t. */
    public static float softThreshold(float x, double t) {
        if (x > t) return (float) (x - t);
        if (x < -t) return (float) (x + t);
        return 0f;
    }

    /**
     * The proximal step of the L1 penalty on the gates: every layer's diagonal middle factor soft-thresholded by
     * {@code threshold} in place. Layers without a diagonal gate are an error (the step would silently do nothing).
     */
    public static void proximalStep(Iterable<LoraLayer> layers, double threshold) {
        if (threshold < 0) throw new IllegalArgumentException("soft threshold must be >= 0, got " + threshold);
        for (LoraLayer l : layers) {
            Tensor g = l.mid();
            if (g == null || g.numel() != l.rank())   // [r] (or [1, 1] at rank 1, as a reload shapes it)
                throw new IllegalArgumentException(l.base().name() + ": SoRA's proximal step needs a diagonal gate (a [r] middle factor)");
            float[] d = g.data();
            for (int j = 0, p = g.dataOffset(); j < l.rank(); j++, p++) d[p] = softThreshold(d[p], threshold);
        }
    }

    /** Lambda at optimizer step {@code step}: constant, or the stage of the sparsifying schedule. */
    public static double lambdaAt(int step, MethodConfig o) {
        double lambda = o.number("lambda");
        if (lambda < 0) throw new IllegalArgumentException("method sora: lambda must be >= 0, got " + lambda);
        String schedule = o.string("lambda_schedule");
        if (schedule.equals("none")) return lambda;
        double max = o.number("max_lambda");
        int stages = o.integer("lambda_stages"), stageSteps = o.integer("stage_steps");
        if (stages < 1) throw new IllegalArgumentException("method sora: lambda_stages must be >= 1, got " + stages);
        if (stageSteps < 1) throw new IllegalArgumentException("method sora: lambda_schedule " + schedule + " needs stage_steps >= 1, got " + stageSteps);
        int k = Math.min(step / stageSteps, stages - 1);
        double f = stages == 1 ? 0 : (double) k / (stages - 1);
        return switch (schedule) {
            case "linear" -> lambda + f * (max - lambda);
            case "log_linear" -> Math.log(Math.exp(lambda) + f * (Math.exp(max) - Math.exp(lambda)));
            case "exp_linear" -> {
                if (lambda <= 0 || max <= 0) throw new IllegalArgumentException("method sora: exp_linear needs lambda and max_lambda > 0");
                yield Math.exp(Math.log(lambda) + f * (Math.log(max) - Math.log(lambda)));
            }
            default -> throw new IllegalArgumentException("method sora: lambda_schedule must be none, linear, log_linear or exp_linear, got '" + schedule + "'");
        };
    }
}
