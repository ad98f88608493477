package io.peft4j.train;

import io.peft4j.testing.ToyData;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TrainerTest {

    static CausalLM tinyModel() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    static LoraModel withLora(CausalLM m, double dropout) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", LoraConfig.builder().r(4).alpha(8).dropout(dropout).targets("q_proj", "v_proj", "down_proj").build());
        return lm;
    }

    static Trainer trainer(CausalLM m, LoraModel lm, Dataset train, Dataset eval, TrainingOptions opt, Path out) {
        Batcher b = new Batcher(train, Batcher.Options.training(2, opt.seed(), 0));
        return new Trainer(m, lm, "default", b, eval, 4, 0, opt, out, new PrintStream(new ByteArrayOutputStream()));
    }

    @Test
    void lossFallsAndOutputsAreWritten(@TempDir Path out) throws IOException {
        CausalLM m = tinyModel();
        LoraModel lm = withLora(m, 0.0);
        Dataset data = ToyData.chain(40, 17, 1);
        Dataset.Split split = data.splitLast(0.1);
        TrainingOptions opt = TrainingOptions.defaults(30).withLr(1e-2).withEval(10, 0).withSchedule(LrSchedule.COSINE, 3);
        Trainer t = trainer(m, lm, split.train(), split.eval(), opt, out);
        double before = Evaluator.evaluate(m, split.eval(), 4, 0, 0).loss();
        Trainer.Result r = t.run();
        assertEquals(30, r.steps());
        assertTrue(r.lastEval().loss() < before - 0.5, "eval loss " + before + " -> " + r.lastEval().loss());
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.png"))
            assertTrue(Files.exists(out.resolve(f)), f);
        assertNotNull(Trainer.latestCheckpoint(out));
        long rows = Files.readAllLines(out.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"loss\"")).count();
        assertEquals(30, rows);
    }

    @Test
    void resumeContinuesTheIdenticalLossCurve(@TempDir Path straight, @TempDir Path resumed) throws IOException {
        Dataset data = ToyData.chain(24, 13, 2);
        TrainingOptions opt = TrainingOptions.defaults(8).withLr(5e-3).withSaveEvery(4).withSchedule(LrSchedule.LINEAR, 2);
        CausalLM m1 = tinyModel();
        trainer(m1, withLora(m1, 0.1), data, null, opt, straight).run();

        CausalLM m2 = tinyModel();
        trainer(m2, withLora(m2, 0.1), data, null, opt, resumed).run(4);   // interrupted after the step-4 checkpoint
        // a new process: fresh model and adapter objects, resuming from the step-4 checkpoint
        CausalLM m3 = tinyModel();
        trainer(m3, withLora(m3, 0.1), data, null, opt.withResume(true), resumed).run();

        List<Double> a = losses(straight), b = losses(resumed);
        assertEquals(8, a.size());
        assertEquals(a, b, "resumed run must reproduce the uninterrupted loss curve exactly");
    }

    @Test
    void gradientAccumulationMatchesTheLargerBatch(@TempDir Path one, @TempDir Path two) throws IOException {
        Dataset data = ToyData.chain(8, 9, 3);   // equal lengths: every micro-batch has the same number of targets
        TrainingOptions base = TrainingOptions.defaults(3).withLr(1e-2);
        CausalLM m1 = tinyModel();
        LoraModel l1 = withLora(m1, 0);
        new Trainer(m1, l1, "default", new Batcher(data, Batcher.Options.inOrder(4, 0)), null, 4, 0, base, one,
                new PrintStream(new ByteArrayOutputStream())).run();
        CausalLM m2 = tinyModel();
        LoraModel l2 = withLora(m2, 0);
        new Trainer(m2, l2, "default", new Batcher(data, Batcher.Options.inOrder(2, 0)), null, 4, 0, base.withGradAccum(2), two,
                new PrintStream(new ByteArrayOutputStream())).run();
        List<Double> a = losses(one), b = losses(two);
        for (int i = 0; i < a.size(); i++) assertEquals(a.get(i), b.get(i), 1e-4, "step " + (i + 1));
    }

    @Test
    void earlyStoppingEndsARunThatStopsImproving(@TempDir Path out) throws IOException {
        CausalLM m = tinyModel();
        LoraModel lm = withLora(m, 0);
        Dataset data = ToyData.chain(20, 9, 4);
        // a learning rate far too high makes the eval loss worsen after the first evaluations
        TrainingOptions opt = TrainingOptions.defaults(200).withLr(3.0).withEval(1, 0).withPatience(2).withSchedule(LrSchedule.CONSTANT, 0);
        Trainer.Result r = trainer(m, lm, data, ToyData.chain(4, 9, 5), opt, out).run();
        assertTrue(r.stoppedEarly());
        assertTrue(r.steps() < 200);
    }

    static List<Double> losses(Path out) throws IOException {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<Double> l = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            var n = json.readTree(line);
            if (n.has("loss")) l.add(n.get("loss").asDouble());
        }
        return l;
    }
}
