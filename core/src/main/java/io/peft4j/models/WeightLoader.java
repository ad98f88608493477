package io.peft4j.models;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;

/**
 * Fetches a model's tensors by HF name from a {@link WeightSource}, checking them against the shapes the config
 * implies. Checkpoints saved from a head class carry a prefix the base class lacks (or the other way round:
 * {@code transformer.h.0...} vs {@code h.0...}, {@code bert.encoder...} vs {@code encoder...}); lookups try the
 * name as given, then with each alternative prefix stripped (if present) or added (if absent).
 */
final class WeightLoader {
    private final WeightSource source;
    private final String[] prefixes;         // tried in order: "" first, then the alternatives

    WeightLoader(WeightSource source, String... altPrefixes) {
        this.source = source;
        this.prefixes = new String[altPrefixes.length + 1];
        this.prefixes[0] = "";
        System.arraycopy(altPrefixes, 0, this.prefixes, 1, altPrefixes.length);
    }

    /** The tensor stored for {@code name} (a float tensor of exactly {@code shape}), in its stored dtype and storage. */
    Tensor require(String name, int... shape) {
        Tensor t = optional(name, shape);
        if (t == null)
            throw new IllegalArgumentException(source.location() + ": missing tensor '" + name + "' (expected shape " + Arrays.toString(shape) + ")");
        return t;
    }

    /** Like {@link #require} but null when absent; a present tensor of the wrong shape is still an error. */
    Tensor optional(String name, int... shape) {
        for (String p : prefixes) {
            // an alternative prefix is stripped from names that carry it and added to names that lack it
            String key = p.isEmpty() ? name : name.startsWith(p) ? name.substring(p.length()) : p + name;
            Tensor t = source.getOrNull(key);
            if (t == null) continue;
            if (!Arrays.equals(t.shape(), shape))
                throw new IllegalArgumentException(source.location() + ": tensor '" + key + "' has shape " + Arrays.toString(t.shape())
                        + " but the config implies " + Arrays.toString(shape));
            if (!t.dtype().isFloat())
                throw new IllegalArgumentException(source.location() + ": tensor '" + key + "' has dtype " + t.dtype() + ", expected a float type");
            return t.name(name);
        }
        return null;
    }

    /** A small tensor (norm scale, bias) converted to dense heap F32 once at load: element-wise kernels then read it directly. */
    Tensor requireSmallF32(String name, int... shape) { return toF32(require(name, shape)); }

    private static Tensor toF32(Tensor t) {
        if (t.isDense() && t.dtype() == DType.F32) return t;
        return t.copyToF32().name(t.name());
    }
}
