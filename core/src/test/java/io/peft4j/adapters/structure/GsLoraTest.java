package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class GsLoraTest {
    private static final LoraConfig FFN = LoraConfig.builder().r(2).alpha(4).targets("up_proj", "down_proj").build();

    private static LoraModel adapt(BlockToy m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", FFN, MethodConfig.of("gs-lora", options), null, null);
        return lm;
    }

    private static boolean allZero(Tensor t) {
        for (float v : t.toFloatArray()) if (v != 0f) return false;
        return true;
    }

    @Test
    void blockSoftThresholdShrinksTheGroupNormByTAndZeroesSmallGroups() {
        Tensor a = Tensor.randn(1, 1f, 3, 4), b = Tensor.randn(2, 1f, 5, 3);
        float[] a0 = a.toFloatArray().clone(), b0 = b.toFloatArray().clone();
        double norm = Proximal.norm(List.of(a, b)), t = 0.3 * norm;
        double after = Proximal.blockSoftThreshold(List.of(a, b), t);
        assertEquals(norm - t, after, 1e-5 * norm, "the group norm shrinks by exactly t");
        assertEquals(after, Proximal.norm(List.of(a, b)), 1e-5 * norm);
        float f = (float) (1 - t / norm);                          // the direction is kept
        for (int i = 0; i < a0.length; i++) assertEquals(a0[i] * f, a.getFlat(i), 1e-6);
        for (int i = 0; i < b0.length; i++) assertEquals(b0[i] * f, b.getFlat(i), 1e-6);
        assertEquals(0.0, Proximal.blockSoftThreshold(List.of(a, b), after * 1.0001), "a group with norm below t becomes zero");
        assertTrue(allZero(a) && allZero(b), "exactly zero, not small");
    }

    @Test
    void groupsAreTransformerBlocks() {
        assertEquals("model.layers.3", Proximal.block("model.layers.3.mlp.down_proj"));
        assertEquals("encoder.layer.11", Proximal.block("encoder.layer.11.attention.self.query"));
        assertEquals("lm_head", Proximal.block("lm_head"));
        BlockToy m = new BlockToy(1, 6, 10, 3, 8);
        LoraModel lm = adapt(m, Map.of());
        Map<String, List<Tensor>> g = GsLora.groups(lm.layers("default"), "block");
        assertEquals(List.of("model.layers.0", "model.layers.1", "model.layers.2"), new ArrayList<>(g.keySet()));
        for (List<Tensor> members : g.values()) assertEquals(4, members.size(), "up_proj and down_proj, A and B each");
        assertEquals(6, GsLora.groups(lm.layers("default"), "module").size());
    }

    @Test
    void unusedGroupsGoToExactlyZeroWhileUsedGroupsStay(@TempDir Path dir) throws IOException {
        BlockToy m = new BlockToy(5, 6, 10, 3, 16);
        m.use[1] = 0f;                                             // block 1 does not reach the loss: zero gradients
        LoraModel lm = adapt(m, Map.of("lambda", "1"));
        double[] losses = BlockToy.train(lm, m, 60, 0.03);          // threshold 0.03 a step: the unused group (norm ~1.2) dies by step ~40
        assertTrue(losses[losses.length - 1] < 0.7 * losses[0], "training still fits: " + losses[0] + " -> " + losses[losses.length - 1]);
        Map<String, LoraLayer> layers = lm.layers("default");
        for (String mod : List.of("mlp.up_proj", "mlp.down_proj")) {
            LoraLayer unused = layers.get("model.layers.1." + mod);
            assertTrue(allZero(unused.loraA()) && allZero(unused.loraB()), mod + " of the unused block is exactly zero");
            for (int l : new int[] {0, 2}) assertFalse(allZero(layers.get("model.layers." + l + "." + mod).loraB()), mod + " of used block " + l + " stays");
        }
        Map<String, Double> report = lm.report("default");
        assertEquals(3.0, report.get("groups"));
        assertEquals(2.0, report.get("groups_alive"));
        assertEquals(0.0, report.get("group_norm/model.layers.1"));
        assertTrue(report.get("group_norm/model.layers.0") > 0 && report.get("group_norm/model.layers.2") > 0);

        // the plain export leaves the zeroed group out and gives the same outputs on the unchanged base
        float[] adapted = m.forward(m.x).toFloatArray();
        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        assertTrue(ex.tensors().keySet().stream().noneMatch(k -> k.contains("layers.1.")), "no tensor of the zeroed group: " + ex.tensors().keySet());
        assertEquals(4 * 2, ex.tensors().size(), "A and B of the four surviving modules");
        ex.save(dir.resolve("plain"));
        BlockToy fresh = new BlockToy(5, 6, 10, 3, 16);
        fresh.use[1] = 0f;
        new LoraModel(fresh, 1).load(dir.resolve("plain"), "default", w -> fail(w));
        float[] got = fresh.forward(fresh.x).toFloatArray();
        for (int i = 0; i < adapted.length; i++) assertEquals(adapted[i], got[i], 3e-5 * (1 + Math.abs(adapted[i])));
    }

    @Test
    void withoutThePenaltyNothingIsZeroed() {
        BlockToy m = new BlockToy(5, 6, 10, 3, 16);
        m.use[1] = 0f;
        LoraModel lm = adapt(m, Map.of("lambda", "0"));
        float[] a0 = lm.layers("default").get("model.layers.1.mlp.up_proj").loraA().toFloatArray().clone();
        BlockToy.train(lm, m, 30, 0.02);
        assertArrayEquals(a0, lm.layers("default").get("model.layers.1.mlp.up_proj").loraA().toFloatArray(),
                "with lambda 0 an unused group keeps its A: the zeros above come from the regulariser");
        assertEquals(3.0, lm.report("default").get("groups_alive"));
    }

    @Test
    void trainableCountIsLoraAndOptionsAreChecked() {
        BlockToy m = new BlockToy(1, 6, 10, 2, 4);
        LoraModel lm = adapt(m, Map.of());
        assertEquals(2L * 2 * ((6 + 10) + (10 + 6)), lm.trainableCount("default"), "r (in + out) per up/down module, 2 blocks");
        LoraModel bad = new LoraModel(new BlockToy(1, 6, 10, 2, 4), 3);
        var e = assertThrows(IllegalArgumentException.class, () -> bad.add("default", FFN, MethodConfig.of("gs-lora", Map.of("grouping", "layer")), null, null));
        assertTrue(e.getMessage().contains("grouping"), e.getMessage());
    }
}
