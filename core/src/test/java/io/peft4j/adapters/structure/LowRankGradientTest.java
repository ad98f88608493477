package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.Tape;
import io.peft4j.kernels.Gemm;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The low-rank structure of LoRA's gradient ("Computational Limits of Low-Rank Adaptation (LoRA) for Transformer-Based
 * Models", arXiv 2406.03136): one training step of a LoRA layer costs the base's own GEMMs plus exactly
 * {@code 3 N r (in + out)} multiply-adds (forward x A^T and (.)B^T; backward dB, dY B, dA and dX through A), grows with
 * r and never forms an out x in product; and its gradients equal the dense computation through
 * {@code dW = s dY^T X}: {@code dA = B^T dW} and {@code dB = dW A^T}.
 */
class LowRankGradientTest {
    static final int IN = 96, OUT = 80, N = 6;

    record Step(LoraLayer layer, Tensor x, Tensor seed, Gemm.Counts counts) {}

    /** One forward + backward of a LoRA layer (r, alpha 2r) on a random [N, in] input with a random output gradient. */
    static Step step(int r, boolean inputGrad) {
        Map<String, Linear> lin = new LinkedHashMap<>();
        lin.put("proj", new Linear("proj", Tensor.randn(1, 0.2f, OUT, IN), Tensor.randn(2, 0.1f, OUT)));
        Module mod = new Module() {
            @Override public Map<String, Linear> linears() { return lin; }
            @Override public Map<String, Tensor> parameters() { return Map.of(); }
        };
        LoraModel lm = new LoraModel(mod, 3);
        lm.add("default", LoraConfig.builder().r(r).alpha(2 * r).targets("proj").build());
        LoraLayer l = lm.layers("default").get("proj");
        float[] nb = Tensor.randn(4, 0.3f, OUT, r).data();
        System.arraycopy(nb, 0, l.loraB().data(), l.loraB().dataOffset(), nb.length);
        Tensor x = Tensor.randn(5, 1f, N, IN).requiresGrad(inputGrad);
        Tensor seed = Tensor.randn(6, 1f, N, OUT);
        Gemm.resetThreadCounts();
        try (Tape tape = Tape.record()) {
            Tensor y = lin.get("proj").forward(x);
            tape.backward(y, seed);
        }
        return new Step(l, x, seed, Gemm.threadCounts());
    }

    @Test
    void aStepCostsTheBaseGemmsPlusThreeNRInPlusOutAndNoOutByInProduct() {
        long baseWithDx = 2L * N * IN * OUT, baseNoDx = (long) N * IN * OUT;
        long previous = -1;
        for (int r : new int[] {1, 2, 4, 8, 16}) {
            Step s = step(r, true);
            long adapter = s.counts().multiplyAdds() - baseWithDx;
            assertEquals(3L * N * r * (IN + OUT), adapter, "rank " + r + ": adapter multiply-adds");
            // outputs are [N, in|out|r] or the [r, in] / [out, r] factor gradients: never [out, in]
            assertTrue(s.counts().largestOutput() <= (long) Math.max(N, r) * Math.max(IN, OUT) && s.counts().largestOutput() < (long) IN * OUT,
                    "rank " + r + ": largest GEMM output " + s.counts().largestOutput() + " (an out x in product would be " + IN * OUT + ")");
            if (previous >= 0) assertEquals(2 * previous, adapter, "linear in r");
            previous = adapter;
            // a frozen input: no dX at all; the adapter's part is forward N r (in + out) + dB, dY B (N r out each) + dA (N r in)
            Step f = step(r, false);
            assertEquals(baseNoDx + (long) N * r * (2 * IN + 3 * OUT), f.counts().multiplyAdds(), "rank " + r + " without dX");
        }
    }

    @Test
    void gradientsEqualTheDenseComputation() {
        int r = 4;
        Step s = step(r, true);
        LoraLayer l = s.layer();
        double sc = l.scaling();
        float[] x = s.x().toFloatArray(), g = s.seed().toFloatArray(), a = l.loraA().toFloatArray(), b = l.loraB().toFloatArray();
        float[] w = l.base().weight().toFloatArray();
        double[] dW = new double[OUT * IN];                       // s dY^T X: the full-rank gradient LoRA never forms
        for (int o = 0; o < OUT; o++) for (int i = 0; i < IN; i++) {
            double v = 0;
            for (int n = 0; n < N; n++) v += (double) g[n * OUT + o] * x[n * IN + i];
            dW[o * IN + i] = sc * v;
        }
        float[] dA = l.loraA().grad().toFloatArray(), dB = l.loraB().grad().toFloatArray(), dX = s.x().grad().toFloatArray();
        for (int j = 0; j < r; j++) for (int i = 0; i < IN; i++) {
            double v = 0;
            for (int o = 0; o < OUT; o++) v += b[o * r + j] * dW[o * IN + i];
            assertEquals(v, dA[j * IN + i], 1e-4 * (1 + Math.abs(v)), "dA[" + j + ", " + i + "] = (B^T dW)");
        }
        for (int o = 0; o < OUT; o++) for (int j = 0; j < r; j++) {
            double v = 0;
            for (int i = 0; i < IN; i++) v += dW[o * IN + i] * a[j * IN + i];
            assertEquals(v, dB[o * r + j], 1e-4 * (1 + Math.abs(v)), "dB[" + o + ", " + j + "] = (dW A^T)");
        }
        for (int n = 0; n < N; n++) for (int i = 0; i < IN; i++) {     // dX = dY (W + s B A)
            double v = 0;
            for (int o = 0; o < OUT; o++) {
                double ba = 0;
                for (int j = 0; j < r; j++) ba += (double) b[o * r + j] * a[j * IN + i];
                v += g[n * OUT + o] * (w[o * IN + i] + sc * ba);
            }
            assertEquals(v, dX[n * IN + i], 1e-4 * (1 + Math.abs(v)), "dX[" + n + ", " + i + "]");
        }
    }
}
