package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.Tape;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class S2LoraTest {
    private static final LoraConfig CONFIG = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "up_proj", "down_proj").build();
    private static final List<String> TYPES = List.of("self_attn.q_proj", "mlp.up_proj", "mlp.down_proj");

    private static BlockToy toy() { return new BlockToy(13, 6, 10, 3, 16); }

    private static LoraModel adapt(BlockToy m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", CONFIG, MethodConfig.of("s2-lora", options), null, null);
        return lm;
    }

    private static LoraLayer layer(LoraModel lm, int block, String type) { return lm.layers("default").get("model.layers." + block + "." + type); }

    /** Sets every rank coefficient to a distinct non-zero value. */
    private static void setCoefficients(LoraModel lm, float base) {
        int i = 0;
        for (LoraLayer l : lm.layers("default").values())
            for (int j = 0; j < l.rank(); j++) l.mid().data()[l.mid().dataOffset() + j] = base * (1 + 0.1f * (i++ % 7));
    }

    private static void assertShared(LoraModel lm, String what) {
        for (String type : TYPES) {
            for (int b = 1; b < 3; b++) {
                assertSame(layer(lm, 0, type).loraA(), layer(lm, b, type).loraA(), what + ": " + type + " A of block " + b);
                assertSame(layer(lm, 0, type).loraB(), layer(lm, b, type).loraB(), what + ": " + type + " B of block " + b);
                assertNotSame(layer(lm, 0, type).mid(), layer(lm, b, type).mid(), what + ": coefficients are per layer");
            }
        }
        assertNotSame(layer(lm, 0, "mlp.up_proj").loraA(), layer(lm, 0, "mlp.down_proj").loraA(), "types do not share");
    }

    @Test
    void layersOfOneTypeShareOneAAndOneBAndTheCountIsTheFormula() {
        BlockToy m = toy();
        float[] base = m.forward(m.x).toFloatArray();
        LoraModel lm = adapt(m, Map.of());
        assertArrayEquals(base, m.forward(m.x).toFloatArray(), "zero coefficients: identity at init");
        assertShared(lm, "after init");
        Map<String, Tensor> params = lm.parameters("default");
        Set<Tensor> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
        distinct.addAll(params.values());
        assertEquals(params.size(), distinct.size(), "each shared tensor is listed once");
        assertEquals(3 * 2 + 9, params.size(), "A and B per type, coefficients per layer");
        int r = 3;
        long formula = r * (6 + 6) + r * (6 + 10) + r * (10 + 6)        // shared A, B of q_proj, up_proj, down_proj
                + 9L * r;                                               // r coefficients per layer
        assertEquals(formula, lm.trainableCount("default"));
        assertEquals(2L * 3 + 9, new AdamW(params, 0.9, 0.999, 1e-8, 0).parameters().size(), "the optimizer holds each tensor once");
    }

    @Test
    void theSharedGradientIsTheSumOfEveryLayersContribution() {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of());
        setCoefficients(lm, 0.4f);
        Tensor sharedA = layer(lm, 0, "self_attn.q_proj").loraA();
        float[] tied = grad(lm, m, sharedA);

        Tensor[] copies = new Tensor[3];                                // untie q_proj's A: each layer its own equal copy
        copies[0] = sharedA;
        for (int b = 1; b < 3; b++) {
            copies[b] = sharedA.copyToF32().requiresGrad(true);
            layer(lm, b, "self_attn.q_proj").shareFactor("A", copies[b]);
        }
        lm.parameters("default").values().forEach(Tensor::clearGrad);
        for (Tensor c : copies) c.clearGrad();
        try (Tape tape = Tape.record()) { tape.backward(m.loss()); }
        for (int i = 0; i < tied.length; i++) {
            double sum = 0;
            for (Tensor c : copies) sum += c.grad().getFlat(i);
            assertEquals(sum, tied[i], 1e-5 * (1 + Math.abs(sum)), "shared dA at " + i + " = sum over the three layers");
        }
        assertTrue(java.util.Arrays.stream(new double[] {copies[1].grad().getFlat(0), copies[2].grad().getFlat(0)}).allMatch(v -> v != 0), "each layer contributes");
    }

    private static float[] grad(LoraModel lm, BlockToy m, Tensor t) {
        lm.parameters("default").values().forEach(Tensor::clearGrad);
        try (Tape tape = Tape.record()) { tape.backward(m.loss()); }
        return t.grad().toFloatArray().clone();
    }

    @Test
    void reloadRestoresTheSharingAndAStepStillUpdatesEveryLayerThroughOneTensor(@TempDir Path dir) throws IOException {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of());
        BlockToy.train(lm, m, 8, 0.01);
        float[] adapted = m.forward(m.x).toFloatArray();
        lm.save(dir.resolve("a"), "default");
        try (SafetensorsFile f = Safetensors.open(dir.resolve("a").resolve("adapter_model.safetensors"))) {
            assertEquals(9, f.names().stream().filter(k -> k.endsWith(".lora_A.weight")).count(), "PEFT layout: an A per module");
            assertArrayEquals(f.get(LoraModel.PREFIX + "model.layers.0.mlp.up_proj.lora_A.weight").toFloatArray(),
                    f.get(LoraModel.PREFIX + "model.layers.2.mlp.up_proj.lora_A.weight").toFloatArray(), "the copies of a shared A are equal");
        }

        BlockToy fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 9);
        lm2.load(dir.resolve("a"), "default", w -> fail(w));
        assertShared(lm2, "after reload");
        assertArrayEquals(adapted, fresh.forward(fresh.x).toFloatArray(), "identical outputs after reload");
        assertEquals(lm.parameters("default").keySet(), lm2.parameters("default").keySet());
        assertEquals(lm.trainableCount("default"), lm2.trainableCount("default"));

        Map<String, float[]> deltas = new LinkedHashMap<>();
        for (int b = 0; b < 3; b++) deltas.put("q" + b, layer(lm2, b, "self_attn.q_proj").deltaWeight().toFloatArray());
        float[] a0 = layer(lm2, 0, "self_attn.q_proj").loraA().toFloatArray().clone();
        BlockToy.train(lm2, fresh, 1, 0.01);
        Tensor a = layer(lm2, 0, "self_attn.q_proj").loraA();
        assertFalse(java.util.Arrays.equals(a0, a.toFloatArray()), "the step moved the shared A");
        for (int b = 0; b < 3; b++) {
            assertSame(a, layer(lm2, b, "self_attn.q_proj").loraA(), "block " + b + " still uses the shared A");
            assertFalse(java.util.Arrays.equals(deltas.get("q" + b), layer(lm2, b, "self_attn.q_proj").deltaWeight().toFloatArray()), "block " + b + " was updated");
        }
    }

    @Test
    void aSavedAdapterWhoseSharedCopiesDifferIsRefused(@TempDir Path dir) throws IOException {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of());
        lm.save(dir.resolve("a"), "default");
        Map<String, Tensor> t = new LinkedHashMap<>();
        try (SafetensorsFile f = Safetensors.open(dir.resolve("a").resolve("adapter_model.safetensors"))) {
            for (String k : f.names()) t.put(k, f.get(k).copyToF32());
        }
        Tensor a2 = t.get(LoraModel.PREFIX + "model.layers.2.mlp.down_proj.lora_A.weight");
        a2.data()[a2.dataOffset()] += 1f;
        Safetensors.write(dir.resolve("a").resolve("adapter_model.safetensors"), t, Map.of("format", "pt"));
        var e = assertThrows(IllegalArgumentException.class, () -> new LoraModel(toy(), 1).load(dir.resolve("a"), "default", w -> {}));
        assertTrue(e.getMessage().contains("model.layers.2.mlp.down_proj") && e.getMessage().contains("differs"), e.getMessage());
    }

    @Test
    void coefficientsWithoutGradientBecomeExactlyZeroAndTheExportPrunesThem(@TempDir Path dir) throws IOException {
        BlockToy m = toy();
        m.use[1] = 0f;                                                  // block 1 does not reach the loss
        LoraModel lm = adapt(m, Map.of("l1", "0.5"));
        setCoefficients(lm, 0.03f);
        BlockToy.train(lm, m, 40, 0.01);                                // threshold 0.005 a step: 0.03-0.05 reach 0 by step ~10
        for (String type : TYPES) {
            LoraLayer unused = layer(lm, 1, type);
            for (int j = 0; j < 3; j++) assertEquals(0f, unused.mid().getFlat(j), type + " coefficient " + j + " of the unused block");
            for (int b : new int[] {0, 2}) {
                int nz = 0;
                for (int j = 0; j < 3; j++) if (layer(lm, b, type).mid().getFlat(j) != 0f) nz++;
                assertTrue(nz > 0, type + " of used block " + b + " keeps coefficients");
            }
        }
        Map<String, Double> report = lm.report("default");
        assertEquals(0.0, report.get("rank/model.layers.1.mlp.up_proj"));
        assertEquals(27.0, report.get("coefficients"));
        assertTrue(report.get("nonzero_coefficients") <= 18.0 && report.get("nonzero_coefficients") > 0);

        float[] adapted = m.forward(m.x).toFloatArray();
        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        assertTrue(ex.tensors().keySet().stream().noneMatch(k -> k.contains("layers.1.")), "modules with only zero coefficients are left out");
        for (int b : new int[] {0, 2}) for (String type : TYPES) {
            String module = "model.layers." + b + "." + type;
            assertEquals(report.get("rank/" + module).intValue(), ex.tensors().get(LoraModel.PREFIX + module + ".lora_A.weight").dim(0), module + ": zero coefficients pruned");
        }
        ex.save(dir.resolve("plain"));
        BlockToy original = toy();
        original.use[1] = 0f;
        new LoraModel(original, 1).load(dir.resolve("plain"), "default", w -> fail(w));
        float[] got = original.forward(original.x).toFloatArray();
        for (int i = 0; i < adapted.length; i++) assertEquals(adapted[i], got[i], 3e-5 * (1 + Math.abs(adapted[i])), "plain export at " + i);

        BlockToy m0 = toy();                                            // contrast: without the penalty they stay
        m0.use[1] = 0f;
        LoraModel lm0 = adapt(m0, Map.of("l1", "0"));
        setCoefficients(lm0, 0.03f);
        float[] c0 = layer(lm0, 1, "mlp.up_proj").mid().toFloatArray().clone();
        BlockToy.train(lm0, m0, 40, 0.01);
        assertArrayEquals(c0, layer(lm0, 1, "mlp.up_proj").mid().toFloatArray(), "l1 = 0: no gradient, no change");
    }
}
