package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.models.CausalLM;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.peft4j.testing.ToyData.chain;
import static io.peft4j.testing.ToyData.trainer;
import static io.peft4j.adapters.structure.StructureFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * SoRA: the proximal step is the soft-threshold formula with lambda x lr, gates reach exact zeros in a real run, a
 * pruned export has fewer ranks and identical outputs, the sparsifying schedule, and the proximal step on another
 * gated method.
 */
class SoraTest {
    @Test
    void proximalStepIsTheSoftThresholdWithLambdaTimesLr() {
        float[] x = {1.5f, -0.2f, 0.05f, -3.0f, 0.25f, -0.31f};
        double t = 0.3;
        float[] want = {1.2f, 0f, 0f, -2.7f, 0f, -0.01f};
        for (int i = 0; i < x.length; i++) assertEquals(want[i], Sora.softThreshold(x[i], t), 1e-6, "T_0.3(" + x[i] + ")");
        assertEquals(0f, Sora.softThreshold(0.3f, 0.3f));
        assertEquals(0f, Sora.softThreshold(-0.29f, 0.3));

        // through the method: lambda 3, lr 0.1 -> threshold 0.3 on every gate after the update
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(6, 12), "sora", Map.of("lambda", "3"));
        for (LoraLayer l : lm.layers("default").values()) System.arraycopy(x, 0, l.mid().data(), l.mid().dataOffset(), 6);
        lm.afterStep("default", 0, 0.1);
        for (LoraLayer l : lm.layers("default").values()) {
            float[] g = l.mid().toFloatArray();
            for (int i = 0; i < 6; i++) assertEquals((float) (x[i] - Math.signum(x[i]) * 0.3) * (Math.abs(x[i]) > 0.3 ? 1 : 0), g[i], 1e-6, "gate " + i);
            for (int i : new int[] {1, 2, 4}) assertEquals(0f, g[i], "exactly zero");
        }
    }

    @Test
    void gateIsADiagonalBetweenBAndAAndTrainablesAreRInPlusOutPlusR() {
        CausalLM m = tiny();
        float[] base = logits(m);
        LoraModel lm = adapt(m, config(4, 8), "sora", Map.of());
        assertArrayEquals(base, logits(m), "identity at init (B = 0)");
        long want = 0;
        for (LoraLayer l : lm.layers("default").values()) {
            assertEquals(1, l.mid().rank());
            assertEquals(4, l.mid().dim(0));
            assertTrue(l.mid().requiresGrad());
            want += 4L * (l.base().inFeatures() + l.base().outFeatures()) + 4;
        }
        assertEquals(want, lm.trainableCount("default"));
        LoraModel ones = adapt(tiny(), config(4, 8), "sora", Map.of("gate_init", "ones"));
        for (LoraLayer l : ones.layers("default").values()) assertArrayEquals(new float[] {1, 1, 1, 1}, l.mid().toFloatArray());
        assertThrows(IllegalArgumentException.class, () -> adapt(tiny(), config(4, 8), "sora", Map.of("gate_init", "zeros")));
    }

    @Test
    void prunedAdapterGivesIdenticalOutputsWithFewerRanks(@TempDir Path dir) throws Exception {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "sora", Map.of());
        DyLoraTest.perturbB(lm, 9);
        List<LoraLayer> ls = List.copyOf(lm.layers("default").values());
        ls.get(0).mid().data()[ls.get(0).mid().dataOffset() + 1] = 0f;
        ls.get(0).mid().data()[ls.get(0).mid().dataOffset() + 3] = 0f;
        for (int j = 1; j < 4; j++) ls.get(1).mid().data()[ls.get(1).mid().dataOffset() + j] = 0f;
        for (int j = 0; j < 4; j++) ls.get(2).mid().data()[ls.get(2).mid().dataOffset() + j] = 0f;
        float[] adapted = logits(m);

        LoraModel.PlainExport pruned = lm.exportPlainLora("default");
        LoraModel.PlainExport full = lm.exportPlainLora("default", false);
        assertEquals(4, pruned.config().r(), "untouched modules keep rank 4");
        String m0 = name(lm, 0), m1 = name(lm, 1), m2 = name(lm, 2);
        assertEquals(2, pruned.config().rankFor(m0));
        assertEquals(1, pruned.config().rankFor(m1));
        assertFalse(pruned.tensors().containsKey(LoraModel.PREFIX + m2 + ".lora_A.weight"), "a layer with every gate zero is left out");
        assertEquals(2, pruned.tensors().get(LoraModel.PREFIX + m0 + ".lora_A.weight").dim(0));
        assertEquals(4, full.tensors().get(LoraModel.PREFIX + m0 + ".lora_A.weight").dim(0));
        long prunedCount = pruned.tensors().values().stream().mapToLong(Tensor::numel).sum();
        long fullCount = full.tensors().values().stream().mapToLong(Tensor::numel).sum();
        assertTrue(prunedCount < fullCount, prunedCount + " < " + fullCount);

        pruned.save(dir.resolve("pruned"));
        CausalLM fresh = tiny();
        new LoraModel(fresh, 1).load(dir.resolve("pruned"), "default", w -> fail(w));
        assertClose(adapted, logits(fresh), 2e-5, "pruned plain LoRA on the unchanged base");
        full.save(dir.resolve("full"));
        CausalLM fresh2 = tiny();
        new LoraModel(fresh2, 1).load(dir.resolve("full"), "default", w -> fail(w));
        assertClose(logits(fresh2), logits(fresh), 2e-5, "pruned == unpruned export");
    }

    @Test
    void aLargeLambdaDrivesGatesToExactZerosInATrainerRunAndTheExportShrinks(@TempDir Path out, @TempDir Path all) throws Exception {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "sora", Map.of("lambda", "20"));
        TrainingOptions opt = TrainingOptions.defaults(6).withLr(1e-2).withSchedule(LrSchedule.CONSTANT, 0);
        trainer(m, lm, chain(16, 9, 5), opt, out).run();
        int zeros = 0, total = 0;
        for (LoraLayer l : lm.layers("default").values())
            for (float g : l.mid().toFloatArray()) { total++; if (g == 0f) zeros++; }
        // each step thresholds by 20 x 0.01 = 0.2, six steps 1.2: most N(0, 1) gates die, the largest survive
        assertTrue(zeros > total / 2 && zeros < total, zeros + " of " + total + " gates exactly zero");
        float[] adapted = logits(m);
        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        int ranks = 0;
        for (String mod : lm.layers("default").keySet()) ranks += ex.config().rankFor(mod);
        assertTrue(ranks < total, "exported ranks " + ranks + " < " + total);
        ex.save(out.resolve("plain"));
        CausalLM fresh = tiny();
        new LoraModel(fresh, 1).load(out.resolve("plain"), "default", w -> fail(w));
        assertClose(adapted, logits(fresh), 2e-5, "pruned export");

        // a huge lambda zeroes every gate at the first update: the adapter is the base again
        CausalLM m2 = tiny();
        LoraModel lm2 = adapt(m2, config(4, 8), "sora", Map.of("lambda", "1e6"));
        trainer(m2, lm2, chain(16, 9, 5), opt.withSteps(2), all).run();
        for (LoraLayer l : lm2.layers("default").values()) assertArrayEquals(new float[4], l.mid().toFloatArray());
        assertArrayEquals(logits(tiny()), logits(m2));
    }

    @Test
    void sparsifyingScheduleRaisesLambdaStageByStage() {
        MethodConfig lin = MethodConfig.of("sora", Map.of("lambda", "1", "max_lambda", "10", "lambda_stages", "10",
                "lambda_schedule", "linear", "stage_steps", "5"));
        assertEquals(1.0, Sora.lambdaAt(0, lin), 1e-12);
        assertEquals(1.0, Sora.lambdaAt(4, lin), 1e-12);
        assertEquals(2.0, Sora.lambdaAt(5, lin), 1e-12);
        assertEquals(6.0, Sora.lambdaAt(27, lin), 1e-12);
        assertEquals(10.0, Sora.lambdaAt(45, lin), 1e-12);
        assertEquals(10.0, Sora.lambdaAt(10_000, lin), 1e-12, "stays at the last value");
        MethodConfig geo = MethodConfig.of("sora", Map.of("lambda", "0.1", "max_lambda", "10", "lambda_stages", "3",
                "lambda_schedule", "exp_linear", "stage_steps", "2"));
        assertEquals(0.1, Sora.lambdaAt(1, geo), 1e-12);
        assertEquals(1.0, Sora.lambdaAt(2, geo), 1e-12);
        assertEquals(10.0, Sora.lambdaAt(4, geo), 1e-12);
        MethodConfig log = MethodConfig.of("sora", Map.of("lambda", "0", "max_lambda", "1", "lambda_stages", "2",
                "lambda_schedule", "log_linear", "stage_steps", "1"));
        assertEquals(0.0, Sora.lambdaAt(0, log), 1e-12);
        assertEquals(1.0, Sora.lambdaAt(1, log), 1e-12);
        MethodConfig none = MethodConfig.of("sora", Map.of("lambda", "0.7"));
        assertEquals(0.7, Sora.lambdaAt(123, none));
        var e = assertThrows(IllegalArgumentException.class,
                () -> adapt(tiny(), config(4, 8), "sora", Map.of("lambda_schedule", "linear")));
        assertTrue(e.getMessage().contains("stage_steps"), e.getMessage());

        // in a run: the scheduled lambda x lr is what each update thresholds by
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "sora", Map.of("lambda", "1", "max_lambda", "3", "lambda_stages", "3",
                "lambda_schedule", "linear", "stage_steps", "1"));
        for (LoraLayer l : lm.layers("default").values()) java.util.Arrays.fill(l.mid().data(), l.mid().dataOffset(), l.mid().dataOffset() + 4, 1f);
        lm.afterStep("default", 0, 0.1);   // lambda 1 -> 0.9
        lm.afterStep("default", 1, 0.1);   // lambda 2 -> 0.7
        lm.afterStep("default", 7, 0.1);   // lambda 3 -> 0.4
        for (LoraLayer l : lm.layers("default").values()) assertEquals(0.4f, l.mid().toFloatArray()[2], 1e-6);
    }

    @Test
    void theProximalStepWorksWithAnyGatedMethodThroughTheTrainer(@TempDir Path out) throws Exception {
        CausalLM m = tiny();
        LoraConfig c = LoraConfig.builder().r(4).alpha(4).targets("q_proj", "v_proj").build();
        LoraModel lm = adapt(m, c, "loldu", Map.of());
        TrainingOptions opt = TrainingOptions.defaults(3).withLr(1e-3).withSchedule(LrSchedule.CONSTANT, 0);
        Trainer t = trainer(m, lm, chain(8, 9, 6), opt, out);
        t.withAfterUpdate((step, lr) -> Sora.proximalStep(lm.layers("default").values(), 1e6 * lr));
        t.run();
        for (LoraLayer l : lm.layers("default").values()) assertArrayEquals(new float[4], l.mid().toFloatArray(), "LoLDU's diagonal z soft-thresholded to zero");
        float[] adapted = logits(m);
        LoraModel.PlainExport pruned = lm.exportPlainLora("default", true), kept = lm.exportPlainLora("default");
        String q = name(lm, 0);
        assertTrue(pruned.config().rankFor(q) < kept.config().rankFor(q), pruned.config().rankFor(q) + " < " + kept.config().rankFor(q));
        pruned.save(out.resolve("plain"));
        CausalLM fresh = tiny();
        new LoraModel(fresh, 1).load(out.resolve("plain"), "default", w -> fail(w));
        assertClose(adapted, logits(fresh), 5e-5, "pruned LoLDU export");
        assertThrows(IllegalArgumentException.class, () -> Sora.proximalStep(adapt(tiny(), c, "lora", Map.of()).layers("default").values(), 0.1),
                "plain LoRA has no gate");
    }

    private static String name(LoraModel lm, int i) { return List.copyOf(lm.layers("default").keySet()).get(i); }
}
