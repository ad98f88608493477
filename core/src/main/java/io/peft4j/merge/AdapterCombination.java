package io.peft4j.merge;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.kernels.Gemm;
import io.peft4j.linalg.Svd;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A weighted combination of LoRA adapters into one new adapter, as PEFT's {@code add_weighted_adapter}. The new
 * adapter has {@code lora_alpha = r}, so its scaling is 1 and each source's scaling is folded into the factors:
 * <ul>
 *   <li>{@code cat}: A = [w_i s_i A_i] stacked by rows, B = [B_i] by columns; rank = sum r_i; exactly
 *       {@code sum w_i s_i B_i A_i}.</li>
 *   <li>{@code linear}: A = sum sqrt(w_i) s_i A_i, B = sum sqrt(w_i) B_i; equal ranks required; an approximation
 *       (cross terms B_i A_j appear), as in PEFT.</li>
 *   <li>{@code svd}: the truncated SVD (rank = max r_i unless given) of {@code sum w_i s_i B_i A_i}: B = U S, A = V^T.</li>
 * </ul>
 */
public final class AdapterCombination {
    public enum Kind { LINEAR, CAT, SVD;
        public static Kind parse(String s) {
            try { return valueOf(s.trim().toUpperCase(Locale.ROOT)); }
            catch (IllegalArgumentException e) { throw new IllegalArgumentException("unknown combination '" + s + "' (linear, cat, svd)"); }
        }
    }

    private AdapterCombination() {}

    /**
     * Adds adapter {@code target} to {@code lm}, combining {@code sources} with {@code weights}; the sources stay.
     * {@code svdRank} <= 0 means the largest source rank.
     */
    public static void combine(LoraModel lm, List<String> sources, List<Double> weights, Kind kind, String target, int svdRank) {
        if (sources.isEmpty() || sources.size() != weights.size())
            throw new IllegalArgumentException("need one weight per adapter: " + sources.size() + " adapters, " + weights.size() + " weights");
        Set<String> modules = new LinkedHashSet<>();
        for (String s : sources) {
            if (!lm.baseOffsets(s).isEmpty())
                throw new IllegalArgumentException("adapter '" + s + "' (" + lm.method(s).method() + ") rewrote the base weights: "
                        + "export it as a plain LoRA first (peft4j export --format peft-lora)");
            modules.addAll(lm.layers(s).keySet());
        }
        Map<String, Tensor[]> factors = new LinkedHashMap<>();       // module -> {A [r, in], B [out, r]}
        int maxRank = 0;
        for (String s : sources) for (LoraLayer l : lm.layers(s).values()) maxRank = Math.max(maxRank, l.rank());
        for (String module : modules) {
            List<LoraLayer> parts = new ArrayList<>();
            List<Double> w = new ArrayList<>();
            for (int i = 0; i < sources.size(); i++) {
                LoraLayer l = lm.layers(sources.get(i)).get(module);
                if (l == null) continue;
                if (l.isDora()) throw new IllegalArgumentException("adapter '" + sources.get(i) + "' uses DoRA: weighted combination supports plain LoRA only");
                parts.add(l);
                w.add(weights.get(i));
            }
            factors.put(module, switch (kind) {
                case CAT -> cat(parts, w);
                case LINEAR -> linear(module, parts, w);
                case SVD -> svd(parts, w, svdRank > 0 ? svdRank : maxRank);
            });
        }
        int rank = factors.values().iterator().next()[0].dim(0);
        Map<String, Integer> ranks = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : factors.entrySet()) ranks.put(e.getKey(), e.getValue()[0].dim(0));
        LoraConfig.Builder cb = lm.config(sources.getFirst()).toBuilder().r(rank).alpha(rank).rslora(false).dora(false)
                .targets(List.copyOf(modules)).init("true").clearRankPattern();
        for (Map.Entry<String, Integer> e : ranks.entrySet())
            if (e.getValue() != rank) cb.rankPattern(e.getKey(), e.getValue()).alphaPattern(e.getKey(), e.getValue());
        lm.addFromFactors(target, cb.build(), factors);
    }

    private static Tensor[] cat(List<LoraLayer> parts, List<Double> w) {
        int in = parts.getFirst().loraA().dim(1), out = parts.getFirst().loraB().dim(0);
        int r = 0;
        for (LoraLayer l : parts) r += l.rank();
        float[] a = new float[r * in], b = new float[out * r];
        int row = 0;
        for (int p = 0; p < parts.size(); p++) {
            LoraLayer l = parts.get(p);
            float f = (float) (w.get(p) * l.scaling());
            float[] la = l.loraA().toFloatArray(), lb = l.effectiveB().toFloatArray();
            for (int j = 0; j < l.rank(); j++) {
                for (int i = 0; i < in; i++) a[(row + j) * in + i] = f * la[j * in + i];
                for (int o = 0; o < out; o++) b[o * r + row + j] = lb[o * l.rank() + j];
            }
            row += l.rank();
        }
        return new Tensor[] {Tensor.of(a, r, in), Tensor.of(b, out, r)};
    }

    private static Tensor[] linear(String module, List<LoraLayer> parts, List<Double> w) {
        int r = parts.getFirst().rank();
        for (LoraLayer l : parts)
            if (l.rank() != r) throw new IllegalArgumentException("linear combination needs equal ranks; " + module + " has ranks " + parts.stream().map(LoraLayer::rank).toList() + " (use cat or svd)");
        int in = parts.getFirst().loraA().dim(1), out = parts.getFirst().loraB().dim(0);
        float[] a = new float[r * in], b = new float[out * r];
        for (int p = 0; p < parts.size(); p++) {
            LoraLayer l = parts.get(p);
            float fa = (float) (Math.sqrt(w.get(p)) * l.scaling()), fb = (float) Math.sqrt(w.get(p));
            float[] la = l.loraA().toFloatArray(), lb = l.effectiveB().toFloatArray();
            for (int i = 0; i < a.length; i++) a[i] += fa * la[i];
            for (int i = 0; i < b.length; i++) b[i] += fb * lb[i];
        }
        return new Tensor[] {Tensor.of(a, r, in), Tensor.of(b, out, r)};
    }

    private static Tensor[] svd(List<LoraLayer> parts, List<Double> w, int rank) {
        int in = parts.getFirst().loraA().dim(1), out = parts.getFirst().loraB().dim(0);
        Tensor delta = Tensor.zeros(out, in);
        for (int p = 0; p < parts.size(); p++) {
            LoraLayer l = parts.get(p);
            Tensor d = l.deltaWeight();          // s B A
            float f = (float) (double) w.get(p);
            float[] dd = d.data(), acc = delta.data();
            for (int i = 0; i < acc.length; i++) acc[i] += f * dd[i];
        }
        int r = Math.min(rank, Math.min(in, out));
        Svd.Result s = Svd.truncated(delta, r);   // u [out, k], s [k], v [in, k]
        int k = s.k();
        float[] a = new float[r * in], b = new float[out * r];
        for (int j = 0; j < r; j++) {
            for (int i = 0; i < in; i++) a[j * in + i] = (float) s.v()[i * k + j];
            for (int o = 0; o < out; o++) b[o * r + j] = (float) (s.u()[o * k + j] * s.s()[j]);
        }
        return new Tensor[] {Tensor.of(a, r, in), Tensor.of(b, out, r)};
    }

    /** {@code B A} of a factor pair, [out, in] (tests and diagnostics). */
    public static Tensor product(Tensor[] ab) {
        Tensor d = Tensor.zeros(ab[1].dim(0), ab[0].dim(1));
        Gemm.matmul(ab[1], ab[0], d, false);
        return d;
    }
}
