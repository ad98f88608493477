package io.peft4j.adapters.init;

import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.init.GradInitFixture.Toy;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.peft4j.adapters.init.GradInitFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** LoRA-SB (arXiv 2411.19557): B R A is the truncated SVD of the estimated first full-fine-tuning update; only R trains. */
class LoraSbTest {
    private static final List<String> TARGETS = List.of("q_proj", "v_proj", "up_proj", "down_proj");

    private static Toy toy() { return new Toy(3, 16, 24, 13, 2); }

    private static LoraConfig config(int r) { return LoraConfig.builder().r(r).alpha(2 * r).targets(TARGETS).build(); }

    private static LoraModel adapt(Toy m, LoraConfig c, Calibration cal, Map<String, String> opts) {
        LoraModel lm = new LoraModel(m, 1);
        lm.add("default", c, MethodConfig.of("lora-sb", opts), cal, null);
        return lm;
    }

    /** The estimated update from an independently computed gradient: -lr sign(G) (Adam) or -lr G (SGD). */
    private static double[] estimatedUpdate(double[] g, String update, double lr) {
        double[] dw = new double[g.length];
        for (int i = 0; i < g.length; i++) dw[i] = update.equals("adam") ? -lr * Math.signum(g[i]) : -lr * g[i];
        return dw;
    }

    /**
     * s B R A equals the best rank-r approximation of the estimated update (Eckart-Young: its error is the tail of the
     * singular values); B and A are orthonormal, R = S_r is diagonal and descending, and s = 1 whatever alpha was.
     */
    @ParameterizedTest
    @ValueSource(strings = {"adam", "sgd"})
    void initIsTheTruncatedSvdOfTheEstimatedUpdate(String update) {
        Toy m = toy();
        double lr = update.equals("adam") ? 2e-3 : 0.5;
        LoraModel lm = adapt(m, config(3), m.calibration(4, 10, 9), Map.of("batches", "4", "update", update, "lr", Double.toString(lr)));
        assertEquals(3.0, lm.config("default").loraAlpha(), "alpha = r: no scaling hyper-parameter");
        Map<String, double[]> g = fullGradients(toy(), 4, 10, 9, List.copyOf(layers(lm).keySet()));
        for (Map.Entry<String, LoraLayer> e : layers(lm).entrySet()) {
            LoraLayer l = e.getValue();
            int out = l.base().outFeatures(), in = l.base().inFeatures(), r = l.rank();
            assertEquals(1f, l.scaling(), "s = 1");
            double[] dw = estimatedUpdate(g.get(e.getKey()), update, lr);
            Svd.Result full = Svd.thin(dw, out, in);
            double[] best = full.truncate(r).reconstruct();
            double[] got = toDouble(l.deltaWeight());
            assertTrue(relErr(got, best) < 1e-4, e.getKey() + ": s B R A vs truncated SVD of ΔW, relative error " + relErr(got, best));
            double tail = 0;
            for (int j = r; j < full.k(); j++) tail += full.s()[j] * full.s()[j];
            assertEquals(Math.sqrt(tail), Dense.frobeniusDiff(got, dw), 1e-4 * Dense.frobenius(dw), e.getKey() + ": residual is the singular tail");
            assertTrue(gramError(toDouble(l.loraB()), out, r, 1) < 1e-5, "B has orthonormal columns");
            assertTrue(gramError(Dense.transpose(toDouble(l.loraA()), r, in), in, r, 1) < 1e-5, "A has orthonormal rows");
            double[] rr = toDouble(l.mid());
            for (int i = 0; i < r; i++)
                for (int j = 0; j < r; j++)
                    if (i == j) assertEquals(full.s()[i], rr[i * r + j], 1e-5 * full.s()[0], "R holds the singular values");
                    else assertEquals(0, rr[i * r + j], 0.0, "R starts diagonal");
            assertFalse(l.loraA().requiresGrad() || l.loraB().requiresGrad(), "A and B are frozen");
            assertTrue(l.mid().requiresGrad(), "R trains");
        }
    }

    /**
     * As in the authors' code the base is not offset: at step 0 the model is W + (ΔW)_r, the simulated first step.
     * With rewrite_base=true (a peft4j option) the outputs are unchanged instead.
     */
    @Test
    void stepZeroCarriesTheSimulatedUpdateUnlessTheBaseIsRewritten() {
        Toy m = toy();
        Tensor x = Tensor.randn(4, 1f, 6, 16);
        float[] base = m.forward(x).toFloatArray();
        double lr = 0.05;
        LoraModel lm = adapt(m, config(3), m.calibration(4, 10, 9), Map.of("batches", "4", "lr", Double.toString(lr)));
        assertTrue(lm.baseOffsets("default").isEmpty(), "no base offset by default");
        float[] adapted = m.forward(x).toFloatArray();
        assertTrue(maxDiff(base, adapted) > 1e-3, "the init changes the outputs");

        Toy stepped = toy();                                   // W + (ΔW)_r written by hand
        Map<String, double[]> g = fullGradients(toy(), 4, 10, 9, List.copyOf(layers(lm).keySet()));
        for (String module : g.keySet()) {
            Linear lin = stepped.linears().get(module);
            int out = lin.outFeatures(), in = lin.inFeatures();
            double[] upd = Svd.truncated(estimatedUpdate(g.get(module), "adam", lr), out, in, 3).reconstruct();
            float[] w = lin.weight().toFloatArray();
            for (int i = 0; i < w.length; i++) w[i] += (float) upd[i];
            lin.setWeight(Tensor.of(w, out, in));
        }
        assertClose(stepped.forward(x).toFloatArray(), adapted, 1e-4f, "model at init = W + (ΔW)_r");

        Toy m2 = toy();
        LoraModel rewritten = adapt(m2, config(3), m2.calibration(4, 10, 9), Map.of("batches", "4", "lr", Double.toString(lr), "rewrite_base", "true"));
        assertEquals(layers(rewritten).keySet(), rewritten.baseOffsets("default").keySet());
        assertClose(base, m2.forward(x).toFloatArray(), 3e-5f, "rewrite_base keeps the outputs at step 0");
    }

    /**
     * Only R moves, so one SGD step of rate eta on R moves W by {@code -eta B B^T G A^T A} (exactly: linear in R).
     * With the SGD estimate, B and A span G's own top singular vectors and that step is {@code -eta G_r}: the best
     * rank-r approximation of the full-fine-tuning step, the paper's "optimal approximation of the gradient".
     */
    @ParameterizedTest
    @ValueSource(strings = {"adam", "sgd"})
    void aStepOnRIsTheFullGradientProjectedOntoTheInitialSubspaces(String update) {
        Toy m = toy();
        Calibration cal = m.calibration(4, 10, 9);
        LoraModel lm = adapt(m, config(3), cal, Map.of("batches", "4", "update", update));
        Map<String, double[]> g = fullGradients(toy(), 4, 10, 9, List.copyOf(layers(lm).keySet()));
        Map<String, double[]> before = new java.util.LinkedHashMap<>();
        layers(lm).forEach((k, l) -> before.put(k, toDouble(l.deltaWeight())));
        meanLossGradients(lm, "default", cal);
        double eta = 0.1;
        for (Tensor p : lm.parameters("default").values()) {
            float[] d = p.data(), gr = p.grad().toFloatArray();
            for (int i = 0; i < gr.length; i++) d[p.dataOffset() + i] -= (float) (eta * gr[i]);
        }
        for (Map.Entry<String, LoraLayer> e : layers(lm).entrySet()) {
            LoraLayer l = e.getValue();
            int out = l.base().outFeatures(), in = l.base().inFeatures(), r = l.rank();
            double[] step = toDouble(l.deltaWeight()), b0 = before.get(e.getKey());
            for (int i = 0; i < step.length; i++) step[i] = (step[i] - b0[i]) / -eta;
            double[] b = toDouble(l.loraB()), a = toDouble(l.loraA()), ge = g.get(e.getKey());
            double[] proj = Dense.matmul(Dense.matmul(Dense.matmulNT(b, out, r, b, out), out, out, ge, in), out, in, Dense.matmulTN(a, r, in, a, in), in);
            assertTrue(relErr(step, proj) < 2e-3, e.getKey() + ": step on R = B B^T G A^T A, error " + relErr(step, proj));
            if (update.equals("sgd")) {
                double[] gr = Svd.truncated(ge, out, in, r).reconstruct();
                assertTrue(relErr(step, gr) < 2e-3, e.getKey() + ": with the SGD estimate the step is G_r, error " + relErr(step, gr));
            }
        }
    }

    /**
     * r^2 trainables per layer: counted on the toy, and the paper's ratios as arithmetic. At equal rank the ratio to
     * LoRA is (in + out) / r per layer (512 for 4096 x 4096 at r = 16). The headline "27-90x fewer" compares
     * LoRA-SB at a higher rank with LoRA at its usual one (e.g. r = 96 vs r = 32 on all linear layers): ~40x for
     * Llama-2-7B and Mistral-7B shapes, ~27x for Llama-3.2-3B.
     */
    @Test
    void trainableCountIsRSquaredPerLayer() {
        Toy m = toy();
        LoraModel lm = adapt(m, config(3), m.calibration(2, 8, 1), Map.of("batches", "2"));
        assertEquals(8L * 3 * 3, lm.trainableCount("default"), "8 layers x r^2");
        assertEquals(layers(lm).size(), lm.parameters("default").size(), "one trainable tensor (R) per layer");
        Toy mp = toy();
        LoraModel plain = new LoraModel(mp, 1);
        plain.add("default", config(3));
        assertEquals(2L * 3 * ((16 + 16) + (16 + 8) + (16 + 24) + (24 + 16)), plain.trainableCount("default"));
        assertEquals((16 + 16 + 16 + 8 + 16 + 24 + 24 + 16) / 4.0 / 3, (double) plain.trainableCount("default") / lm.trainableCount("default"), 1e-9,
                "toy: LoRA / LoRA-SB = mean (in + out) / r");

        assertEquals(512.0, loraPerLayer(16, 4096, 4096) / (16.0 * 16), 1e-9, "equal rank: (in + out) / r");
        // {in, out} of q, k, v, o, gate, up, down
        int[][] llama2 = {{4096, 4096}, {4096, 4096}, {4096, 4096}, {4096, 4096}, {4096, 11008}, {4096, 11008}, {11008, 4096}};
        int[][] mistral = {{4096, 4096}, {4096, 1024}, {4096, 1024}, {4096, 4096}, {4096, 14336}, {4096, 14336}, {14336, 4096}};
        int[][] llama32 = {{3072, 3072}, {3072, 1024}, {3072, 1024}, {3072, 3072}, {3072, 8192}, {3072, 8192}, {8192, 3072}};
        assertEquals(38.7, ratio(llama2, 32, 96), 0.05);
        assertEquals(40.6, ratio(mistral, 32, 96), 0.05);
        assertEquals(83_886_080L, 32 * lora(mistral, 32), "Mistral-7B LoRA r=32: 83.9M, as the paper's table");
        assertEquals(2_064_384L, 32 * 7L * 96 * 96, "Mistral-7B LoRA-SB r=96: 2.06M");
        assertEquals(26.9, ratio(llama32, 32, 96), 0.05);
    }

    private static long loraPerLayer(int r, int in, int out) { return (long) r * (in + out); }

    private static long lora(int[][] shapes, int r) {
        long n = 0;
        for (int[] s : shapes) n += loraPerLayer(r, s[0], s[1]);
        return n;
    }

    private static double ratio(int[][] shapes, int rLora, int rSb) { return (double) lora(shapes, rLora) / (shapes.length * (long) rSb * rSb); }

    @Test
    void mergeSaveLoadAndExportKeepOutputs(@TempDir Path dir) throws IOException {
        Toy m = toy();
        LoraModel lm = adapt(m, config(3), m.calibration(3, 8, 2), Map.of("batches", "3", "lr", "0.01"));
        checkMergeSaveLoadExport(LoraSbTest::toy, lm, m, dir);
    }

    @Test
    void mergeSaveLoadAndExportWithARewrittenBase(@TempDir Path dir) throws IOException {
        Toy m = toy();
        LoraModel lm = adapt(m, config(3), m.calibration(3, 8, 2), Map.of("batches", "3", "lr", "0.01", "rewrite_base", "true"));
        checkMergeSaveLoadExport(LoraSbTest::toy, lm, m, dir);
    }

    @Test
    void gradientOfRMatchesFiniteDifferences() {
        Toy m = new Toy(4, 6, 7, 5, 1);
        LoraModel lm = adapt(m, LoraConfig.builder().r(2).alpha(4).targets(TARGETS).build(), m.calibration(2, 6, 3), Map.of("batches", "2", "lr", "0.1"));
        gradCheck("lora-sb", lm, m);
    }

    @Test
    void optionsAreValidated() {
        Toy m = toy();
        var bad = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(2), m.calibration(1, 4, 1), Map.of("update", "lion")));
        assertTrue(bad.getMessage().contains("update") && bad.getMessage().contains("adam"), bad.getMessage());
        var lr = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(2), m.calibration(1, 4, 1), Map.of("lr", "-1")));
        assertTrue(lr.getMessage().contains("lr"), lr.getMessage());
        var rank = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(9), m.calibration(1, 4, 1), Map.of()));
        assertTrue(rank.getMessage().contains("v_proj"), rank.getMessage());
    }
}
