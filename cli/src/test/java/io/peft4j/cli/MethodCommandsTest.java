package io.peft4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.adapters.MethodConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** methods, train --method, export and compare through the CLI on stories260K. */
class MethodCommandsTest {
    @Test
    void methodsListsEveryMethodWithItsOptions() {
        CliRun r = CliRun.of("methods");
        assertEquals(0, r.code(), r.err());
        for (String m : List.of("lora", "lora-ga", "eva", "slora", "nlora", "inttune", "loldu", "lora-sb", "lamda", "lamda++"))
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(m + " ")), m + " listed:\n" + r.out());
        assertFalse(r.out().contains("in progress"), r.out());
    }

    @Test
    void trainAMethodThenExportItAsAPlainLoraWithTheSameLogits(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path data = CliRun.shakespeare(tmp, 30_000);
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        Path run = tmp.resolve("run");
        CliRun train = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--format", "text",
                "--method", "lora-ga", "--opt", "batches=2", "--targets", "q_proj,v_proj,down_proj", "--r", "4", "--steps", "4",
                "--lr", "3e-3", "--batch", "4", "--seq-len", "64", "--out", run.toString());
        assertEquals(0, train.code(), train.err());
        assertTrue(train.err().contains("calibration"), "calibration progress shown:\n" + train.err());
        assertTrue(Files.exists(run.resolve(MethodConfig.FILE)));
        JsonNode args = new ObjectMapper().readTree(run.resolve("training_args.json").toFile());
        assertEquals("lora-ga", args.get("method").asText());
        assertEquals("2", args.get("method_options").get("batches").asText());

        Path plain = tmp.resolve("plain");
        CliRun export = CliRun.of("export", "--model", model, "--adapter", run.toString(), "--format", "peft-lora", "--out", plain.toString());
        assertEquals(0, export.code(), export.err());
        assertFalse(Files.exists(plain.resolve(MethodConfig.FILE)));
        Path a = tmp.resolve("a.safetensors"), b = tmp.resolve("b.safetensors");
        assertEquals(0, CliRun.of("forward", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--prompt", "Once upon a time", "--out", a.toString()).code());
        assertEquals(0, CliRun.of("forward", "--model", model, "--tokenizer", tok, "--adapter", plain.toString(), "--prompt", "Once upon a time", "--out", b.toString()).code());
        float[] la = AdapterCommandsTest.logits(a), lb = AdapterCommandsTest.logits(b);
        for (int i = 0; i < la.length; i++) assertEquals(la[i], lb[i], 1e-4, "exported plain LoRA == method adapter, logit " + i);

        CliRun bad = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--format", "text",
                "--method", "eva", "--opt", "nonsense=1", "--steps", "1", "--out", tmp.resolve("bad").toString());
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("nonsense") && bad.err().contains("eva"), bad.err());
    }

    @Test
    void aDyLoraAdapterIsServedAtAnyRankThroughAdapterOpt(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path data = CliRun.shakespeare(tmp, 30_000);
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        Path run = tmp.resolve("dy");
        CliRun train = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--format", "text",
                "--method", "dylora", "--targets", "all-linear", "--r", "4", "--steps", "6", "--lr", "5e-3", "--batch", "4",
                "--seq-len", "64", "--out", run.toString());
        assertEquals(0, train.code(), train.err());
        double[] loss = new double[5];
        for (int rank = 1; rank <= 4; rank++) {
            CliRun eval = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--adapter-opt",
                    "eval_rank=" + rank, "--data", data.toString(), "--format", "text", "--seq-len", "64", "--max-batches", "4", "--json");
            assertEquals(0, eval.code(), eval.err());
            loss[rank] = new ObjectMapper().readTree(eval.out().strip().lines().toList().getLast()).get("loss").asDouble();
        }
        assertNotEquals(loss[1], loss[4], "rank 1 and rank 4 are different adapters");
        CliRun bad = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--adapter-opt", "evl_rank=2",
                "--data", data.toString(), "--format", "text", "--seq-len", "64", "--max-batches", "1");
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("evl_rank") && bad.err().contains("eval_rank"), bad.err());
    }

    @Test
    void compareWritesATableJsonAndPlot(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path data = CliRun.shakespeare(tmp, 30_000);
        Path out = tmp.resolve("cmp");
        CliRun r = CliRun.of("compare", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--data", data.toString(), "--methods", "lora,inttune", "--steps", "4", "--seeds", "2", "--r", "4",
                "--seq-len", "64", "--lr", "3e-3", "--eval-every", "2", "--max-eval-batches", "2", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        for (String f : List.of("comparison.md", "comparison.json", "comparison.png")) assertTrue(Files.exists(out.resolve(f)), f);
        JsonNode json = new ObjectMapper().readTree(out.resolve("comparison.json").toFile());
        assertEquals(2, json.get("methods").size());
        for (JsonNode m : json.get("methods")) {
            assertEquals(3, m.get("eval_loss").size(), "steps 0, 2, 4");
            assertEquals(2, m.get("runs").size(), "two seeds");
            assertTrue(m.get("trainable").asLong() > 0);
        }
        assertTrue(json.get("methods").get(0).get("trainable").asLong() > json.get("methods").get(1).get("trainable").asLong(),
                "IntTune trains only r x r cores");
        assertTrue(r.out().contains("| lora |") && r.out().contains("| inttune |"), r.out());
    }
}
