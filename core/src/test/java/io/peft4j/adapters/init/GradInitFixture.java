package io.peft4j.adapters.init;

import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.ToyModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.linalg.Dense;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Test fixture for the gradient-driven inits: the adapters' small Llama-named {@code ToyModel}, a calibration of
 * random next-token batches, an independent full-weight gradient (W made trainable on the tape, not through
 * {@code Calibrator}), and the DESIGN.md invariants checked on an adapted model.
 */
final class GradInitFixture {
    private GradInitFixture() {}

    /** The adapters' toy model, built deterministically from {@code seed * 1000}, with its calibration batches. */
    static final class Toy extends ToyModel {
        Toy(long seed, int d, int ffn, int vocab, int layers) { super(seed * 1000, d, ffn, vocab, layers); }

        /** {@code batches} batches of {@code rows} random inputs with random targets, fixed by {@code seed}. */
        Calibration calibration(int batches, int rows, long seed) {
            Tensor[] xs = new Tensor[batches];                       // each [rows, d]
            int[][] ys = new int[batches][rows];
            SplittableRandom rng = new SplittableRandom(seed);
            for (int i = 0; i < batches; i++) {
                xs[i] = Tensor.randn(seed + 17L * i, 1f, rows, d);
                for (int j = 0; j < rows; j++) ys[i][j] = rng.nextInt(vocab);
            }
            return new Calibration() {
                @Override public int batches() { return batches; }
                @Override public Tensor loss(int i) { return NnOps.crossEntropy(forward(xs[i]), ys[i], -100); }
            };
        }
    }

    /**
     * The mean over the calibration batches of dL/dW [out, in] (row-major double) for each named layer, computed by
     * making W itself trainable: an independent route from {@code Calibrator}'s hooks. The batches are
     * {@code m.calibration(batches, rows, seed)}.
     */
    static Map<String, double[]> fullGradients(Toy m, int batches, int rows, long seed, List<String> modules) {
        Calibration cal = m.calibration(batches, rows, seed);
        for (String n : modules) m.linears().get(n).weight().requiresGrad(true);
        try {
            for (int i = 0; i < cal.batches(); i++)
                try (Tape t = Tape.record()) { t.backward(cal.loss(i)); }
            Map<String, double[]> g = new LinkedHashMap<>();
            for (String n : modules) {
                Tensor w = m.linears().get(n).weight();
                double[] d = Dense.fromTensor(w.grad());
                for (int i = 0; i < d.length; i++) d[i] /= cal.batches();
                g.put(n, d);
            }
            return g;
        } finally {
            for (String n : modules) { Tensor w = m.linears().get(n).weight(); w.clearGrad(); w.requiresGrad(false); }
        }
    }

    /** Runs every calibration batch on the adapted model and leaves the gradient of the mean loss in the trainable factors. */
    static void meanLossGradients(LoraModel lm, String adapter, Calibration cal) {
        for (Tensor p : lm.parameters(adapter).values()) p.clearGrad();
        for (int i = 0; i < cal.batches(); i++)
            try (Tape t = Tape.record()) { t.backward(TensorOps.scale(cal.loss(i), 1f / cal.batches())); }
    }

    static double[] toDouble(Tensor t) { return Dense.fromTensor(t.rank() == 2 ? t : t.reshape(1, (int) t.numel())); }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    static double norm(double[] a) { return Math.sqrt(dot(a, a)); }

    static double cosine(double[] a, double[] b) { return dot(a, b) / (norm(a) * norm(b)); }

    /** ||a - b|| / ||b||. */
    static double relErr(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.sqrt(s) / norm(b);
    }

    /** The largest |(M^T M)_{ij} - c^2 delta_ij| over the columns of the row-major [rows, cols] matrix M. */
    static double gramError(double[] mtx, int rows, int cols, double c) {
        double worst = 0;
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++) {
                double s = 0;
                for (int k = 0; k < rows; k++) s += mtx[k * cols + i] * mtx[k * cols + j];
                worst = Math.max(worst, Math.abs(s - (i == j ? c * c : 0)));
            }
        return worst;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }

    /** Adds Gaussian noise to every trainable factor so a test exercises a trained-looking adapter. */
    static void perturbTrainables(LoraModel lm, String adapter, long seed, float std) {
        int i = 0;
        for (Tensor t : lm.parameters(adapter).values()) {
            float[] d = t.data(), n = Tensor.randn(seed + i++, std, t.shape()).data();
            for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
        }
    }

    /**
     * The shared invariants on an adapter "default" built on {@code toy.get()} by {@code method}: merged == unmerged and
     * unmerge restores; save -> load on a fresh model gives identical outputs with the same trainable factors and the
     * frozen ones frozen; the exported plain PEFT LoRA on the unchanged base gives the same outputs.
     */
    static void checkMergeSaveLoadExport(Supplier<Toy> toy, LoraModel lm, Toy m, Path dir) throws IOException {
        Tensor x = Tensor.randn(77, 1f, 5, m.d);
        float[] init = m.forward(x).toFloatArray();
        perturbTrainables(lm, "default", 40, 0.05f);
        float[] adapted = m.forward(x).toFloatArray();
        assertTrue(maxDiff(init, adapted) > 1e-4, "perturbed trainables change outputs");
        lm.merge();
        assertClose(adapted, m.forward(x).toFloatArray(), 3e-5f, "merged");
        lm.unmerge();
        assertArrayEquals(adapted, m.forward(x).toFloatArray(), "unmerged equals the adapter forward");

        Map<String, Tensor> trainable = new LinkedHashMap<>(lm.parameters("default"));
        lm.save(dir.resolve("method"), "default");
        assertTrue(Files.exists(dir.resolve("method").resolve(MethodConfig.FILE)));
        Toy fresh = toy.get();
        LoraModel lm2 = new LoraModel(fresh, 99);
        List<String> warnings = new ArrayList<>();
        lm2.load(dir.resolve("method"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertArrayEquals(adapted, fresh.forward(x).toFloatArray(), "reloaded adapter gives identical outputs");
        assertEquals(trainable.keySet(), lm2.parameters("default").keySet(), "the same factors are trainable after a reload");
        assertEquals(lm.method("default"), lm2.method("default"));

        lm.exportPlainLora("default").save(dir.resolve("plain"));
        Toy original = toy.get();
        LoraModel lm3 = new LoraModel(original, 5);
        lm3.load(dir.resolve("plain"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertClose(adapted, original.forward(x).toFloatArray(), 3e-5f, "exported plain LoRA on the unchanged base");
    }

    /** Finite differences of every trainable factor of adapter "default" on {@code m}. */
    static void gradCheck(String label, LoraModel lm, Toy m) {
        perturbTrainables(lm, "default", 70, 0.2f);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        assertFalse(params.isEmpty(), label + " trains something");
        Tensor x = Tensor.randn(8, 1f, 3, m.d);
        GradCheck.defaults().step(3e-3).check(label, in -> m.forward(x), params.toArray(new Tensor[0]));
    }

    /** The layers of adapter "default" by module. */
    static Map<String, LoraLayer> layers(LoraModel lm) { return lm.layers("default"); }
}
