package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.models.CausalLM;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.peft4j.adapters.structure.SeededToy.logits;
import static io.peft4j.adapters.structure.SeededToy.maxDiff;
import static io.peft4j.adapters.structure.SeededToy.tiny;
import static org.junit.jupiter.api.Assertions.*;

/** DiffuseKronA (arXiv 2402.17412): the update is the Kronecker product A ⊗ B, applied without forming it. */
class DiffuseKronATest {
    private static final LoraConfig CONFIG = LoraConfig.builder().r(4).alpha(8).targets("q_proj", "v_proj", "down_proj").build();

    private static LoraModel adapt(CausalLM m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", CONFIG, MethodConfig.of("diffusekrona", options), null, null);
        return lm;
    }

    /** (A ⊗ B)[r, c] by the definition: A[r / p, c / q] · B[r % p, c % q], in double. */
    private static double[] kron(float[] a, int a1, int a2, float[] b, int p, int q) {
        int rows = a1 * p, cols = a2 * q;
        double[] k = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) k[r * cols + c] = (double) a[(r / p) * a2 + c / q] * b[(r % p) * q + c % q];
        return k;
    }

    @Test
    void updateAndForwardEqualTheExplicitKroneckerProductInBothOrders() {
        int[][] shapes = {{6, 8, 2, 4}, {6, 8, 3, 2}, {12, 20, 3, 4}, {5, 7, 1, 7}, {5, 7, 5, 1}, {4, 6, 4, 6}, {8, 8, 1, 1}};
        long seed = 1;
        for (int[] s : shapes) {
            int out = s[0], in = s[1], a1 = s[2], a2 = s[3], p = out / a1, q = in / a2;
            String what = "[" + out + ", " + in + "] with A [" + a1 + ", " + a2 + "]";
            Linear lin = new Linear("m", Tensor.randn(seed++, 0.5f, out, in), Tensor.randn(seed++, 0.1f, out));
            Tensor a = Tensor.randn(seed++, 1f, a1, a2), b = Tensor.randn(seed++, 1f, p, q);
            DiffuseKronALayer layer = new DiffuseKronALayer(lin, new AdapterRuntime(1), 0.7f, 0f, a, b);
            double[] k = kron(a.data(), a1, a2, b.data(), p, q);
            float[] d = layer.deltaWeight().data();
            for (int i = 0; i < k.length; i++) assertEquals(0.7 * k[i], d[i], 1e-6 * (1 + Math.abs(k[i])), what + ": delta at " + i);

            Tensor x = Tensor.randn(seed++, 1f, 2, 3, in);
            float[] xd = x.data();
            for (boolean bFirst : new boolean[] {true, false}) {
                float[] y = layer.delta(x, bFirst).toFloatArray();
                assertEquals(6 * out, y.length);
                for (int n = 0; n < 6; n++)
                    for (int o = 0; o < out; o++) {
                        double want = 0;
                        for (int c = 0; c < in; c++) want += 0.7 * k[o * in + c] * xd[n * in + c];
                        assertEquals(want, y[n * out + o], 1e-4 * (1 + Math.abs(want)), what + (bFirst ? " B first" : " A first") + " at " + n + "," + o);
                    }
            }
            lin.addHook(layer);
            float[] hooked = lin.forward(x).toFloatArray(), base = lin.forwardBase(x).toFloatArray(), delta = layer.delta(x, true).toFloatArray();
            for (int i = 0; i < hooked.length; i++) assertEquals(base[i] + delta[i], hooked[i], 1e-4 * (1 + Math.abs(hooked[i])), what);
        }
    }

    @Test
    void gradientsOfBothFactorsAndTheInputMatchFiniteDifferences() {
        for (boolean bFirst : new boolean[] {true, false}) {
            Linear lin = new Linear("m", Tensor.randn(1, 0.5f, 6, 8), null);
            Tensor a = Tensor.randn(2, 1f, 3, 2).requiresGrad(true), b = Tensor.randn(3, 1f, 2, 4).requiresGrad(true);
            DiffuseKronALayer layer = new DiffuseKronALayer(lin, new AdapterRuntime(1), 0.8f, 0f, a, b);
            Tensor x = Tensor.randn(4, 1f, 3, 8).requiresGrad(true);
            GradCheck.defaults().check("diffusekrona " + (bFirst ? "B first" : "A first"), in -> layer.delta(x, bFirst), a, b, x);
        }
        // and through the hook, as the model runs it
        Linear lin = new Linear("m", Tensor.randn(1, 0.5f, 12, 20), Tensor.randn(5, 0.1f, 12));
        Tensor a = Tensor.randn(2, 1f, 3, 4).requiresGrad(true), b = Tensor.randn(3, 1f, 4, 5).requiresGrad(true);
        lin.addHook(new DiffuseKronALayer(lin, new AdapterRuntime(1), 1f, 0f, a, b));
        Tensor x = Tensor.randn(6, 1f, 2, 20).requiresGrad(true);
        GradCheck.defaults().check("diffusekrona hook", in -> lin.forward(x), a, b, x);
    }

    @Test
    void trainableCountFollowsThePaperFormulaAndInitIsThePapers() {
        CausalLM m = tiny();
        float[] base = logits(m);
        LoraModel lm = adapt(m, Map.of("a1", "4", "a2", "8"));
        assertArrayEquals(base, logits(m), "B = 0: the model is unchanged at init");
        long want = 0;
        double sq = 0;
        int na = 0;
        for (Map.Entry<String, AdapterLayer> e : lm.otherLayers("default").entrySet()) {
            Linear lin = m.linears().get(e.getKey());
            DiffuseKronALayer l = (DiffuseKronALayer) e.getValue();
            int out = lin.outFeatures(), in = lin.inFeatures();
            want += 4 * 8 + (long) (out / 4) * (in / 8);
            assertArrayEquals(new int[] {4, 8}, l.a.shape(), e.getKey());
            assertArrayEquals(new int[] {out / 4, in / 8}, l.b.shape(), e.getKey());
            for (float v : l.b.data()) assertEquals(0f, v, "B starts at zero");
            for (float v : l.a.data()) { sq += (double) v * v; na++; }
        }
        assertEquals(12, lm.otherLayers("default").size());
        assertEquals(want, lm.trainableCount("default"), "sum of a1 a2 + (out/a1)(in/a2)");
        assertEquals(1.0 / 4, Math.sqrt(sq / na), 0.25 / 4, "A ~ N(0, 1/a1^2)");
    }

    @Test
    void shapesThatDoNotDivideAreAnErrorNamingTheModule() {
        // the defaults a1 = 64, a2 = 8 fit q_proj [64, 64] and down_proj [64, 176] but not v_proj [32, 64]
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> adapt(tiny(), Map.of()));
        assertTrue(e.getMessage().contains("v_proj") && e.getMessage().contains("a1 = 64") && e.getMessage().contains("32"), e.getMessage());
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> adapt(tiny(), Map.of("a1", "4", "a2", "3")));
        assertTrue(e2.getMessage().contains("in_features") && e2.getMessage().contains("a2 = 3"), e2.getMessage());
        assertThrows(IllegalArgumentException.class, () -> adapt(tiny(), Map.of("a1", "zero")));
    }

    @Test
    void autoFactorIsTheLargestDivisorUpToTheSquareRoot() {
        int[][] cases = {{64, 8}, {176, 11}, {32, 4}, {7, 1}, {12, 3}, {1, 1}, {4096, 64}, {11008, 86}};
        for (int[] c : cases) assertEquals(c[1], DiffuseKronA.autoFactor(c[0]), "dim " + c[0]);
        LoraModel lm = adapt(tiny(), Map.of("a1", "auto", "a2", "auto"));
        DiffuseKronALayer down = (DiffuseKronALayer) lm.otherLayers("default").get("model.layers.0.mlp.down_proj");
        assertArrayEquals(new int[] {8, 11}, down.a.shape());
        assertArrayEquals(new int[] {8, 16}, down.b.shape());
    }

    @Test
    void mergeEqualsUnmergedSaveLoadIsExactAndExportRefuses(@TempDir Path dir) throws IOException {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, Map.of("a1", "8", "a2", "4", "scale", "0.5"));
        for (AdapterLayer l : lm.otherLayers("default").values()) {
            Tensor b = ((DiffuseKronALayer) l).b;
            float[] v = Tensor.randn(b.numel(), 0.3f, b.shape()).data();
            System.arraycopy(v, 0, b.data(), 0, v.length);
        }
        float[] base = SeededToy.logits(tiny()), adapted = logits(m);
        assertTrue(maxDiff(base, adapted) > 1e-3, "the adapter contributes");
        lm.merge();
        float[] merged = logits(m);
        for (int i = 0; i < merged.length; i++) assertEquals(adapted[i], merged[i], 3e-5 * (1 + Math.abs(adapted[i])), "merged at " + i);
        lm.unmerge();
        assertArrayEquals(adapted, logits(m));

        lm.save(dir, "default");
        CausalLM fresh = tiny();
        LoraModel lm2 = new LoraModel(fresh, 99);
        lm2.load(dir, "default", w -> fail(w));
        assertArrayEquals(adapted, logits(fresh));
        assertEquals(lm.trainableCount("default"), lm2.trainableCount("default"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> lm.exportPlainLora("default"));
        assertTrue(e.getMessage().contains("own format"), e.getMessage());
    }

    @Test
    void trainingLowersTheLoss() {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, Map.of("a1", "8", "a2", "8"));
        float[] losses = SeededToy.train(m, lm, 12, 0.01);
        assertTrue(losses[losses.length - 1] < losses[0] - 0.05, "loss falls: " + java.util.Arrays.toString(losses));
    }
}
