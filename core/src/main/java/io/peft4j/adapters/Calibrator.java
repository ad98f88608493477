package io.peft4j.adapters;

import io.peft4j.autograd.Tape;
import io.peft4j.kernels.Gemm;
import io.peft4j.nn.Linear;
import io.peft4j.nn.LinearHook;
import io.peft4j.tensor.Tensor;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Calibration passes for data-driven initialisations: the full-weight gradient of frozen linear layers (LoRA-GA,
 * LoRA-SB) and their input activations (EVA). Temporary hooks observe the layers; the base weights never get
 * gradient buffers, the gradient {@code dL/dW = dY^T X} is accumulated directly from the hooks.
 */
public final class Calibrator {
    private Calibrator() {}

    /**
     * The mean over {@code nBatches} calibration batches of {@code dL/dW} [out, in] for each target layer (by module
     * name). Dropout is whatever the model's runtime says; callers normally calibrate in eval mode.
     */
    public static Map<String, Tensor> weightGradients(Map<String, Linear> targets, Calibration cal, int nBatches, PrintStream log) {
        int n = Math.min(nBatches, cal.batches());
        if (n <= 0) throw new IllegalArgumentException("calibration needs at least one batch");
        Map<String, Tensor> grads = new LinkedHashMap<>();
        Map<Linear, LinearHook> hooks = new LinkedHashMap<>();
        Tensor probe = Tensor.zeros(1).requiresGrad(true);      // forces the tape to record through frozen layers
        for (Map.Entry<String, Linear> e : targets.entrySet()) {
            Linear lin = e.getValue();
            Tensor g = Tensor.zeros(lin.outFeatures(), lin.inFeatures());     // [out, in]
            grads.put(e.getKey(), g);
            LinearHook h = (x, y) -> {
                int in = lin.inFeatures(), out = lin.outFeatures();
                Tensor x2 = x.contiguous().reshape(-1, in);                   // [N, in]
                Tensor res = y.copyToF32();
                return Tape.record(res, () -> {
                    Tensor gr = res.grad();
                    if (gr == null) return;
                    Tensor g2 = Tensor.of(gr.data(), x2.dim(0), out);         // [N, out]
                    Gemm.matmul(g2.transpose(0, 1), x2, g, true);             // dW += dY^T X
                    if (y.requiresGrad()) {
                        float[] yg = y.gradBuffer().data(), gd = gr.data();
                        for (int i = 0; i < gd.length; i++) yg[i] += gd[i];
                    }
                }, y, probe);
            };
            hooks.put(lin, h);
            lin.addHook(h);
        }
        try {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                try (Tape tape = Tape.record()) {
                    Tensor loss = cal.loss(i);
                    tape.backward(loss);
                    progress(log, "gradient", i + 1, n, t0, loss.getFlat(0));
                }
            }
        } finally {
            hooks.forEach(Linear::removeHook);
        }
        for (Tensor g : grads.values()) {
            float[] d = g.data();
            for (int i = 0; i < d.length; i++) d[i] /= n;
        }
        return grads;
    }

    /**
     * Runs {@code nBatches} calibration batches (no gradients) and hands each target layer's input rows [N, in]
     * (padding rows dropped when the calibration knows them) to {@code sink}, in batch order.
     */
    public static void inputActivations(Map<String, Linear> targets, Calibration cal, int nBatches,
                                        BiConsumer<String, Tensor> sink, PrintStream log) {
        int n = Math.min(nBatches, cal.batches());
        Map<Linear, LinearHook> hooks = new LinkedHashMap<>();
        boolean[][] mask = new boolean[1][];
        for (Map.Entry<String, Linear> e : targets.entrySet()) {
            Linear lin = e.getValue();
            LinearHook h = (x, y) -> {
                Tensor x2 = x.contiguous().reshape(-1, lin.inFeatures()).copyToF32();   // [N, in]
                sink.accept(e.getKey(), mask[0] == null ? x2 : keepRows(x2, mask[0]));
                return y;
            };
            hooks.put(lin, h);
            lin.addHook(h);
        }
        try {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                mask[0] = cal.realTokens(i);
                Tensor loss = cal.loss(i);
                progress(log, "activation", i + 1, n, t0, loss.getFlat(0));
            }
        } finally {
            hooks.forEach(Linear::removeHook);
        }
    }

    private static Tensor keepRows(Tensor x, boolean[] keep) {
        int n = x.dim(0), d = x.dim(1);
        if (keep.length != n) return x;
        int kept = 0;
        for (boolean k : keep) if (k) kept++;
        float[] src = x.data(), dst = new float[kept * d];
        for (int i = 0, j = 0; i < n; i++) if (keep[i]) System.arraycopy(src, i * d, dst, j++ * d, d);
        return Tensor.of(dst, kept, d);
    }

    private static void progress(PrintStream log, String what, int i, int n, long t0, double loss) {
        if (log == null) return;
        double s = (System.nanoTime() - t0) / 1e9;
        log.printf(Locale.ROOT, "calibration (%s) batch %d/%d | loss %.4f | %.1f s%n", what, i, n, loss, s);
    }
}
