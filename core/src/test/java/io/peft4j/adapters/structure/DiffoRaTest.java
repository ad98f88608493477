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
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class DiffoRaTest {
    private static final LoraConfig ALL = LoraConfig.builder().r(2).alpha(4).targets("q_proj", "up_proj", "down_proj").build();

    private static BlockToy toy() {
        BlockToy m = new BlockToy(11, 6, 10, 3, 16);
        m.use[1] = 0.2f;
        return m;
    }

    private static LoraModel adapt(BlockToy m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", ALL, MethodConfig.of("diffora", options), null, null);
        return lm;
    }

    private static Map<String, Float> dam(LoraModel lm) {
        Map<String, Float> d = new LinkedHashMap<>();
        lm.layers("default").forEach((k, l) -> d.put(k, l.gain().getFlat(0)));
        return d;
    }

    private static boolean allZero(Tensor t) {
        for (float v : t.toFloatArray()) if (v != 0f) return false;
        return true;
    }

    @Test
    void damEntriesTrainAndStayInTheUnitInterval() {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of("select_step", "1000"));
        dam(lm).values().forEach(g -> assertEquals(0.5f, g));
        BlockToy.train(lm, m, 30, 0.05);                            // a large lr pushes entries against the bounds
        Map<String, Float> d = dam(lm);
        d.values().forEach(g -> assertTrue(g >= 0f && g <= 1f, "relaxed DAM entry in [0, 1]: " + d));
        assertTrue(d.values().stream().anyMatch(g -> g != 0.5f), "the DAM is learned jointly: " + d);
    }

    @Test
    void discretisationKeepsTheTopDamEntriesAndDropsTheRest(@TempDir Path dir) throws IOException {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of("select_step", "1000", "keep_ratio", "0.5"));
        long before = lm.trainableCount("default");
        BlockToy.train(lm, m, 25, 0.02);
        Map<String, Float> d = dam(lm);
        List<String> byEntry = new ArrayList<>(d.keySet());
        byEntry.sort((x, y) -> Float.compare(d.get(y), d.get(x)));
        Set<String> top = new HashSet<>(byEntry.subList(0, 5));     // ceil(0.5 * 9)
        assertTrue(d.get(byEntry.get(4)) > d.get(byEntry.get(5)), "no tie at the cut in this setting: " + d);

        lm.afterStep("default", 999, 0.02);                         // update 1000 = select_step: discretise
        Set<String> kept = new HashSet<>();
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            assertFalse(l.gain().requiresGrad(), e.getKey() + ": every DAM entry is frozen after the selection");
            if (l.loraA().requiresGrad()) {
                kept.add(e.getKey());
                assertEquals(d.get(e.getKey()), l.gain().getFlat(0), e.getKey() + ": a kept module keeps its learned entry (weight sharing)");
            } else {
                assertFalse(l.loraB().requiresGrad());
                assertTrue(allZero(l.loraA()) && allZero(l.loraB()) && allZero(l.gain()), e.getKey() + ": a dropped module contributes nothing");
            }
        }
        assertEquals(top, kept, "the kept modules are the DAM's top entries");
        assertEquals(5.0, lm.report("default").get("adapted_modules"));
        long after = lm.trainableCount("default");
        long expected = 0;
        for (String k : kept) { LoraLayer l = lm.layers("default").get(k); expected += 2L * (l.base().inFeatures() + l.base().outFeatures()); }
        assertEquals(expected, after, "after the selection only the kept modules' A and B train");
        assertTrue(after < before);

        BlockToy.train(lm, m, 5, 0.02);                             // fine-tuning continues on the kept modules only
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet())
            if (!kept.contains(e.getKey())) assertTrue(allZero(e.getValue().loraA()), e.getKey() + " stays dropped");
        float[] adapted = m.forward(m.x).toFloatArray();

        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        Set<String> exported = new HashSet<>();
        for (String key : ex.tensors().keySet()) exported.add(key.substring(LoraModel.PREFIX.length(), key.indexOf(".lora_")));
        assertEquals(kept, exported, "the exported adapter has only the selected modules");
        assertEquals(new HashSet<>(ex.config().targetModules()), kept, "and its target_modules names exactly them");
        ex.save(dir.resolve("plain"));
        BlockToy original = toy();
        LoraModel plain = new LoraModel(original, 1);
        plain.load(dir.resolve("plain"), "default", w -> fail(w));
        assertEquals(kept, plain.layers("default").keySet());
        float[] got = original.forward(original.x).toFloatArray();
        for (int i = 0; i < adapted.length; i++) assertEquals(adapted[i], got[i], 3e-5 * (1 + Math.abs(adapted[i])), "plain export at " + i);

        lm.save(dir.resolve("method"), "default");                  // a reload keeps the selection: same trainables, same outputs
        BlockToy fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 5);
        lm2.load(dir.resolve("method"), "default", w -> fail(w));
        assertEquals(lm.parameters("default").keySet(), lm2.parameters("default").keySet());
        assertArrayEquals(adapted, fresh.forward(fresh.x).toFloatArray());
    }

    @Test
    void selectionHappensAtSelectStepDuringTraining() {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of("select_step", "6", "keep_ratio", "0.3"));
        BlockToy.train(lm, m, 0, 5, 0.02);
        assertEquals(9.0, lm.report("default").get("adapted_modules"), "still searching after 5 updates");
        BlockToy.train(lm, m, 5, 1, 0.02);
        assertEquals(3.0, lm.report("default").get("adapted_modules"), "ceil(0.3 * 9) modules after update 6");
    }
}
