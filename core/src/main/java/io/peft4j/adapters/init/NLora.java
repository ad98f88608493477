package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
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
 * NLoRA (Nyström LoRA): SLoRA's {@code s · B M A} initialised from a Nyström sketch of the pretrained weight, so that
 * {@code s B M A} starts at exactly the rank-r Nyström approximation {@code W X (Y^T W X)^+ Y^T W} of W; all three
 * factors train. With column/row sampling (X, Y select columns J and rows I) and no oversampling this is the classical
 * {@code C W[I, J]^+ R}: B = C = W[:, J] [out, r], M = W[I, J]^+ / s [r, r], A = R = W[I, :] [r, in]. From "NLoRA:
 * Nyström-Initiated Low-Rank Adaptation for Large Language Models" (Guo, Chang, Wu; arXiv 2502.14482, EMNLP Findings
 * 2025). Only the paper's abstract was available to us; the sampling follows the authors' released code
 * (github TracyGuo2001/NLoRA: {@code lora_B = W[:, :r]}, {@code lora_N = W[:r, :r]}, {@code lora_A = W[:r, :]}), the
 * core is the Nyström pseudo-inverse that the method is named after (that code copies W[:r, :r] uninverted, with a
 * {@code pinv} commented out: {@code core=submatrix} reproduces it).
 *
 * <p>Options:
 * <ul>
 *   <li>{@code sketch}: {@code first} (default; the first r columns and rows, the authors' deterministic choice),
 *       {@code random} (uniformly sampled distinct columns and rows, from the adapter's seeded random stream), or
 *       {@code gaussian} (Nakatsukasa's generalised Nyström {@code W X (Y^T W X)^+ Y^T W} with Gaussian X [in, r],
 *       Y [out, r + p]; one pass over W).</li>
 *   <li>{@code oversample} p (default {@code auto} = ceil(r/2), clipped per layer to {@code out - r}): extra rows
 *       in the row sketch. With p > 0 the [r + p, r] core K is reduced by a thin QR {@code K = Q T} to
 *       {@code M = T^+ / s}, {@code A = Q^T Y^T W}: the same product {@code W X K^+ Y^T W} with a square M.
 *       {@code 0} gives the classical square-core Nyström {@code C W[I, J]^+ R}.</li>
 *   <li>{@code core}: {@code pinv} (default; the Nyström formula) or {@code submatrix} (M = W[I, J] / s uninverted,
 *       as the authors' released code does; then {@code B M A} is not an approximation of W; no oversampling,
 *       {@code auto} means 0 here).</li>
 *   <li>{@code residual} (default true): rewrite the base to {@code W - s B M A} (as PiSSA does) so the model is
 *       unchanged at step 0. {@code false} keeps W and starts the model at {@code W + s B M A}, as the authors'
 *       released code does (then the output changes at initialisation, by design of that code).</li>
 * </ul>
 *
 * <p>Why oversampling is on by default (a choice: the square core is the textbook formula): with p = 0 the sketch
 * interpolates W exactly on the sampled rows and columns but is unstable elsewhere when the r x r intersection is
 * ill-conditioned. On the toy model of the tests (r = 3, random weights) {@code ||s B M A|| / ||W||} reached 41 with
 * p = 0 (first rows/columns) and stayed in 0.8-1.3 with p = 2, for every sketch; the residual base
 * {@code W - s B M A} then carries the same huge cancelling term, and training perturbs it. This is Nakatsukasa's
 * observation ("Fast and stable randomized low-rank matrix approximation", arXiv 2009.11392), whose stabilised
 * generalised Nyström uses p ≈ r/2.
 *
 * <p>Where the paper and the code leave a choice: the pseudo-inverse drops singular values below
 * {@value LowRankSketch#RCOND} times the largest (an ill-conditioned intersection would otherwise blow M up); the
 * scaling {@code s = alpha / r} is divided out of M so the adapter starts at exactly the sketch for any alpha; the
 * residual rewrite is on by default because this library keeps every method an identity at initialisation.
 * Trainable parameters per layer: {@code r (in + out) + r^2}.
 */
public final class NLora implements AdapterMethod {
    @Override public String name() { return "nlora"; }

    @Override public String summary() { return "SLoRA's B M A initialised from a Nyström sketch of W (columns, pinv core, rows); base rewritten to the residual"; }

    @Override public String paper() { return "NLoRA: Nyström-Initiated Low-Rank Adaptation for Large Language Models (arXiv 2502.14482)"; }

    @Override public List<MethodOption> options() { return OPTIONS; }

    static final List<MethodOption> OPTIONS = List.of(
            new MethodOption("sketch", "first", "first | random | gaussian: which columns/rows (or Gaussian sketch matrices) form the Nyström sketch"),
            new MethodOption("oversample", "auto", "extra rows p in the row sketch (core [r+p, r] reduced by QR to r x r); auto = ceil(r/2), 0 = the square-core Nyström"),
            new MethodOption("core", "pinv", "pinv (Nyström: M = W[I,J]^+) | submatrix (M = W[I,J], as the authors' released code)"),
            new MethodOption("residual", "true", "rewrite W to W - s B M A so the model is unchanged at init"));

    @Override
    public Initialised initialise(MethodContext ctx) { return build(ctx, true, name()); }

    /** NLoRA's initialisation; {@code trainFactors} false freezes A and B (IntTune). */
    static Initialised build(MethodContext ctx, boolean trainFactors, String method) {
        MethodConfig o = ctx.options();
        String sketch = o.string("sketch");
        if (!List.of("first", "random", "gaussian").contains(sketch))
            throw new IllegalArgumentException("method " + method + ": option sketch must be first, random or gaussian, got '" + sketch + "'");
        String core = o.string("core");
        if (!core.equals("pinv") && !core.equals("submatrix"))
            throw new IllegalArgumentException("method " + method + ": option core must be pinv or submatrix, got '" + core + "'");
        boolean auto = o.string("oversample").equals("auto");
        int p = auto ? -1 : o.integer("oversample");     // -1: ceil(r / 2) per layer (0 for core=submatrix)
        if (!auto && p < 0) throw new IllegalArgumentException("method " + method + ": option oversample must be >= 0 or auto, got " + p);
        if (core.equals("submatrix") && p > 0)
            throw new IllegalArgumentException("method " + method + ": core=submatrix takes no oversampling (oversample=0), got " + p);
        boolean residual = o.flag("residual");

        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int r = ctx.config().rankFor(module), in = lin.inFeatures(), out = lin.outFeatures();
            if (r > Math.min(in, out))
                throw new IllegalArgumentException("method " + method + ": rank r=" + r + " is larger than layer " + module + " allows (in " + in + ", out " + out + ")");
            int want = p >= 0 ? p : core.equals("submatrix") ? 0 : (r + 1) / 2;
            int pl = Math.min(want, out - r);             // a row sketch cannot hold more rows than W has
            LowRankSketch.Sketch s = switch (sketch) {
                case "first" -> LowRankSketch.Sketch.first(r, pl);
                case "random" -> LowRankSketch.Sketch.random(out, in, r, pl, ctx.rng());
                default -> LowRankSketch.Sketch.gaussian(out, in, r, pl, ctx.rng());
            };
            LowRankSketch.Nystrom n = LowRankSketch.nystrom(lin.weight(), s, core.equals("pinv"));
            double scaling = ctx.config().scalingFor(module);
            Tensor a = LowRankSketch.tensor(n.a(), 1, r, in).requiresGrad(trainFactors);
            Tensor b = LowRankSketch.tensor(n.b(), 1, out, r).requiresGrad(trainFactors);
            Tensor mid = LowRankSketch.tensor(n.core(), 1 / scaling, r, r).requiresGrad(true);
            LoraLayer layer = ctx.layer(module, a, b, mid, null);
            if (residual) {
                Tensor b0 = layer.effectiveB();           // [out, r] = B M
                float[] bd = b0.data();
                for (int i = 0; i < bd.length; i++) bd[i] *= layer.scaling();
                ctx.rewriteBase(module, a, b0);
            }
            layers.put(module, layer);
        }
        if (ctx.log() != null)
            ctx.log().printf("%s: %d layers initialised from a %s Nyström sketch (oversample %s, core %s)%s%n", method, layers.size(),
                    sketch, o.string("oversample"), core, residual ? ", base rewritten to the residual" : "");
        return new Initialised(ctx.config(), layers);
    }
}
