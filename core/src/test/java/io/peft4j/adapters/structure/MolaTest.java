package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.MethodConfig.Saved;
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

/** MoLA: layer-wise expert counts, the renormalised top-k router, identity at init, save / load, exact gradients. */
class MolaTest {
    private static final String Q0 = "model.layers.0.self_attn.q_proj";

    static LoraConfig config(int r, String... targets) { return LoraConfig.builder().r(r).alpha(2.0 * r).targets(targets).build(); }

    static LoraModel adapt(MixtureToy m, LoraConfig c, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 7);
        lm.add("default", c, MethodConfig.of("mola", options), null, null);
        return lm;
    }

    static MolaLayer layer(LoraModel lm, String module) { return (MolaLayer) lm.otherLayers("default").get(module); }

    private static int[] countsByLayer(LoraModel lm, int layers, String module) {
        int[] c = new int[layers];
        for (int l = 0; l < layers; l++) c[l] = layer(lm, "model.layers." + l + "." + module).experts();
        return c;
    }

    @Test
    void expertCountsFollowTheLayerGroups() {
        MixtureToy m = new MixtureToy(1, 8, 11, 8);
        LoraModel lm = adapt(m, config(2, "q_proj", "down_proj"), Map.of("experts", "2,4,6,8"));
        // the paper's "2-4-6-8": 8 layers in 4 groups of 2, lowest layers fewest experts
        assertArrayEquals(new int[] {2, 2, 4, 4, 6, 6, 8, 8}, countsByLayer(lm, 8, "self_attn.q_proj"));
        assertArrayEquals(new int[] {2, 2, 4, 4, 6, 6, 8, 8}, countsByLayer(lm, 8, "mlp.down_proj"));
        // trainables: E (r (in + out) + in) per module = E (2 * 16 + 8) = 40 E; two modules per layer
        assertEquals(2L * 40 * (2 + 2 + 4 + 4 + 6 + 6 + 8 + 8), lm.trainableCount("default"));

        MixtureToy m2 = new MixtureToy(1, 8, 11, 8);
        assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6, 7, 8},
                countsByLayer(adapt(m2, config(2, "q_proj"), Map.of("experts", "1,2,3,4,5,6,7,8")), 8, "self_attn.q_proj"), "one count per layer");
        MixtureToy m3 = new MixtureToy(1, 8, 11, 6);
        assertArrayEquals(new int[] {2, 2, 4, 6, 6, 8},
                countsByLayer(adapt(m3, config(2, "q_proj"), Map.of("experts", "2,4,6,8")), 6, "self_attn.q_proj"), "floor(l G / L) on 6 layers");
        MixtureToy m4 = new MixtureToy(1, 8, 11, 3);
        assertArrayEquals(new int[] {3, 3, 3}, countsByLayer(adapt(m4, config(2, "q_proj"), Map.of("experts", "3")), 3, "self_attn.q_proj"));

        var tooMany = assertThrows(IllegalArgumentException.class,
                () -> adapt(new MixtureToy(1, 8, 11, 4), config(2, "q_proj"), Map.of("experts", "1,2,3,4,5")));
        assertTrue(tooMany.getMessage().contains("5 layer groups") && tooMany.getMessage().contains("4 numbered layers"), tooMany.getMessage());
        var noIndex = assertThrows(IllegalArgumentException.class,
                () -> adapt(new MixtureToy(1, 8, 11, 4), config(2, "lm_head"), Map.of("experts", "2,4")));
        assertTrue(noIndex.getMessage().contains("lm_head"), noIndex.getMessage());
        var bad = assertThrows(IllegalArgumentException.class,
                () -> adapt(new MixtureToy(1, 8, 11, 4), config(2, "q_proj"), Map.of("experts", "2,x")));
        assertTrue(bad.getMessage().contains("experts"), bad.getMessage());
    }

    @Test
    void routerKeepsExactlyTopKExpertsRenormalised() {
        MixtureToy m = new MixtureToy(2, 8, 11, 1);
        LoraModel lm = adapt(m, config(3, "q_proj"), Map.of("experts", "6", "top_k", "2"));
        perturb(lm, 40, 0.3f);
        MolaLayer l = layer(lm, Q0);
        Tensor x = Tensor.randn(3, 1f, 10, 8);
        m.forward(x);                                     // q_proj of layer 0 sees x itself
        float[] gates = l.lastGates();
        boolean[] sel = l.lastSelected();
        for (int t = 0; t < 10; t++) {
            double[] z = new double[6], p = new double[6];
            double norm = 0;
            for (int e = 0; e < 6; e++) {
                for (int i = 0; i < 8; i++) z[e] += (double) l.router.get(e, i) * x.get(t, i);
                norm += Math.exp(z[e]);
            }
            for (int e = 0; e < 6; e++) p[e] = Math.exp(z[e]) / norm;
            int first = 0, second = first == 0 ? 1 : 0;
            for (int e = 1; e < 6; e++) if (p[e] > p[first]) first = e;
            second = first == 0 ? 1 : 0;
            for (int e = 0; e < 6; e++) if (e != first && p[e] > p[second]) second = e;
            int nonZero = 0;
            double sum = 0;
            for (int e = 0; e < 6; e++) {
                float g = gates[t * 6 + e];
                if (e == first || e == second) {
                    assertEquals(p[e] / (p[first] + p[second]), g, 1e-5, "token " + t + " expert " + e + ": softmax renormalised over the top-2");
                    assertTrue(sel[t * 6 + e]);
                } else {
                    assertEquals(0f, g, "token " + t + " expert " + e + " is off the top-2: weight exactly 0");
                    assertFalse(sel[t * 6 + e]);
                }
                if (g != 0f) nonZero++;
                sum += g;
            }
            assertEquals(2, nonZero, "exactly k experts per token");
            assertEquals(1.0, sum, 1e-6);
        }
        // a top_k above a layer's expert count uses all of its experts
        LoraModel all = adapt(new MixtureToy(2, 8, 11, 1), config(3, "q_proj"), Map.of("experts", "3", "top_k", "5"));
        assertEquals(3, layer(all, Q0).topK());
    }

    @Test
    void forwardEqualsTheExplicitMixture() {
        MixtureToy m = new MixtureToy(3, 8, 11, 1);
        LoraModel lm = adapt(m, config(2, "q_proj"), Map.of("experts", "4", "top_k", "2"));
        perturb(lm, 41, 0.3f);
        MolaLayer l = layer(lm, Q0);
        Linear q = m.linears().get(Q0);
        Tensor x = Tensor.randn(4, 1f, 6, 8);
        float[] got = q.forward(x).toFloatArray(), base = q.forwardBase(x).toFloatArray(), g = l.lastGates();
        float s = (float) config(2, "q_proj").scalingFor(Q0);
        for (int t = 0; t < 6; t++)
            for (int o = 0; o < 8; o++) {
                double want = base[t * 8 + o];
                for (int e = 0; e < 4; e++)
                    for (int j = e * 2; j < e * 2 + 2; j++) {
                        double h = 0;
                        for (int i = 0; i < 8; i++) h += (double) l.a.get(j, i) * x.get(t, i);
                        want += g[t * 4 + e] * s * l.b.get(o, j) * h;
                    }
                assertEquals(want, got[t * 8 + o], 1e-5, "token " + t + " output " + o);
            }
    }

    @Test
    void identityAtInit() {
        MixtureToy m = new MixtureToy(4, 8, 11, 2);
        Tensor x = Tensor.randn(5, 1f, 7, 8);
        float[] before = m.forward(x).toFloatArray();
        adapt(m, config(2, "q_proj", "v_proj", "down_proj"), Map.of("experts", "2,3", "top_k", "2"));
        assertArrayEquals(before, m.forward(x).toFloatArray(), "every expert's B is zero at init");
    }

    @Test
    void saveLoadGivesIdenticalLogitsAndMergeAndExportRefuse(@TempDir Path dir) throws IOException {
        MixtureToy m = new MixtureToy(5, 8, 11, 2);
        LoraModel lm = adapt(m, config(2, "q_proj", "v_proj", "down_proj"), Map.of("experts", "2,3", "top_k", "2", "balance_weight", "0.01"));
        perturb(lm, 42, 0.3f);
        Tensor x = Tensor.randn(6, 1f, 7, 8);
        float[] adapted = m.forward(x).toFloatArray();
        lm.save(dir, "default");
        Saved saved = MethodConfig.read(dir.resolve(MethodConfig.FILE));
        assertEquals("2,3", saved.config().string("experts"));

        MixtureToy fresh = new MixtureToy(5, 8, 11, 2);
        LoraModel lm2 = new LoraModel(fresh, 99);
        lm2.load(dir, "default", w -> fail(w));
        assertArrayEquals(adapted, fresh.forward(x).toFloatArray(), "reloaded routers and experts give identical logits");
        assertEquals(lm.parameters("default").keySet(), lm2.parameters("default").keySet(), "routers and experts trainable after a reload");
        assertTrue(lm2.parameters("default").containsKey("base_model.model." + Q0 + ".mola_router.default"));
        assertArrayEquals(layer(lm, Q0).router.toFloatArray(), layer(lm2, Q0).router.toFloatArray());

        var merge = assertThrows(IllegalStateException.class, lm::merge);
        assertTrue(merge.getMessage().contains("routes per input"), merge.getMessage());
        assertArrayEquals(adapted, m.forward(x).toFloatArray(), "a refused merge changes nothing");
        var export = assertThrows(IllegalArgumentException.class, () -> lm.exportPlainLora("default"));
        assertTrue(export.getMessage().contains("own format") && export.getMessage().contains("cannot be merged"), export.getMessage());
        for (AdapterLayer l : lm.otherLayers("default").values()) {
            assertFalse(l.mergeable());
            assertNull(l.lowRankFactors());
        }
    }

    @Test
    void gradientsOfRoutersAndExpertsMatchFiniteDifferences() {
        MixtureToy m = new MixtureToy(6, 6, 7, 2);
        LoraModel lm = adapt(m, config(2, "q_proj", "v_proj", "down_proj"), Map.of("experts", "4", "top_k", "2", "balance_weight", "0.05"));
        perturb(lm, 43, 0.3f);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        assertEquals(3 * 2 * 3, params.size(), "router, A and B of 6 modules");
        Tensor x = Tensor.randn(8, 1f, 5, 6);
        List<MolaLayer> layers = new ArrayList<>();
        for (AdapterLayer l : lm.otherLayers("default").values()) layers.add((MolaLayer) l);
        java.util.function.Supplier<boolean[]> selection = () -> concat(layers.stream().map(MolaLayer::lastSelected).toList());
        // the wrapper asserts that no ±h perturbation flips a router's top-k choice (the check would be meaningless there)
        GradCheck check = GradCheck.defaults();
        check.check("mola outputs", withFixedSelection(() -> m.forward(x), selection), params.toArray(new Tensor[0]));
        check.check("mola balance loss", withFixedSelection(() -> { m.forward(x); return lm.auxiliaryLoss("default"); }, selection),
                params.toArray(new Tensor[0]));
    }
}
