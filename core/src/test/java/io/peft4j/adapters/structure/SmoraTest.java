package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.peft4j.adapters.structure.MixtureTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** SMoRA: exactly k ranks per token, the balancing bias rule, the optional balancing loss, identity, save / load, gradients. */
class SmoraTest {
    private static final String Q0 = "model.layers.0.self_attn.q_proj";

    static LoraConfig config(int r, String... targets) { return LoraConfig.builder().r(r).alpha(2.0 * r).targets(targets).build(); }

    /** alpha = k = 2: scaling 1 keeps the finite-difference objective small enough for F32 differences. */
    static LoraConfig unitScale(int r, String... targets) { return LoraConfig.builder().r(r).alpha(2).targets(targets).build(); }

    static LoraModel adapt(MixtureToy m, LoraConfig c, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 7);
        lm.add("default", c, MethodConfig.of("smora", options), null, null);
        return lm;
    }

    static SmoraLayer layer(LoraModel lm, String module) { return (SmoraLayer) lm.otherLayers("default").get(module); }

    /**
     * Spreads every layer's balancing bias 2 apart per rank (more than the sigmoid's range), so each token's top-k is
     * decided by the bias: a setting where finite differences cannot flip the selection, while the gate values (and so
     * every gradient) still depend on the router.
     */
    static void stableSelection(LoraModel lm) {
        for (AdapterLayer a : lm.otherLayers("default").values()) {
            Tensor bias = ((SmoraLayer) a).bias;
            for (int j = 0; j < bias.numel(); j++) bias.data()[bias.dataOffset() + j] = 2f * j;
        }
    }

    @Test
    void exactlyKRanksAreActivePerTokenWithTheRoutersGates() {
        MixtureToy m = new MixtureToy(11, 8, 11, 1);
        LoraModel lm = adapt(m, config(8, "q_proj"), Map.of("top_k", "3"));
        perturb(lm, 50, 0.3f);
        SmoraLayer l = layer(lm, Q0);
        float[] bias = l.bias.toFloatArray();
        Linear q = m.linears().get(Q0);
        Tensor x = Tensor.randn(12, 1f, 9, 8);
        float[] got = q.forward(x).toFloatArray(), base = q.forwardBase(x).toFloatArray(), g = l.lastGates();
        assertEquals(2.0 * 8 / 3, l.scaling(), 1e-6, "scaling alpha / k");
        for (int t = 0; t < 9; t++) {
            double[] s = new double[8];
            for (int j = 0; j < 8; j++) {
                double z = 0;
                for (int i = 0; i < 8; i++) z += (double) l.router.get(j, i) * x.get(t, i);
                s[j] = 1 / (1 + Math.exp(-z)) + bias[j];
            }
            Integer[] order = {0, 1, 2, 3, 4, 5, 6, 7};
            java.util.Arrays.sort(order, (p, o) -> Double.compare(s[o], s[p]));
            double total = s[order[0]] + s[order[1]] + s[order[2]];
            int active = 0;
            for (int c = 0; c < 8; c++) {
                int j = order[c];
                if (c < 3) assertEquals(3 * s[j] / total, g[t * 8 + j], 1e-5, "token " + t + " rank " + j);
                else assertEquals(0f, g[t * 8 + j], "token " + t + " rank " + j + " is inactive: gate exactly 0");
                if (g[t * 8 + j] != 0f) active++;
            }
            assertEquals(3, active, "exactly k ranks per token");
            for (int o = 0; o < 8; o++) {
                double want = base[t * 8 + o];
                for (int j = 0; j < 8; j++) {
                    double h = 0;
                    for (int i = 0; i < 8; i++) h += (double) l.a.get(j, i) * x.get(t, i);
                    want += l.scaling() * g[t * 8 + j] * l.b.get(o, j) * h;
                }
                assertEquals(want, got[t * 8 + o], 1e-5, "token " + t + " output " + o);
            }
        }
        // trainables: router, A [r, in] and B [out, r]: r (2 in + out); the bias is saved but not trained
        assertEquals(8L * (2 * 8 + 8), lm.trainableCount("default"));
        assertFalse(lm.parameters("default").keySet().stream().anyMatch(k -> k.contains(SmoraLayer.BIAS)));
    }

    @Test
    void theBalancingBiasMovesOnlyInTrainingForwardsAgainstTheLoad() {
        MixtureToy m = new MixtureToy(12, 8, 11, 1);
        LoraModel lm = adapt(m, config(6, "q_proj"), Map.of("top_k", "2", "bias_update_rate", "0.01"));
        perturb(lm, 51, 0.3f);
        SmoraLayer l = layer(lm, Q0);
        Tensor x = Tensor.randn(13, 1f, 20, 8);
        float[] before = l.bias.toFloatArray().clone();
        m.forward(x);
        assertArrayEquals(before, l.bias.toFloatArray(), "no update outside training");
        lm.train(true);
        m.forward(x);
        lm.train(false);
        int[] counts = new int[6];
        boolean[] sel = l.lastSelected();
        for (int i = 0; i < sel.length; i++) if (sel[i]) counts[i % 6]++;
        double mean = 20 * 2 / 6.0;
        float[] after = l.bias.toFloatArray();
        boolean moved = false;
        for (int j = 0; j < 6; j++) {
            assertEquals(before[j] + 0.01f * (float) Math.signum(mean - counts[j]), after[j], 1e-7, "rank " + j + " with " + counts[j] + " activations");
            moved |= after[j] != before[j];
        }
        assertTrue(moved);
    }

    @Test
    void balancingLossEqualsItsFormulaAndItsGradientIsExact() {
        MixtureToy m = new MixtureToy(13, 6, 7, 2);
        LoraModel lm = adapt(m, unitScale(4, "q_proj", "v_proj"), Map.of("top_k", "2", "balance_weight", "0.2"));
        perturb(lm, 52, 0.3f);
        stableSelection(lm);
        Tensor x = Tensor.randn(14, 1f, 5, 6);
        m.forward(x);
        // the loss of layer 0's q_proj recomputed from its formula: 0.2 · r · Σ_i (c_i / (N k)) · mean_t σ_i / Σ_j σ_j
        SmoraLayer l = layer(lm, Q0);
        boolean[] sel = l.lastSelected();
        double want = 0;
        for (int i = 0; i < 4; i++) {
            int c = 0;
            double meanP = 0;
            for (int t = 0; t < 5; t++) {
                if (sel[t * 4 + i]) c++;
                double[] sig = new double[4];
                double sum = 0;
                for (int j = 0; j < 4; j++) {
                    double z = 0;
                    for (int k = 0; k < 6; k++) z += (double) l.router.get(j, k) * x.get(t, k);
                    sig[j] = 1 / (1 + Math.exp(-z));
                    sum += sig[j];
                }
                meanP += sig[i] / sum / 5;
            }
            want += c / (5.0 * 2) * meanP;
        }
        assertEquals(0.2 * 4 * want, l.auxiliaryLoss().getFlat(0), 1e-6);
        double total = 0;
        for (AdapterLayer a : lm.otherLayers("default").values()) total += a.auxiliaryLoss().getFlat(0);
        assertEquals(total, lm.auxiliaryLoss("default").getFlat(0), 1e-6, "the model's auxiliary loss sums its layers'");

        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        List<SmoraLayer> layers = new ArrayList<>();
        for (AdapterLayer a : lm.otherLayers("default").values()) layers.add((SmoraLayer) a);
        GradCheck.defaults().check("smora balance loss",
                withFixedSelection(() -> { m.forward(x); return lm.auxiliaryLoss("default"); },
                        () -> concat(layers.stream().map(SmoraLayer::lastSelected).toList())),
                params.toArray(new Tensor[0]));
        // off by default (the paper balances with the bias only)
        LoraModel plain = adapt(new MixtureToy(13, 6, 7, 2), config(4, "q_proj"), Map.of("top_k", "2"));
        assertNull(plain.auxiliaryLoss("default"));
    }

    @Test
    void gradientsOfRouterAndFactorsMatchFiniteDifferences() {
        MixtureToy m = new MixtureToy(14, 6, 7, 2);
        LoraModel lm = adapt(m, unitScale(5, "q_proj", "v_proj", "down_proj"), Map.of("top_k", "2"));
        perturb(lm, 53, 0.3f);
        stableSelection(lm);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        assertEquals(3 * 2 * 3, params.size());
        List<SmoraLayer> layers = new ArrayList<>();
        for (AdapterLayer a : lm.otherLayers("default").values()) layers.add((SmoraLayer) a);
        Tensor x = Tensor.randn(15, 1f, 5, 6);
        GradCheck.defaults().check("smora outputs",
                withFixedSelection(() -> m.forward(x), () -> concat(layers.stream().map(SmoraLayer::lastSelected).toList())),
                params.toArray(new Tensor[0]));
    }

    @Test
    void identityAtInitSaveLoadAndRefusals(@TempDir Path dir) throws IOException {
        MixtureToy m = new MixtureToy(15, 8, 11, 2);
        Tensor x = Tensor.randn(16, 1f, 7, 8);
        float[] before = m.forward(x).toFloatArray();
        LoraModel lm = adapt(m, config(4, "q_proj", "v_proj", "down_proj"), Map.of("top_k", "2"));
        assertArrayEquals(before, m.forward(x).toFloatArray(), "B is zero at init");
        perturb(lm, 54, 0.3f);
        float[] adapted = m.forward(x).toFloatArray();
        lm.save(dir, "default");
        MixtureToy fresh = new MixtureToy(15, 8, 11, 2);
        LoraModel lm2 = new LoraModel(fresh, 3);
        lm2.load(dir, "default", w -> fail(w));
        assertArrayEquals(adapted, fresh.forward(x).toFloatArray(), "reloaded router, factors and balancing bias give identical logits");
        assertArrayEquals(layer(lm, Q0).bias.toFloatArray(), layer(lm2, Q0).bias.toFloatArray(), "the balancing bias is saved");
        assertEquals(lm.parameters("default").keySet(), lm2.parameters("default").keySet());
        assertThrows(IllegalStateException.class, lm::merge);
        var e = assertThrows(IllegalArgumentException.class, () -> lm.exportPlainLora("default"));
        assertTrue(e.getMessage().contains("own format"), e.getMessage());

        var tooMany = assertThrows(IllegalArgumentException.class, () -> adapt(new MixtureToy(15, 8, 11, 1), config(4, "q_proj"), Map.of()));
        assertTrue(tooMany.getMessage().contains("top_k 8") && tooMany.getMessage().contains("rank 4"), tooMany.getMessage());
    }
}
