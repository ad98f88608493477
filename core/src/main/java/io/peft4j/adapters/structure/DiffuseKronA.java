package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * DiffuseKronA: a Kronecker-product update {@code ΔW = s · (A ⊗ B)} with A [a1, a2] and B [out / a1, in / a2], from
 * "DiffuseKronA: A Parameter Efficient Fine-tuning Method for Personalized Diffusion Models" (Marjit, Singh, Mathur,
 * Paul, Yu, Chen; WACV 2025, arXiv 2402.17412). Trainable parameters per layer: {@code a1·a2 + (out/a1)·(in/a2)}.
 * Unlike a rank-r product, A ⊗ B has rank rank(A) · rank(B), so it can be of high rank at a small parameter count.
 *
 * <p>Options and choices:
 * <ul>
 * <li>{@code a1}, {@code a2}: the shape of the small factor A; they must divide the layer's out and in features
 *     (otherwise an error names the module and the divisors). Defaults 64 and 8, the authors' released setting for
 *     Stable Diffusion (their scripts also use 64/4, 16/32, 32/16). {@code auto} picks, per layer, the divisor of the
 *     dimension closest to (and not above) its square root, balancing the two factors (LyCORIS LoKr's automatic
 *     factorisation, a convenience beyond the paper for layers the defaults do not divide).</li>
 * <li>Init (the authors' code): A ~ N(0, (1/a1)^2), B = 0, so the model is unchanged at step 0 and B gets a
 *     gradient at once.</li>
 * <li>{@code scale} (default 1): a constant factor on the update. The paper adds the plain product; the authors'
 *     optional {@code network_alpha} scaling is unused in their scripts, so the default is 1. The LoRA config's r and
 *     alpha play no part (the returned config has alpha = r, no rsLoRA, no rank/alpha patterns).</li>
 * <li>Dropout: the LoRA config's {@code lora_dropout} on the layer input, as for LoRA (the paper uses none; default 0).</li>
 * </ul>
 *
 * <p>Layout: peft4j follows the paper's formula with row-major {@code (A ⊗ B)[i·p + k, j·q + l] = A[i, j] B[k, l]}.
 * The authors' released layer reshapes the input and output in another order, which is the same Kronecker structure
 * up to fixed permutations of W's rows and columns (same parameter count and expressiveness, not the same tensors).
 *
 * <p>Forward without forming ΔW (see {@link DiffuseKronALayer}); merge adds the explicit product. There is no exact
 * low-rank (plain LoRA) form in general, so {@code exportPlainLora} refuses and the adapter is saved in peft4j's own
 * format ({@code krona_A}, {@code krona_B} per module, with {@code peft4j_method.json}).
 */
public final class DiffuseKronA implements AdapterMethod {
    @Override public String name() { return "diffusekrona"; }

    @Override public String summary() { return "Kronecker-product update A ⊗ B (A [a1, a2], B [out/a1, in/a2]); merges, no plain-LoRA export"; }

    @Override public String paper() { return "DiffuseKronA: A Parameter Efficient Fine-tuning Method for Personalized Diffusion Models (arXiv 2402.17412)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("a1", "64", "rows of the small factor A (divides out_features), or auto"),
                new MethodOption("a2", "8", "columns of the small factor A (divides in_features), or auto"),
                new MethodOption("scale", "1.0", "constant factor on the update A ⊗ B"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        float scale = scale(ctx.options());
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int a1 = factor(ctx.options(), "a1", module, lin.outFeatures(), "out_features");
            int a2 = factor(ctx.options(), "a2", module, lin.inFeatures(), "in_features");
            Tensor a = ctx.gaussian(1.0 / a1, a1, a2).requiresGrad(true);
            Tensor b = Tensor.zeros(lin.outFeatures() / a1, lin.inFeatures() / a2).requiresGrad(true);
            layers.put(module, layer(ctx, module, a, b, scale));
        }
        LoraConfig c = ctx.config();
        return new Initialised(c.toBuilder().alpha(c.r()).rslora(false).clearRankPattern().build(), Map.of(), layers);
    }

    @Override
    public AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, Tensor> saved) {
        Tensor a = saved.get(DiffuseKronALayer.A_KEY), b = saved.get(DiffuseKronALayer.B_KEY);
        if (a == null || b == null || saved.size() != 2)
            throw new IllegalArgumentException("a DiffuseKronA layer saves exactly " + DiffuseKronALayer.A_KEY + " and "
                    + DiffuseKronALayer.B_KEY + ", found " + saved.keySet());
        return layer(ctx, module, a.requiresGrad(true), b.requiresGrad(true), scale(ctx.options()));
    }

    private static DiffuseKronALayer layer(MethodContext ctx, String module, Tensor a, Tensor b, float scale) {
        a.name(module + "." + DiffuseKronALayer.A_KEY);
        b.name(module + "." + DiffuseKronALayer.B_KEY);
        return new DiffuseKronALayer(ctx.targets().get(module), ctx.runtime(), scale, (float) ctx.config().loraDropout(), a, b);
    }

    private static float scale(MethodConfig o) {
        double s = o.number("scale");
        if (!Double.isFinite(s)) throw new IllegalArgumentException("method diffusekrona: option scale must be finite, got " + s);
        return (float) s;
    }

    /** The factor {@code key} (a1 or a2) for a dimension of one module: given, or automatic; it must divide {@code dim}. */
    static int factor(MethodConfig o, String key, String module, int dim, String dimName) {
        String v = o.string(key).trim();
        if (v.equalsIgnoreCase("auto")) return autoFactor(dim);
        int f;
        try { f = Integer.parseInt(v); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("method diffusekrona: option " + key + " must be a positive integer or auto, got '" + v + "'"); }
        if (f < 1) throw new IllegalArgumentException("method diffusekrona: option " + key + " must be >= 1, got " + f);
        if (dim % f != 0)
            throw new IllegalArgumentException("diffusekrona: module " + module + " has " + dimName + " = " + dim + ", not divisible by "
                    + key + " = " + f + " (divisors: " + divisors(dim) + "); choose another " + key + " or " + key + "=auto");
        return f;
    }

    /** The largest divisor of {@code dim} not above its square root. */
    static int autoFactor(int dim) {
        int best = 1;
        for (int f = 1; (long) f * f <= dim; f++) if (dim % f == 0) best = f;
        return best;
    }

    private static String divisors(int dim) {
        List<Integer> d = new ArrayList<>();
        for (int f = 1; f <= dim && d.size() < 24; f++) if (dim % f == 0) d.add(f);
        String s = d.toString();
        return d.size() == 24 ? s.substring(0, s.length() - 1) + ", ...]" : s;
    }
}
