package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The norm diagnostic of "Computational Limits of Low-Rank Adaptation (LoRA) for Transformer-Based Models" (Hu, Su,
 * Kuo, Song, Liu; arXiv 2406.03136). The paper shows (assuming SETH) that LoRA's gradient through attention can be
 * computed in almost linear time in the sequence length L only while the entries of the adapted projections
 * {@code X (W* + alpha B A / r)^T} stay below a threshold of order {@code sqrt(log L)}; above it no sub-quadratic
 * algorithm exists. Per adapted module this reports the quantities that bound those entries: the largest entry of the
 * base weight and of the adapter's update {@code s B M A}, the largest l2 norm of a row of {@code W + s B M A}
 * (so {@code |(x W^T)_o| <= ||x|| · that norm}), the resulting entry bound for input rows of norm R, and whether it
 * is below {@code sqrt(ln L)}.
 *
 * <p>A heuristic reading of an asymptotic result: the theorem's threshold is {@code o(sqrt(log L))} with unspecified
 * constants, and R (the norm of an input row: sqrt(in) for an RMS-normalised input with unit gain, the default) is an
 * assumption about the data. It says which modules are far from the efficient regime, not a hard limit.
 *
 * <p>The update is formed densely here ({@link LoraLayer#deltaWeight()}); that is fine for a one-off inspection, while
 * training never forms it: the fused LoRA op's gradients go through {@code x A^T} and {@code dY B} only.
 */
public final class NormThreshold {
    private NormThreshold() {}

    /**
     * One module's norms.
     *
     * @param weightMax  max |W_ij| of the base weight as held
     * @param deltaMax   max |(s B M A)_ij| of the adapter's update
     * @param rowNorm    max over output rows o of ||(W + s B M A)_o||_2
     * @param inputNorm  R, the assumed l2 norm of an input row
     * @param entryBound R · rowNorm: a bound on every entry of X (W + s B M A)^T
     * @param threshold  sqrt(ln L)
     */
    public record ModuleNorms(String module, double weightMax, double deltaMax, double rowNorm, double inputNorm,
                              double entryBound, double threshold) {
        public boolean below() { return entryBound < threshold; }
    }

    /** {@code sqrt(ln L)} for sequence length L >= 2. */
    public static double threshold(int seqLen) {
        if (seqLen < 2) throw new IllegalArgumentException("sequence length must be >= 2, got " + seqLen);
        return Math.sqrt(Math.log(seqLen));
    }

    /**
     * The norms of every module of {@code adapter} for sequence length {@code seqLen}; {@code inputNorm <= 0} takes
     * sqrt(in) per module.
     */
    public static List<ModuleNorms> of(LoraModel model, String adapter, int seqLen, double inputNorm) {
        double t = threshold(seqLen);
        List<ModuleNorms> out = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : model.layers(adapter).entrySet()) {
            LoraLayer l = e.getValue();
            int o = l.base().outFeatures(), in = l.base().inFeatures();
            Tensor w = l.base().weight().contiguous();
            float[] d = l.deltaWeight().data();                   // [out, in]
            float[] row = new float[in];
            double wMax = 0, dMax = 0, rowMax = 0;
            for (int i = 0; i < o; i++) {
                w.storage().readFloats(w.dtype(), w.offset() + (long) i * in, row, 0, in);
                double s = 0;
                for (int k = 0; k < in; k++) {
                    double wv = row[k], dv = d[i * in + k], v = wv + dv;
                    wMax = Math.max(wMax, Math.abs(wv));
                    dMax = Math.max(dMax, Math.abs(dv));
                    s += v * v;
                }
                rowMax = Math.max(rowMax, Math.sqrt(s));
            }
            double r = inputNorm > 0 ? inputNorm : Math.sqrt(in);
            out.add(new ModuleNorms(e.getKey(), wMax, dMax, rowMax, r, r * rowMax, t));
        }
        return out;
    }
}
