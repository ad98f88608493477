package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * NOLA: LoRA whose factors are linear combinations of frozen random bases, {@code ΔW = s · B A} with
 * {@code A = Σ_{i<k} α_i A_i} ([r, in]) and {@code B = Σ_{j<l} β_j B_j} ([out, r]); only the mixture coefficients
 * α [k] and β [l] are trained and saved, and the bases are regenerated from a seed. From "NOLA: Compressing LoRA using
 * Linear Combination of Random Basis" (Koohpayegani, Navaneet, Nooralinejad, Kolouri, Pirsiavash; ICLR 2024,
 * arXiv 2310.02556). The trainable (and stored) parameters are {@code k + l} per layer, independent of the rank and
 * of the layer's shape, so an adapter can be smaller than a rank-1 LoRA.
 *
 * <p>What is stored: the coefficients {@code nola_alpha} [k] and {@code nola_beta} [l] per module, and the base seed
 * in {@code peft4j_method.json} (option {@code seed}); nothing of A's or B's size. Each module's bases use the seed
 * {@code mix(seed, FNV-1a(module name), factor)}, so two modules never share bases and a reload regenerates them bit
 * for bit ({@link NolaLayer.RandomBasis}: a counter-based generator, platform independent).
 *
 * <p>Choices, with what the paper and its code do:
 * <ul>
 * <li>k, l ({@code num_basis_a}, {@code num_basis_b}): default 1024 each, the default of the authors' NOLA layers
 *     (their GPT-2 E2E setting uses 1000 each at rank 8, their LLaMA-2 7B script 512 at rank 16). The rank is the
 *     LoRA config's r (rank_pattern respected).</li>
 * <li>Bases: i.i.d. uniform, as in the authors' code (which draws U(-1, 1) scaled by 1/sqrt(k), or kaiming-uniform).
 *     Here A_i ~ U(-1, 1) / sqrt(k · in) and B_j ~ U(-1, 1) / sqrt(l · r): with unit-variance coefficients A then has
 *     the variance of PEFT's default LoRA A (1/(3 in)) and a unit-variance β would give B that of a kaiming [out, r]
 *     matrix, whatever k and l, so learning rates carry over between basis counts (the paper is silent on the
 *     scale).</li>
 * <li>Init: α ~ U(-sqrt 3, sqrt 3) (unit variance), β = 0, so B = 0 and the model is unchanged at step 0 while β gets
 *     a gradient at once (LoRA's convention). The paper does not fix this; the authors' released code variously
 *     starts with both coefficient vectors at zero plus a frozen random A offset, or both at 1/k (a non-zero update
 *     at init). Ours needs nothing stored beyond seed and coefficients and keeps identity at init.</li>
 * <li>Scaling: s = lora_alpha / r (or rsLoRA's alpha / sqrt r) from the LoRA config, as the authors' {@code c / rank}.</li>
 * </ul>
 *
 * <p>Memory and speed: the bases of a layer are {@code k · r · in + l · out · r} floats. They are kept in memory for
 * the first layers up to {@code basis_cache_mb} (in module order) and regenerated on every use beyond that (results are
 * bit-identical either way). A and B are rebuilt only when the coefficients change (once per optimizer step): one
 * GEMV over the bases in forward ({@code A = α^T [A_1; ...; A_k]}) and one in backward ({@code dα = [A_1; ...] dA}),
 * each streaming the bases once: memory-bound, so at the paper's k = l = 1024 a step costs about as much as one more
 * pass over a layer's weights. Regenerated bases cost a hash per element per pass (several times slower).
 *
 * <p>Export: {@code B A} is an exact rank-r factorisation, so {@link io.peft4j.adapters.LoraModel#exportPlainLora}
 * writes a plain PEFT LoRA (A, s · B); merge adds {@code s · B A}.
 */
public final class Nola implements AdapterMethod {
    @Override public String name() { return "nola"; }

    @Override public String summary() { return "LoRA factors as mixtures of seeded random bases; only k + l coefficients per layer trained and saved"; }

    @Override public String paper() { return "NOLA: Compressing LoRA using Linear Combination of Random Basis (arXiv 2310.02556)"; }

    @Override
    public List<MethodOption> options() {
        return List.of(
                new MethodOption("num_basis_a", "1024", "k: number of random bases mixed into A [r, in] (trainable coefficients alpha)"),
                new MethodOption("num_basis_b", "1024", "l: number of random bases mixed into B [out, r] (trainable coefficients beta)"),
                new MethodOption("seed", "0", "base seed of the random bases (each module mixes in its name); saved, so a reload regenerates them"),
                new MethodOption("basis_cache_mb", "512", "keep bases in memory up to this many MiB over all layers; the rest are regenerated on use"));
    }

    @Override
    public Initialised initialise(MethodContext ctx) {
        int k = positive(ctx.options(), "num_basis_a"), l = positive(ctx.options(), "num_basis_b");
        LoraConfig c = ctx.config();
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            String module = e.getKey();
            Linear lin = e.getValue();
            int r = c.rankFor(module);
            if (r < 1 || r > Math.min(lin.inFeatures(), lin.outFeatures()))
                throw new IllegalArgumentException("rank r=" + r + " does not fit layer " + module + " (in " + lin.inFeatures() + ", out " + lin.outFeatures() + ")");
            Tensor alpha = ctx.uniform(Math.sqrt(3), k).requiresGrad(true);   // unit variance: A starts like PEFT's A
            Tensor beta = Tensor.zeros(l).requiresGrad(true);                   // B = 0: the model is unchanged at init
            layers.put(module, layer(ctx, module, alpha, beta));
        }
        return new Initialised(c, Map.of(), layers);
    }

    @Override
    public AdapterLayer restoreLayer(MethodContext ctx, String module, Map<String, Tensor> saved) {
        Tensor alpha = saved.get(NolaLayer.ALPHA), beta = saved.get(NolaLayer.BETA);
        if (alpha == null || beta == null || saved.size() != 2)
            throw new IllegalArgumentException("a NOLA layer saves exactly " + NolaLayer.ALPHA + " and " + NolaLayer.BETA + ", found " + saved.keySet());
        int k = positive(ctx.options(), "num_basis_a"), l = positive(ctx.options(), "num_basis_b");
        if (alpha.numel() != k || beta.numel() != l)
            throw new IllegalArgumentException("saved coefficients have " + alpha.numel() + " and " + beta.numel()
                    + " values but the method options give num_basis_a = " + k + ", num_basis_b = " + l);
        return layer(ctx, module, alpha.reshape(k).requiresGrad(true), beta.reshape(l).requiresGrad(true));
    }

    private static NolaLayer layer(MethodContext ctx, String module, Tensor alpha, Tensor beta) {
        Linear lin = ctx.targets().get(module);
        LoraConfig c = ctx.config();
        int r = c.rankFor(module), in = lin.inFeatures(), out = lin.outFeatures();
        int k = alpha.dim(0), l = beta.dim(0);
        long seed = seed(ctx.options());
        boolean keep = keepsBases(ctx, module, k, l);
        alpha.name(module + "." + NolaLayer.ALPHA);
        beta.name(module + "." + NolaLayer.BETA);
        NolaLayer.RandomBasis ba = new NolaLayer.RandomBasis(moduleSeed(seed, module, 'A'), k, Math.multiplyExact(r, in),
                (float) (1 / Math.sqrt((double) k * in)), keep);
        NolaLayer.RandomBasis bb = new NolaLayer.RandomBasis(moduleSeed(seed, module, 'B'), l, Math.multiplyExact(out, r),
                (float) (1 / Math.sqrt((double) l * r)), keep);
        return new NolaLayer(lin, ctx.runtime(), r, (float) c.scalingFor(module), (float) c.loraDropout(), alpha, beta, ba, bb);
    }

    /** True if {@code module}'s bases fit in the {@code basis_cache_mb} budget, filled in module order. */
    private static boolean keepsBases(MethodContext ctx, String module, int k, int l) {
        double budget = ctx.options().number("basis_cache_mb") * 1024 * 1024;
        double used = 0;
        for (Map.Entry<String, Linear> e : ctx.targets().entrySet()) {
            int r = ctx.config().rankFor(e.getKey());
            used += 4.0 * ((double) k * r * e.getValue().inFeatures() + (double) l * e.getValue().outFeatures() * r);
            if (e.getKey().equals(module)) return used <= budget;
        }
        return false;
    }

    static long seed(MethodConfig options) {
        String s = options.string("seed");
        try { return Long.parseLong(s.trim()); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("method nola: option seed must be an integer, got '" + s + "'"); }
    }

    /** The seed of one module's bases of one factor: the base seed mixed with the FNV-1a hash of the module name. */
    static long moduleSeed(long seed, String module, char factor) {
        long h = 0xcbf29ce484222325L;
        for (int i = 0; i < module.length(); i++) { h ^= module.charAt(i); h *= 0x100000001b3L; }
        h ^= factor;
        h *= 0x100000001b3L;
        return mix(seed ^ mix(h));
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static int positive(MethodConfig o, String key) {
        int v = o.integer(key);
        if (v < 1) throw new IllegalArgumentException("method nola: option " + key + " must be >= 1, got " + v);
        return v;
    }
}
