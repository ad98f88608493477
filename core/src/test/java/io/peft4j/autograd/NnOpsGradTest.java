package io.peft4j.autograd;

import io.peft4j.testing.GradCheck;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * Finite-difference gradient check of every NnOps op, one table row per case (odd sizes throughout; attention with
 * GQA, causal on/off, query offsets, broadcast masks that receive gradients, shapes crossing the key/query tiles;
 * RoPE in both layouts with partial rotary dims; cross-entropy with ignored and all-ignored targets). Default
 * GradCheck tolerances unless a row says why not.
 */
class NnOpsGradTest {

    private static long seed = 1;

    private static Tensor p(float std, int... shape) { return Tensor.randn(seed++, std, shape).requiresGrad(true); }

    private static Tensor frozen(float std, int... shape) { return Tensor.randn(seed++, std, shape); }

    private static Arguments row(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        return Arguments.of(name, f, inputs);
    }

    static Stream<Arguments> cases() {
        List<Arguments> rows = new ArrayList<>();
        rows.add(row("softmax [3,7]", in -> NnOps.softmax(in[0]), p(1.5f, 3, 7)));
        rows.add(row("softmax [2,3,5]", in -> NnOps.softmax(in[0]), p(1f, 2, 3, 5)));
        rows.add(row("softmax [2,41] (longer than a vector)", in -> NnOps.softmax(in[0]), p(2f, 2, 41)));
        rows.add(row("logSoftmax [4,9]", in -> NnOps.logSoftmax(in[0]), p(1.5f, 4, 9)));
        rows.add(row("logSoftmax [1,33]", in -> NnOps.logSoftmax(in[0]), p(1f, 1, 33)));

        rows.add(row("crossEntropy [5,11] with ignored rows",
                in -> NnOps.crossEntropy(in[0], new int[] {3, -100, 0, 10, -100}, -100), p(2f, 5, 11)));
        rows.add(row("crossEntropy [6,37] custom ignore index",
                in -> NnOps.crossEntropy(in[0], new int[] {7, 36, 1, 7, 5, 0}, 7), p(2f, 6, 37)));
        rows.add(row("crossEntropy [3,5] all ignored",
                in -> NnOps.crossEntropy(in[0], new int[] {-100, -100, -100}, -100), p(1f, 3, 5)));
        rows.add(row("crossEntropy [2,3,19] rank 3",
                in -> NnOps.crossEntropy(in[0], new int[] {1, 18, 0, 5, 9, 2}), p(1f, 2, 3, 19)));

        rows.add(row("rmsNorm [3,4,13] weighted", in -> NnOps.rmsNorm(in[0], in[1], 1e-5f), p(1f, 3, 4, 13), p(1f, 13)));
        rows.add(row("rmsNorm [5,19] no weight", in -> NnOps.rmsNorm(in[0], null, 1e-6f), p(1f, 5, 19)));
        rows.add(row("rmsNorm [4,21] frozen weight", in -> NnOps.rmsNorm(in[0], in[1], 1e-5f), p(1f, 4, 21), frozen(1f, 21)));
        rows.add(row("rmsNorm [40,7] weight only trainable (partial sums)", in -> NnOps.rmsNorm(in[0], in[1], 1e-5f), frozen(1f, 40, 7), p(1f, 7)));
        rows.add(row("layerNorm [3,17] weight+bias", in -> NnOps.layerNorm(in[0], in[1], in[2], 1e-5f), p(1f, 3, 17), p(1f, 17), p(1f, 17)));
        rows.add(row("layerNorm [2,3,9] no affine", in -> NnOps.layerNorm(in[0], null, null, 1e-5f), p(1f, 2, 3, 9)));
        rows.add(row("layerNorm [4,11] bias only", in -> NnOps.layerNorm(in[0], null, in[1], 1e-5f), p(1f, 4, 11), p(1f, 11)));
        rows.add(row("layerNorm [33,6] affine only trainable", in -> NnOps.layerNorm(in[0], in[1], in[2], 1e-5f), frozen(1f, 33, 6), p(1f, 6), p(1f, 6)));

        rows.add(row("gelu tanh [5,7]", in -> NnOps.gelu(in[0], true), p(2f, 5, 7)));
        rows.add(row("gelu erf [5,7]", in -> NnOps.gelu(in[0], false), p(2f, 5, 7)));
        rows.add(row("gelu erf [53]", in -> NnOps.gelu(in[0], false), p(3f, 53)));
        rows.add(row("silu [4,9]", in -> NnOps.silu(in[0]), p(2f, 4, 9)));
        rows.add(row("swiglu [3,23]", in -> NnOps.swiglu(in[0], in[1]), p(2f, 3, 23), p(1f, 3, 23)));
        rows.add(row("swiglu [37] frozen up", in -> NnOps.swiglu(in[0], in[1]), p(2f, 37), frozen(1f, 37)));

        RopeTable half = RopeTable.of(RopeTable.Layout.ROTATE_HALF, 8, 16, 10000);
        RopeTable inter = RopeTable.of(RopeTable.Layout.INTERLEAVED, 6, 16, 500);
        RopeTable halfPartial = RopeTable.of(RopeTable.Layout.ROTATE_HALF, 10, 4, 16, 100);
        RopeTable interPartial = RopeTable.of(RopeTable.Layout.INTERLEAVED, 9, 6, 16, 100);
        RopeTable wide = RopeTable.of(RopeTable.Layout.INTERLEAVED, 40, 36, 8, 10000);
        rows.add(row("rope rotate-half [2,3,2,8]", in -> NnOps.rope(in[0], half, new int[] {0, 5, 11}), p(1f, 2, 3, 2, 8)));
        rows.add(row("rope interleaved [1,4,3,6]", in -> NnOps.rope(in[0], inter, new int[] {3, 1, 15, 2}), p(1f, 1, 4, 3, 6)));
        rows.add(row("rope rotate-half partial 4/10", in -> NnOps.rope(in[0], halfPartial, new int[] {7, 9}), p(1f, 2, 2, 3, 10)));
        rows.add(row("rope interleaved partial 6/9", in -> NnOps.rope(in[0], interPartial, new int[] {2, 13, 4}), p(1f, 1, 3, 2, 9)));
        rows.add(row("rope interleaved 36/40 (vector path)", in -> NnOps.rope(in[0], wide, new int[] {6, 1}), p(1f, 1, 2, 1, 40)));

        rows.add(row("attention plain B2 T3 S5 H2 Dh4",
                in -> NnOps.attention(in[0], in[1], in[2], false, 0, null, 0.5f), p(1f, 2, 3, 2, 4), p(1f, 2, 5, 2, 4), p(1f, 2, 5, 2, 4)));
        rows.add(row("attention causal GQA Hq4/Hkv2 T5 Dh3",
                in -> NnOps.attention(in[0], in[1], in[2], true), p(1f, 1, 5, 4, 3), p(1f, 1, 5, 2, 3), p(1f, 1, 5, 2, 3)));
        rows.add(row("attention causal queryOffset 3 (T2 S5), GQA Hq3/Hkv1",
                in -> NnOps.attention(in[0], in[1], in[2], true, 3, null, 0.6f), p(1f, 2, 2, 3, 5), p(1f, 2, 5, 1, 5), p(1f, 2, 5, 1, 5)));
        rows.add(row("attention mask [B,1,T,S] trainable, causal",
                in -> NnOps.attention(in[0], in[1], in[2], true, 0, in[3], 0.7f),
                p(1f, 2, 4, 2, 3), p(1f, 2, 4, 2, 3), p(1f, 2, 4, 2, 3), p(1f, 2, 1, 4, 4)));
        rows.add(row("attention mask [S] broadcast over B, H, T (shared gradient)",
                in -> NnOps.attention(in[0], in[1], in[2], false, 0, in[3], 0.5f),
                p(1f, 2, 3, 2, 4), p(1f, 2, 6, 2, 4), p(1f, 2, 6, 2, 4), p(1f, 6)));
        rows.add(row("attention frozen q, trainable k v, mask [Hq,T,1]",
                in -> NnOps.attention(in[0], in[1], in[2], false, 0, in[3], 0.5f),
                frozen(1f, 1, 3, 4, 2), p(1f, 1, 5, 2, 2), p(1f, 1, 5, 2, 2), p(1f, 4, 3, 1)));
        // T > 32 and S > 64 cross the query-block and key-tile boundaries; scores stay O(1) with scale 1/sqrt(Dh)
        rows.add(row("attention tiles T35 S70 causal offset 35, Dh 5",
                in -> NnOps.attention(in[0], in[1], in[2], true, 35, null, 0.45f), p(1f, 1, 35, 1, 5), p(1f, 1, 70, 1, 5), p(1f, 1, 70, 1, 5)));

        rows.add(row("dropout p=0.3", in -> NnOps.dropout(in[0], 0.3f, 42, true), p(1f, 7, 9)));
        rows.add(row("dropout p=0.9 [301]", in -> NnOps.dropout(in[0], 0.9f, -5, true), p(1f, 301)));
        return rows.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradientMatchesFiniteDifferences(String name, Function<Tensor[], Tensor> f, Tensor[] inputs) {
        GradCheck.defaults().check(name, f, inputs);
    }
}
