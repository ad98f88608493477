package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodContext;
import io.peft4j.tensor.Tensor;

/** Shared pieces of the structure family: PEFT's default factors and configs without LoRA's scaling or dropout. */
final class Factors {
    private Factors() {}

    /**
     * A as PEFT initialises it ({@code init_lora_weights=True}: Kaiming-uniform with a = sqrt 5, i.e.
     * U(-1/sqrt in, 1/sqrt in)) or, for {@code "gaussian"}, N(0, (1/r)^2) as PEFT's gaussian init; [r, in].
     */
    static Tensor loraA(MethodContext ctx, String init, int r, int in) {
        return switch (init) {
            case "kaiming" -> ctx.uniform(1 / Math.sqrt(in), r, in);
            case "gaussian" -> ctx.gaussian(1.0 / r, r, in);
            default -> throw new IllegalArgumentException("method " + ctx.options().method() + ": a_init must be kaiming or gaussian, got '" + init + "'");
        };
    }

    /**
     * {@code c} with LoRA's fixed scaling 1 on every module (alpha = r, an alpha_pattern entry by exact module name
     * where a rank_pattern changes the rank, rsLoRA off) and, when {@code noDropout}, dropout 0.
     */
    static LoraConfig unitScaling(LoraConfig c, Iterable<String> modules, boolean noDropout) {
        LoraConfig.Builder b = c.toBuilder().clearRankPattern().alpha(c.r()).rslora(false);
        if (noDropout) b.dropout(0);
        c.rankPattern().forEach(b::rankPattern);
        for (String m : modules) if (c.rankFor(m) != c.r()) b.alphaPattern(m, c.rankFor(m));
        return b.build();
    }

    /** Multiplies row {@code i} of an [rows, cols] block by {@code f}. */
    static void scaleRow(float[] d, int off, int cols, int i, float f) {
        for (int k = 0, p = off + i * cols; k < cols; k++, p++) d[p] *= f;
    }

    /** Multiplies column {@code j} of an [rows, cols] block by {@code f}. */
    static void scaleColumn(float[] d, int off, int rows, int cols, int j, float f) {
        for (int o = 0, p = off + j; o < rows; o++, p += cols) d[p] *= f;
    }
}
