package io.peft4j.adapters.init;

import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.init.GradInitFixture.Toy;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Svd;
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

/** LoRA-GA (arXiv 2407.05000): the first update of the adapter follows the full-fine-tuning gradient. */
class LoraGaTest {
    private static final List<String> TARGETS = List.of("q_proj", "v_proj", "up_proj", "down_proj");

    private static Toy toy() { return new Toy(2, 16, 24, 13, 2); }

    private static LoraConfig config(int r, double alpha) { return LoraConfig.builder().r(r).alpha(alpha).targets(TARGETS).build(); }

    private static LoraModel adapt(Toy m, LoraConfig c, Calibration cal, Map<String, String> opts) {
        LoraModel lm = new LoraModel(m, 1);
        lm.add("default", c, MethodConfig.of("lora-ga", opts), cal, null);
        return lm;
    }

    /**
     * The paper's Theorem 3.1: after one SGD step the product changes by {@code -eta s^2 (G A^T A + B B^T G)}, which
     * with A = c V[:, :r]^T and B = c U[:, r:2r] is {@code -eta s^2 c^2 G_2r}, the best rank-2r approximation of the
     * full gradient. G is computed independently (W trainable on the tape); the adapter's gradients come from its own
     * backward on the rewritten base.
     */
    @ParameterizedTest
    @ValueSource(strings = {"stable", "gd_scale", "unit"})
    void firstStepOfTheProductIsTheRank2rPartOfTheFullGradient(String scale) {
        Toy m = toy();
        Calibration cal = m.calibration(4, 10, 7);
        LoraConfig c = config(3, 6);
        LoraModel lm = adapt(m, c, cal, Map.of("batches", "4", "scale", scale, "stable_gamma", "4"));
        Map<String, LoraLayer> layers = layers(lm);
        Map<String, double[]> g = fullGradients(toy(), 4, 10, 7, List.copyOf(layers.keySet()));
        meanLossGradients(lm, "default", cal);
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            LoraLayer l = e.getValue();
            int out = l.base().outFeatures(), in = l.base().inFeatures(), r = l.rank();
            double s = l.scaling();
            double cc = switch (scale) {
                case "stable" -> Math.sqrt(out) / 4;          // c^2 = out^(1/2) / gamma
                case "gd_scale" -> 1 / (s * s);
                default -> 1;
            };
            // first-order change of s B A per unit of -eta: s (dB A + B dA)
            double[] a = toDouble(l.loraA()), b = toDouble(l.loraB());
            double[] da = toDouble(l.loraA().grad()), db = toDouble(l.loraB().grad());
            double[] step = Dense.matmul(db, out, r, a, in);
            double[] bda = Dense.matmul(b, out, r, da, in);
            for (int i = 0; i < step.length; i++) step[i] = s * (step[i] + bda[i]);
            double[] want = Svd.truncated(g.get(e.getKey()), out, in, 2 * r).reconstruct();
            for (int i = 0; i < want.length; i++) want[i] *= s * s * cc;
            double err = relErr(step, want);
            assertTrue(err < 2e-3, e.getKey() + " (" + scale + "): first step vs s^2 c^2 G_2r, relative error " + err);
            if (scale.equals("gd_scale")) assertTrue(relErr(step, Svd.truncated(g.get(e.getKey()), out, in, 2 * r).reconstruct()) < 2e-3,
                    "gd_scale: the first step is plain SGD on the rank-2r part of the gradient");
        }
    }

    /**
     * A real SGD step (second-order term included): the change of W_eff points along -G with the cosine of the
     * rank-2r part, far better than plain LoRA (B = 0, random A) whose first step is the projection of G onto a
     * random r-dimensional row space.
     */
    @Test
    void firstSgdStepAlignsWithTheFullGradientFarBetterThanPlainLora() {
        Toy m = toy();
        Calibration cal = m.calibration(4, 10, 7);
        LoraConfig c = config(3, 6);
        LoraModel ga = adapt(m, c, cal, Map.of("batches", "4"));
        Toy mp = toy();
        Calibration calP = mp.calibration(4, 10, 7);
        LoraModel plain = new LoraModel(mp, 1);
        plain.add("default", c);
        Map<String, double[]> g = fullGradients(toy(), 4, 10, 7, List.copyOf(layers(ga).keySet()));
        double eta = 1e-2;
        Map<String, double[]> dGa = sgdStepDelta(ga, cal, eta), dPlain = sgdStepDelta(plain, calP, eta);
        double sumGa = 0, sumPlain = 0;
        for (String module : g.keySet()) {
            double[] neg = g.get(module).clone();
            for (int i = 0; i < neg.length; i++) neg[i] = -neg[i];
            LoraLayer l = layers(ga).get(module);
            int out = l.base().outFeatures(), in = l.base().inFeatures();
            double[] sv = Svd.thin(g.get(module), out, in).s();
            double kept = 0, all = 0;
            for (int j = 0; j < sv.length; j++) { all += sv[j] * sv[j]; if (j < 2 * l.rank()) kept += sv[j] * sv[j]; }
            double ideal = Math.sqrt(kept / all);              // cos(G_2r, G)
            double cGa = cosine(dGa.get(module), neg), cPlain = cosine(dPlain.get(module), neg);
            assertEquals(ideal, cGa, 0.02, module + ": LoRA-GA's first step has the cosine of the rank-2r part of G");
            assertTrue(cGa > cPlain + 0.15, module + ": LoRA-GA " + cGa + " vs plain LoRA " + cPlain);
            sumGa += cGa;
            sumPlain += cPlain;
        }
        assertTrue(sumGa / g.size() > 0.8, "mean cosine with -G: LoRA-GA " + sumGa / g.size() + ", plain " + sumPlain / g.size());
    }

    /** One SGD step of rate eta on every trainable factor; returns the change of each layer's s B A. */
    private static Map<String, double[]> sgdStepDelta(LoraModel lm, Calibration cal, double eta) {
        Map<String, double[]> before = new java.util.LinkedHashMap<>();
        layers(lm).forEach((k, l) -> before.put(k, toDouble(l.deltaWeight())));
        meanLossGradients(lm, "default", cal);
        for (Tensor p : lm.parameters("default").values()) {
            float[] d = p.data(), gr = p.grad().toFloatArray();
            for (int i = 0; i < gr.length; i++) d[p.dataOffset() + i] -= (float) (eta * gr[i]);
        }
        Map<String, double[]> delta = new java.util.LinkedHashMap<>();
        layers(lm).forEach((k, l) -> {
            double[] after = toDouble(l.deltaWeight()), b = before.get(k);
            for (int i = 0; i < after.length; i++) after[i] -= b[i];
            delta.put(k, after);
        });
        return delta;
    }

    /** A and B have orthogonal rows/columns of norm c (stable: out^(1/4)/sqrt(gamma)) and the gradient does not couple them. */
    @Test
    void stableScaleGivesOrthogonalFactorsOfTheStatedNorm() {
        Toy m = toy();
        Calibration cal = m.calibration(3, 10, 5);
        LoraModel lm = adapt(m, config(2, 16), cal, Map.of("batches", "3", "stable_gamma", "9"));
        Map<String, double[]> g = fullGradients(toy(), 3, 10, 5, List.copyOf(layers(lm).keySet()));
        for (Map.Entry<String, LoraLayer> e : layers(lm).entrySet()) {
            LoraLayer l = e.getValue();
            int out = l.base().outFeatures(), in = l.base().inFeatures(), r = l.rank();
            double c = Math.pow(out, 0.25) / 3;
            double[] a = toDouble(l.loraA()), b = toDouble(l.loraB());
            assertTrue(gramError(Dense.transpose(a, r, in), in, r, c) < 1e-5, e.getKey() + ": A A^T = c^2 I");
            assertTrue(gramError(b, out, r, c) < 1e-5, e.getKey() + ": B^T B = c^2 I");
            // B^T G A^T = c^2 U[:, r:2r]^T G V[:, :r] = 0: disjoint singular blocks
            double[] coupling = Dense.matmul(Dense.matmulTN(b, out, r, g.get(e.getKey()), in), r, in, Dense.transpose(a, r, in), r);
            double scale = c * c * Svd.thin(g.get(e.getKey()), out, in).s()[0];
            assertTrue(Dense.maxAbs(coupling) < 1e-4 * scale, e.getKey() + ": B^T G A^T vanishes, got " + Dense.maxAbs(coupling));
            assertEquals(16.0 / 2, l.scaling(), 1e-6, "LoRA-GA keeps the config's alpha / r");
        }
        assertFalse(lm.baseOffsets("default").isEmpty(), "W is offset");
    }

    @Test
    void outputsAreUnchangedAtInitBecauseTheBaseIsOffset() {
        Toy m = toy();
        Tensor x = Tensor.randn(3, 1f, 6, 16);
        float[] before = m.forward(x).toFloatArray();
        LoraModel lm = adapt(m, config(4, 8), m.calibration(2, 8, 1), Map.of("batches", "2"));
        assertEquals(layers(lm).keySet(), lm.baseOffsets("default").keySet(), "every target's base is offset");
        float[] after = m.forward(x).toFloatArray();
        assertClose(before, after, 3e-5f, "rewritten base + adapter");
        // the adapter is not zero: without it the rewritten base gives other outputs
        lm.disableAdapters();
        assertTrue(maxDiff(before, m.forward(x).toFloatArray()) > 1e-3, "the offset is real");
        lm.enableAdapters();
    }

    @Test
    void mergeSaveLoadAndExportKeepOutputs(@TempDir Path dir) throws IOException {
        Toy m = toy();
        LoraModel lm = adapt(m, config(3, 6), m.calibration(3, 8, 2), Map.of("batches", "3"));
        checkMergeSaveLoadExport(LoraGaTest::toy, lm, m, dir);
    }

    @Test
    void gradientsOfAAndBMatchFiniteDifferences() {
        Toy m = new Toy(4, 6, 7, 5, 1);
        LoraModel lm = adapt(m, LoraConfig.builder().r(2).alpha(4).targets(TARGETS).build(), m.calibration(2, 6, 3), Map.of("batches", "2"));
        gradCheck("lora-ga", lm, m);
    }

    @Test
    void trainableCountIsPlainLorasRTimesInPlusOut() {
        Toy m = toy();
        LoraModel lm = adapt(m, config(3, 6), m.calibration(2, 8, 1), Map.of("batches", "2"));
        long want = 0;
        for (LoraLayer l : layers(lm).values()) want += (long) l.rank() * (l.base().inFeatures() + l.base().outFeatures());
        assertEquals(want, lm.trainableCount("default"));
        assertEquals(2L * 3 * ((16 + 16) + (16 + 8) + (16 + 24) + (24 + 16)), lm.trainableCount("default"), "2 layers x r (in + out) summed");
    }

    /**
     * v_proj of a d = 6 toy is [3, 6]: r = 2 leaves 3 < 2r singular directions, so B takes the last r (U[:, 1:3])
     * while A keeps V[:, :2]; ArBr cannot and says which layer.
     */
    @Test
    void blocksOverlapWhenTwiceTheRankExceedsTheLayer() {
        Toy m = new Toy(4, 6, 7, 5, 1);
        LoraConfig c = LoraConfig.builder().r(2).alpha(2).targets("v_proj").build();
        LoraModel lm = adapt(m, c, m.calibration(2, 6, 3), Map.of("batches", "2", "scale", "unit"));
        LoraLayer l = layers(lm).get("model.layers.0.self_attn.v_proj");
        double[] g = fullGradients(new Toy(4, 6, 7, 5, 1), 2, 6, 3, List.of("model.layers.0.self_attn.v_proj"))
                .get("model.layers.0.self_attn.v_proj");
        Svd.Result svd = Svd.thin(g, 3, 6);
        // projections are sign-free: A^T A = V_{0:2} V_{0:2}^T, B B^T = U_{1:3} U_{1:3}^T
        double[] a = toDouble(l.loraA()), b = toDouble(l.loraB());
        double[] pa = Dense.matmulTN(a, 2, 6, a, 6), pb = Dense.matmulNT(b, 3, 2, b, 3);
        double[] v2 = Dense.columns(svd.v(), 6, 3, 0, 2), u2 = Dense.columns(svd.u(), 3, 3, 1, 3);
        assertTrue(Dense.frobeniusDiff(pa, Dense.matmulNT(v2, 6, 2, v2, 6)) < 1e-5, "A spans the top-2 right singular vectors");
        assertTrue(Dense.frobeniusDiff(pb, Dense.matmulNT(u2, 3, 2, u2, 3)) < 1e-5, "B spans left singular vectors 1 and 2");

        var e = assertThrows(IllegalArgumentException.class,
                () -> adapt(new Toy(4, 6, 7, 5, 1), c, m.calibration(2, 6, 3), Map.of("direction", "ArBr")));
        assertTrue(e.getMessage().contains("v_proj") && e.getMessage().contains("ArBr"), e.getMessage());
    }

    @Test
    void optionsAreValidatedAndCalibrationIsRequired() {
        Toy m = toy();
        var bad = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(2, 4), m.calibration(1, 4, 1), Map.of("direction", "BrAr")));
        assertTrue(bad.getMessage().contains("direction") && bad.getMessage().contains("ArB2r"), bad.getMessage());
        var scale = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(2, 4), m.calibration(1, 4, 1), Map.of("scale", "huge")));
        assertTrue(scale.getMessage().contains("scale") && scale.getMessage().contains("stable"), scale.getMessage());
        var none = assertThrows(IllegalArgumentException.class, () -> adapt(m, config(2, 4), null, Map.of()));
        assertTrue(none.getMessage().contains("lora-ga") && none.getMessage().contains("calibration"), none.getMessage());
        assertTrue(m.linears().values().stream().allMatch(l -> l.hooks().isEmpty()), "a failed init leaves no hooks behind");
    }
}
