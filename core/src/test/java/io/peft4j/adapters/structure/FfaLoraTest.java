package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.models.CausalLM;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.peft4j.testing.ToyData.chain;
import static io.peft4j.testing.ToyData.trainer;
import static io.peft4j.adapters.structure.StructureFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** FFA-LoRA: only B trains (r · out per layer, half of LoRA on square layers) and A never moves in a real run. */
class FfaLoraTest {
    @Test
    void trainsOnlyBRTimesOutPerLayerHalfOfLoraOnSquareLayers() {
        LoraConfig c = config(4, 8);
        CausalLM m = tiny();
        LoraModel ffa = adapt(m, c, "ffa-lora", Map.of());
        long expected = 0;
        for (LoraLayer l : ffa.layers("default").values()) {
            expected += (long) l.rank() * l.base().outFeatures();
            assertFalse(l.loraA().requiresGrad(), "A is frozen");
            assertTrue(l.loraB().requiresGrad(), "B trains");
        }
        assertEquals(expected, ffa.trainableCount("default"));
        assertTrue(ffa.parameters("default").keySet().stream().allMatch(k -> k.contains(".lora_B.")), ffa.parameters("default").keySet().toString());

        // on the square q_proj / o_proj layers: exactly half of plain LoRA
        LoraConfig square = LoraConfig.builder().r(4).alpha(8).targets("q_proj", "o_proj").build();
        CausalLM m1 = tiny(), m2 = tiny();
        LoraModel lora = new LoraModel(m1, 1);
        lora.add("default", square);
        LoraModel half = adapt(m2, square, "ffa-lora", Map.of());
        assertEquals(lora.trainableCount("default"), 2 * half.trainableCount("default"));
        assertEquals(4L * 64 * 8, half.trainableCount("default"));   // r · out over 4 layers x 2 modules
        // identity at init (B = 0), scaling as the config (alpha / r)
        assertArrayEquals(logits(tiny()), logits(m2));
        for (LoraLayer l : half.layers("default").values()) assertEquals(2f, l.scaling());
    }

    @Test
    void aNeverChangesDuringATrainerRun(@TempDir Path out) throws Exception {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "ffa-lora", Map.of("a_init", "gaussian"));
        Map<String, float[]> a0 = new LinkedHashMap<>(), b0 = new LinkedHashMap<>();
        lm.layers("default").forEach((k, l) -> { a0.put(k, copy(l.loraA())); b0.put(k, copy(l.loraB())); });
        float[] before = logits(m);
        TrainingOptions opt = TrainingOptions.defaults(6).withLr(1e-2).withSchedule(LrSchedule.CONSTANT, 0);
        Trainer.Result r = trainer(m, lm, chain(16, 9, 3), opt, out).run();
        assertEquals(6, r.steps());
        lm.layers("default").forEach((k, l) -> {
            assertArrayEquals(a0.get(k), l.loraA().toFloatArray(), k + ": frozen A moved");
            assertFalse(java.util.Arrays.equals(b0.get(k), l.loraB().toFloatArray()), k + ": B should have trained");
            Tensor g = l.loraA().grad();
            assertTrue(g == null, k + ": a frozen A takes no gradient buffer");
        });
        assertFalse(java.util.Arrays.equals(before, logits(m)), "training changed the model");
    }
}
