package io.peft4j.adapters.structure;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.Tape;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.ToyData;
import io.peft4j.train.AdamW;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class IncreLoraTest {
    private static final LoraConfig CAPACITY_4 = LoraConfig.builder().r(4).alpha(8).targets("q_proj", "up_proj", "down_proj").build();
    /** 9 modules from rank 1 to an average of 2 (budget 18), one rank to each of the top 2 every 4 updates after 4. */
    private static final Map<String, String> FAST = Map.of("init_rank", "1", "target_rank", "2", "add_rank", "1", "top_h", "2",
            "init_warmup", "4", "incre_interval", "4");

    private static BlockToy toy() {
        BlockToy m = new BlockToy(7, 6, 10, 3, 16);
        m.use[1] = 0f;                         // block 1 never reaches the loss: its modules have zero importance
        return m;
    }

    private static LoraModel adapt(BlockToy m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", CAPACITY_4, MethodConfig.of("increlora", options), null, null);
        return lm;
    }

    private static Map<String, Integer> ranks(LoraModel lm) {
        Map<String, Integer> r = new LinkedHashMap<>();
        lm.report("default").forEach((k, v) -> { if (k.startsWith("rank/")) r.put(k.substring(5), v.intValue()); });
        return r;
    }

    @Test
    void ranksGrowOnlyWhereImportanceIsHighAndTheBudgetHolds() {
        BlockToy m = toy();
        LoraModel lm = adapt(m, FAST);
        assertEquals(9, ranks(lm).size());
        ranks(lm).values().forEach(r -> assertEquals(1, r, "every module starts at init_rank"));
        AdamW opt = AdamW.withDefaults(lm.parameters("default"), 0.0);
        List<Integer> allocationUpdates = new ArrayList<>();
        for (int s = 0; s < 32; s++) {
            opt.zeroGrad();
            try (Tape tape = Tape.record()) { tape.backward(m.loss()); }
            lm.beforeUpdate("default", s);
            Map<String, Double> report = lm.report("default");        // scores as the allocation after this update sees them
            Map<String, Integer> before = ranks(lm);
            opt.step(0.01);
            lm.afterStep("default", s, 0.01);
            Map<String, Integer> after = ranks(lm);
            int total = after.values().stream().mapToInt(Integer::intValue).sum();
            assertTrue(total <= 18, "budget exceeded at update " + (s + 1) + ": " + total);
            Set<String> grown = new HashSet<>();
            after.forEach((k, v) -> { if (v > before.get(k)) { grown.add(k); assertEquals(before.get(k) + 1, v, k + " grows by add_rank"); } });
            if (grown.isEmpty()) continue;
            allocationUpdates.add(s + 1);
            // the modules that grew are the highest-scored ones among those with capacity left
            List<String> candidates = new ArrayList<>(before.keySet());
            candidates.removeIf(k -> before.get(k) >= 4);
            candidates.sort(Comparator.comparingDouble((String k) -> -report.get("score/" + k)));
            int budgetLeft = 18 - before.values().stream().mapToInt(Integer::intValue).sum();
            assertEquals(new HashSet<>(candidates.subList(0, Math.min(2, budgetLeft))), grown, "update " + (s + 1) + " scores " + report);
            for (String k : grown) assertTrue(report.get("score/" + k) > 0, k + " was important");
        }
        assertEquals(List.of(8, 12, 16, 20, 24), allocationUpdates, "after init_warmup, every incre_interval updates, until the budget is used");
        Map<String, Integer> end = ranks(lm);
        assertEquals(18, end.values().stream().mapToInt(Integer::intValue).sum(), "the whole budget is allocated");
        for (String mod : List.of("self_attn.q_proj", "mlp.up_proj", "mlp.down_proj"))
            assertEquals(1, end.get("model.layers.1." + mod), mod + " of the block without importance never grows");
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            int r = end.get(e.getKey());
            assertEquals(r, l.rankLimit(), e.getKey() + ": once the budget is used the reserve ranks are dropped");
            assertEquals(8.0 / r, l.scaling(), 1e-6, e.getKey() + ": scaling alpha / current rank");
        }
    }

    @Test
    void reserveRanksLearnInAdvanceWithTheirCoefficientHeldAtOneEMinus5() {
        BlockToy m = toy();
        LoraModel lm = adapt(m, Map.of("init_rank", "1", "target_rank", "3", "add_rank", "2", "init_warmup", "1000"));
        LoraLayer q0 = lm.layers("default").get("model.layers.0.self_attn.q_proj");
        assertEquals(1, q0.rankLimit(), "no reserve before the first update (as the authors add it after update 0)");
        BlockToy.train(lm, m, 1, 0.01);
        assertEquals(3, q0.rankLimit(), "after update 0: one active rank and add_rank reserve ranks");
        float[] reserveA = q0.loraA().toFloatArray().clone();
        BlockToy.train(lm, m, 1, 5, 0.01);
        for (int j = 1; j < 3; j++) assertEquals(IncreLora.RESERVE_E, q0.mid().getFlat(j), "reserve coefficient " + j + " stays 1e-5");
        float[] now = q0.loraA().toFloatArray();
        int in = q0.loraA().dim(1);
        double moved = 0;
        for (int i = in; i < 3 * in; i++) moved += Math.abs(now[i] - reserveA[i]);
        assertTrue(moved > 1e-4, "the reserve ranks' A rows train before the ranks are added (advance learning): moved " + moved);
        assertEquals(1, ranks(lm).get("model.layers.0.self_attn.q_proj"), "reserve ranks are not counted");
    }

    @Test
    void saveReloadKeepsEveryModulesRankAndExportIsCompact(@TempDir Path dir) throws IOException {
        BlockToy m = toy();
        LoraModel lm = adapt(m, FAST);
        BlockToy.train(lm, m, 14, 0.01);                           // mid-schedule: reserves still open, ranks differ
        float[] adapted = m.forward(m.x).toFloatArray();
        lm.save(dir.resolve("a"), "default");
        assertTrue(Files.readString(dir.resolve("a").resolve(MethodConfig.FILE)).contains(".limit"), "rank limits are saved in the method state");

        BlockToy fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 9);
        lm2.load(dir.resolve("a"), "default", w -> fail(w));
        assertArrayEquals(adapted, fresh.forward(fresh.x).toFloatArray(), "a reload gives identical outputs");
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l2 = lm2.layers("default").get(e.getKey());
            assertEquals(e.getValue().rankLimit(), l2.rankLimit(), e.getKey() + ": rank limit after reload");
            assertEquals(e.getValue().scaling(), l2.scaling(), e.getKey() + ": scaling after reload");
        }
        assertEquals(ranks(lm), ranks(lm2), "per-module ranks after reload");
        assertEquals(lm.methodState("default"), lm2.methodState("default"), "the whole schedule state survives (scores too)");

        LoraModel.PlainExport ex = lm.exportPlainLora("default");
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            Tensor a = ex.tensors().get(LoraModel.PREFIX + e.getKey() + ".lora_A.weight");
            assertEquals(e.getValue().rankLimit(), a.dim(0), e.getKey() + ": the export keeps only the ranks in use");
            assertEquals(e.getValue().rankLimit(), ex.config().rankFor(e.getKey()), e.getKey() + ": rank_pattern");
        }
        ex.save(dir.resolve("plain"));
        BlockToy original = toy();
        new LoraModel(original, 1).load(dir.resolve("plain"), "default", w -> fail(w));
        float[] got = original.forward(original.x).toFloatArray();
        for (int i = 0; i < adapted.length; i++) assertEquals(adapted[i], got[i], 3e-5 * (1 + Math.abs(adapted[i])), "plain export at " + i);
    }

    @Test
    void withoutAdvanceLearningRanksOpenDirectlyAndTheBudgetIsExact() {
        BlockToy m = toy();
        Map<String, String> o = new LinkedHashMap<>(FAST);
        o.put("advance_learning", "false");
        o.put("add_rank", "2");
        o.put("top_h", "4");
        LoraModel lm = adapt(m, o);
        BlockToy.train(lm, m, 20, 0.01);
        int total = 0;
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            int r = ranks(lm).get(e.getKey());
            assertEquals(r, e.getValue().rankLimit(), "no reserve without advance learning");
            total += r;
        }
        assertEquals(18, total, "9 ranks to add, 2 at a time to 4 modules: the last module gets 1 so the budget is exact");
    }

    @Test
    void trainerWritesRanksToMetricsAndResumesTheScheduleExactly(@TempDir Path straight, @TempDir Path resumed) throws IOException {
        Dataset data = ToyData.chain(16, 11, 3);
        TrainingOptions opt = TrainingOptions.defaults(8).withLr(5e-3).withSaveEvery(4);
        Map<String, String> o = Map.of("init_rank", "1", "target_rank", "2", "add_rank", "1", "top_h", "2", "init_warmup", "2", "incre_interval", "2");
        LoraConfig c = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj").build();

        CausalLM m1 = tiny();
        LoraModel a1 = llmAdapter(m1, c, o);
        trainer(m1, a1, data, opt, straight).run();
        ObjectMapper json = new ObjectMapper();
        List<Double> totals = new ArrayList<>();
        for (String line : Files.readAllLines(straight.resolve("metrics.jsonl"))) {
            JsonNode row = json.readTree(line);
            if (!row.has("loss")) continue;
            JsonNode method = row.get("method");
            assertNotNull(method, "every training row carries the method's figures: " + line);
            assertTrue(method.has("rank/model.layers.0.self_attn.q_proj"), line);
            totals.add(method.get("total_rank").asDouble());
        }
        assertEquals(8, totals.size());
        assertEquals(8.0, totals.get(0), "4 layers x (q, v) at rank 1");
        for (int i = 1; i < totals.size(); i++) assertTrue(totals.get(i) >= totals.get(i - 1) && totals.get(i) <= 16.0, "ranks over training: " + totals);
        assertTrue(totals.get(totals.size() - 1) > totals.get(0), "ranks grew: " + totals);

        CausalLM m2 = tiny();
        trainer(m2, llmAdapter(m2, c, o), data, opt, resumed).run(4);          // interrupted after the step-4 checkpoint
        CausalLM m3 = tiny();
        LoraModel a3 = llmAdapter(m3, c, o);                                   // a new process: fresh adapter at init ranks
        trainer(m3, a3, data, opt.withResume(true), resumed).run();
        assertEquals(a1.methodState("default"), a3.methodState("default"), "the resumed schedule (ranks, scores) is the uninterrupted one");
        for (Map.Entry<String, Tensor> e : a1.savedTensors("default").entrySet())
            assertArrayEquals(e.getValue().toFloatArray(), a3.savedTensors("default").get(e.getKey()).toFloatArray(), e.getKey());
    }

    private static CausalLM tiny() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    private static LoraModel llmAdapter(CausalLM m, LoraConfig c, Map<String, String> o) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", c, MethodConfig.of("increlora", o), null, null);
        return lm;
    }

    private static Trainer trainer(CausalLM m, LoraModel lm, Dataset data, TrainingOptions opt, Path out) {
        return new Trainer(m, lm, "default", new Batcher(data, Batcher.Options.training(2, opt.seed(), 0)), null, 4, 0, opt, out,
                new PrintStream(new ByteArrayOutputStream()));
    }
}
