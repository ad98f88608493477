package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.Tape;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.models.CausalLM;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static io.peft4j.adapters.structure.SeededToy.logits;
import static io.peft4j.adapters.structure.SeededToy.maxDiff;
import static io.peft4j.adapters.structure.SeededToy.tiny;
import static org.junit.jupiter.api.Assertions.*;

/** NOLA (arXiv 2310.02556): seeds + coefficients only on disk, k + l trainables per layer, exact gradients. */
class NolaTest {
    private static final LoraConfig CONFIG = LoraConfig.builder().r(4).alpha(8).targets("q_proj", "v_proj", "down_proj").build();

    private static LoraModel adapt(CausalLM m, LoraConfig c, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", c, MethodConfig.of("nola", options), null, null);
        return lm;
    }

    /** Gives every layer's β (zero at init) random values so that the adapter contributes. */
    private static void randomBeta(LoraModel lm, long seed) {
        int i = 0;
        for (AdapterLayer l : lm.otherLayers("default").values()) {
            Tensor beta = ((NolaLayer) l).beta;
            float[] v = Tensor.randn(seed + i++, 1f, beta.shape()).data();
            System.arraycopy(v, 0, beta.data(), beta.dataOffset(), v.length);
        }
    }

    @Test
    void savedAdapterHoldsSeedAndCoefficientsOnlyAndReloadsToIdenticalLogits(@TempDir Path dir) throws IOException {
        CausalLM m = tiny();
        float[] base = logits(m);
        LoraModel lm = adapt(m, CONFIG, Map.of("num_basis_a", "200", "num_basis_b", "150", "seed", "77"));
        assertArrayEquals(base, logits(m), "identity at init (beta = 0)");
        randomBeta(lm, 3);
        float[] adapted = logits(m);
        assertTrue(maxDiff(base, adapted) > 1e-3, "the adapter contributes once beta is non-zero");
        lm.save(dir, "default");

        int modules = lm.otherLayers("default").size();
        assertEquals(12, modules, "q, v and down of 4 layers");
        try (SafetensorsFile f = Safetensors.open(dir.resolve("adapter_model.safetensors"))) {
            assertEquals(2 * modules, f.names().size(), "two coefficient vectors per module, nothing else: " + f.names());
            for (String key : f.names()) {
                Tensor t = f.get(key);
                boolean a = key.endsWith("." + NolaLayer.ALPHA), b = key.endsWith("." + NolaLayer.BETA);
                assertTrue(a || b, key);
                assertArrayEquals(new int[] {a ? 200 : 150}, t.shape(), key + " holds the coefficients only (no A/B-sized tensor)");
            }
        }
        String method = Files.readString(dir.resolve(MethodConfig.FILE));
        assertTrue(method.contains("\"seed\" : \"77\""), method);

        CausalLM fresh = tiny();
        LoraModel lm2 = new LoraModel(fresh, 99);              // another runtime seed: bases come from the saved seed only
        lm2.load(dir, "default", w -> fail(w));
        assertArrayEquals(adapted, logits(fresh), "bases regenerated bit for bit from the seed");
        assertEquals(modules * (200L + 150L), lm2.trainableCount("default"));

        // the seed matters: the same coefficients on other bases give other outputs
        CausalLM other = tiny();
        LoraModel lm3 = adapt(other, CONFIG, Map.of("num_basis_a", "200", "num_basis_b", "150", "seed", "78"));
        Map<String, AdapterLayer> src = lm.otherLayers("default");
        for (Map.Entry<String, AdapterLayer> e : lm3.otherLayers("default").entrySet()) {
            NolaLayer from = (NolaLayer) src.get(e.getKey()), to = (NolaLayer) e.getValue();
            System.arraycopy(from.alpha.data(), 0, to.alpha.data(), 0, 200);
            System.arraycopy(from.beta.data(), 0, to.beta.data(), 0, 150);
        }
        assertTrue(maxDiff(adapted, logits(other)) > 1e-3, "a different seed gives different bases");
    }

    @Test
    void trainableCountIsKPlusLPerModuleWhateverTheRankOrShape() {
        for (int r : new int[] {1, 4, 16}) {
            CausalLM m = tiny();
            LoraModel lm = adapt(m, CONFIG.toBuilder().r(r).alpha(r).build(), Map.of("num_basis_a", "64", "num_basis_b", "40"));
            assertEquals(12L * (64 + 40), lm.trainableCount("default"), "rank " + r);
            for (Tensor t : lm.parameters("default").values())
                assertTrue(t.numel() == 64 || t.numel() == 40, "only coefficient vectors train: " + t.describe());
        }
    }

    /** The forward equals x (W + s B A)^T + b with A, B mixed here from the bases in double precision. */
    @Test
    void updateIsTheScaledProductOfTheMixedBases() {
        Linear lin = new Linear("m", Tensor.randn(1, 0.5f, 6, 9), Tensor.randn(2, 0.1f, 6));
        int r = 3, k = 20, l = 12;
        NolaLayer.RandomBasis ba = new NolaLayer.RandomBasis(Nola.moduleSeed(5, "m", 'A'), k, r * 9, 0.3f, true);
        NolaLayer.RandomBasis bb = new NolaLayer.RandomBasis(Nola.moduleSeed(5, "m", 'B'), l, 6 * r, 0.2f, false);
        Tensor alpha = Tensor.randn(3, 1f, k).requiresGrad(true), beta = Tensor.randn(4, 1f, l).requiresGrad(true);
        NolaLayer layer = new NolaLayer(lin, new AdapterRuntime(1), r, 1.5f, 0f, alpha, beta, ba, bb);
        double[] a = new double[r * 9], b = new double[6 * r];
        for (int i = 0; i < k; i++) for (int e = 0; e < a.length; e++) a[e] += alpha.data()[i] * (double) ba.value(i, e);
        for (int j = 0; j < l; j++) for (int e = 0; e < b.length; e++) b[e] += beta.data()[j] * (double) bb.value(j, e);
        double[] delta = new double[6 * 9];
        for (int o = 0; o < 6; o++) for (int c = 0; c < 9; c++) for (int t = 0; t < r; t++) delta[o * 9 + c] += 1.5 * b[o * r + t] * a[t * 9 + c];
        float[] got = layer.deltaWeight().data();
        for (int i = 0; i < delta.length; i++) assertEquals(delta[i], got[i], 1e-5 * (1 + Math.abs(delta[i])), "delta at " + i);

        Tensor[] f = layer.lowRankFactors();
        float[] fa = f[0].data(), fb = f[1].data();
        for (int i = 0; i < a.length; i++) assertEquals(a[i], fa[i], 1e-5 * (1 + Math.abs(a[i])), "A at " + i);
        for (int i = 0; i < b.length; i++) assertEquals(1.5 * b[i], fb[i], 1e-5 * (1 + Math.abs(b[i])), "s B at " + i);

        lin.addHook(layer);
        Tensor x = Tensor.randn(7, 1f, 2, 3, 9);
        float[] y = lin.forward(x).data(), xd = x.data(), w = lin.weight().data(), bias = lin.bias().data();
        for (int n = 0; n < 6; n++)
            for (int o = 0; o < 6; o++) {
                double want = bias[o];
                for (int c = 0; c < 9; c++) want += xd[n * 9 + c] * (w[o * 9 + c] + delta[o * 9 + c]);
                assertEquals(want, y[n * 6 + o], 1e-4 * (1 + Math.abs(want)), "output " + n + "," + o);
            }
    }

    @Test
    void basesAreUniformDeterministicAndDifferPerModuleFactorAndSeed() {
        NolaLayer.RandomBasis one = new NolaLayer.RandomBasis(Nola.moduleSeed(0, "model.layers.0.self_attn.q_proj", 'A'), 50, 400, 0.5f, true);
        NolaLayer.RandomBasis again = new NolaLayer.RandomBasis(Nola.moduleSeed(0, "model.layers.0.self_attn.q_proj", 'A'), 50, 400, 0.5f, false);
        double sum = 0, sq = 0;
        for (int i = 0; i < 50; i++)
            for (int e = 0; e < 400; e++) {
                float v = one.value(i, e);
                assertEquals(v, again.value(i, e), "same seed, same basis");
                assertTrue(v > -0.5f && v < 0.5f, "inside (-bound, bound): " + v);
                sum += v;
                sq += (double) v * v;
            }
        int n = 50 * 400;
        assertEquals(0, sum / n, 0.01, "mean of U(-0.5, 0.5)");
        assertEquals(0.25 / 3, sq / n, 0.004, "variance bound^2 / 3");
        long[] seeds = {Nola.moduleSeed(0, "model.layers.0.self_attn.q_proj", 'A'), Nola.moduleSeed(0, "model.layers.0.self_attn.q_proj", 'B'),
                Nola.moduleSeed(0, "model.layers.1.self_attn.q_proj", 'A'), Nola.moduleSeed(1, "model.layers.0.self_attn.q_proj", 'A')};
        for (int i = 0; i < seeds.length; i++) for (int j = i + 1; j < seeds.length; j++) assertNotEquals(seeds[i], seeds[j]);
        // the mixed result is the same whether the bases are kept or regenerated
        float[] coef = Tensor.randn(9, 1f, 50).data(), m1 = new float[400], m2 = new float[400];
        one.mix(coef, m1);
        again.mix(coef, m2);
        assertArrayEquals(m1, m2);
    }

    @Test
    void keptAndRegeneratedBasesGiveIdenticalOutputsAndGradients() {
        CausalLM m1 = tiny(), m2 = tiny();
        LoraModel kept = adapt(m1, CONFIG, Map.of("num_basis_a", "96", "num_basis_b", "64"));
        LoraModel regen = adapt(m2, CONFIG, Map.of("num_basis_a", "96", "num_basis_b", "64", "basis_cache_mb", "0"));
        for (AdapterLayer l : kept.otherLayers("default").values()) assertTrue(((NolaLayer) l).basisA.kept());
        for (AdapterLayer l : regen.otherLayers("default").values()) assertFalse(((NolaLayer) l).basisA.kept());
        randomBeta(kept, 5);
        randomBeta(regen, 5);
        assertArrayEquals(logits(m1), logits(m2));
        Map<String, float[]> g1 = grads(m1, kept), g2 = grads(m2, regen);
        assertEquals(g1.keySet(), g2.keySet());
        for (String k : g1.keySet()) assertArrayEquals(g1.get(k), g2.get(k), k);
    }

    private static Map<String, float[]> grads(CausalLM m, LoraModel lm) {
        Map<String, Tensor> params = lm.parameters("default");
        try (Tape tape = Tape.record()) {
            Tensor loss = io.peft4j.autograd.NnOps.crossEntropy(m.forward(SeededToy.ids(), 2, 9, null), SeededToy.chainTargets(SeededToy.ids()), -100);
            tape.backward(loss);
        }
        Map<String, float[]> g = new HashMap<>();
        params.forEach((k, t) -> g.put(k, t.grad().toFloatArray()));
        return g;
    }

    @Test
    void coefficientGradientsMatchFiniteDifferences() {
        for (boolean keep : new boolean[] {true, false}) {
            Linear lin = new Linear("m", Tensor.randn(1, 0.5f, 5, 7), Tensor.randn(2, 0.1f, 5));
            NolaLayer.RandomBasis ba = new NolaLayer.RandomBasis(11, 6, 2 * 7, 0.4f, keep);
            NolaLayer.RandomBasis bb = new NolaLayer.RandomBasis(12, 5, 5 * 2, 0.5f, keep);
            Tensor alpha = Tensor.randn(3, 1f, 6).requiresGrad(true), beta = Tensor.randn(4, 1f, 5).requiresGrad(true);
            lin.addHook(new NolaLayer(lin, new AdapterRuntime(1), 2, 1.5f, 0f, alpha, beta, ba, bb));
            Tensor x = Tensor.randn(5, 1f, 3, 7).requiresGrad(true);
            GradCheck.defaults().check("nola layer (bases kept " + keep + ")", in -> lin.forward(x), alpha, beta, x);
        }
    }

    @Test
    void trainingMovesOnlyCoefficientsAndEveryUpdateIsSeenByTheNextForward(@TempDir Path dir) throws IOException {
        CausalLM m = tiny();
        Map<String, float[]> weightsBefore = new HashMap<>();
        m.linears().forEach((k, v) -> weightsBefore.put(k, v.weight().toFloatArray()));
        LoraModel lm = adapt(m, CONFIG, Map.of("num_basis_a", "128", "num_basis_b", "128"));
        float[] losses = SeededToy.train(m, lm, 6, 0.05);
        assertTrue(losses[losses.length - 1] < losses[0] - 0.05, "loss falls: " + java.util.Arrays.toString(losses));
        m.linears().forEach((k, v) -> assertArrayEquals(weightsBefore.get(k), v.weight().toFloatArray(), k + " frozen"));
        // the trained model's outputs come from the current coefficients: a fresh reload (no cache) gives the same
        float[] trained = logits(m);
        lm.save(dir, "default");
        CausalLM fresh = tiny();
        new LoraModel(fresh, 1).load(dir, "default", w -> fail(w));
        assertArrayEquals(trained, logits(fresh));
    }

    @Test
    void exportIsAPlainLoraAndSavedCoefficientCountsAreChecked(@TempDir Path dir) throws IOException {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, CONFIG, Map.of("num_basis_a", "32", "num_basis_b", "16"));
        randomBeta(lm, 9);
        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        assertEquals(24, ex.tensors().size(), "lora_A and lora_B for 12 modules");
        for (Map.Entry<String, AdapterLayer> e : lm.otherLayers("default").entrySet()) {
            Tensor a = ex.tensors().get(LoraModel.PREFIX + e.getKey() + ".lora_A.weight");
            assertEquals(4, a.dim(0), "rank r");
        }
        lm.save(dir, "default");
        // a method config that disagrees with the saved coefficient counts is refused, naming the module
        String cfg = Files.readString(dir.resolve(MethodConfig.FILE)).replace("\"num_basis_a\" : \"32\"", "\"num_basis_a\" : \"33\"");
        Files.writeString(dir.resolve(MethodConfig.FILE), cfg);
        IOException e = assertThrows(IOException.class, () -> new LoraModel(tiny(), 1).load(dir, "default", w -> {}));
        assertTrue(e.getMessage().contains("num_basis_a") && e.getMessage().contains("module"), e.getMessage());
    }
}
