package io.peft4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** train, eval, merge, forward and generate with adapters, end to end through the CLI. */
class AdapterCommandsTest {
    static float[] logits(Path file) throws Exception {
        try (SafetensorsFile f = Safetensors.open(file)) { return f.get("logits").toFloatArray(); }
    }

    @Test
    void forwardWithAPeftAdapterMatchesTheTorchReference(@TempDir Path tmp) throws Exception {
        Path model = CliRun.fixture("llama_gqa");
        Path adapter = model.getParent().getParent().resolve("lora").resolve("llama_lora");
        int[] ids;
        float[] expected;
        try (SafetensorsFile g = Safetensors.open(adapter.resolve("golden.safetensors"))) {
            Tensor t = g.get("input_ids");
            ids = new int[(int) t.numel()];
            for (int i = 0; i < ids.length; i++) ids[i] = (int) t.getFlat(i);
            expected = g.get("logits").toFloatArray();
        }
        StringBuilder csv = new StringBuilder();
        for (int id : ids) csv.append(csv.isEmpty() ? "" : ",").append(id);
        Path out = tmp.resolve("l.safetensors");
        CliRun r = CliRun.of("forward", "--model", model.toString(), "--adapter", adapter.toString(), "--ids", csv.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        float[] got = logits(out);
        for (int i = 0; i < got.length; i++) assertEquals(expected[i], got[i], 1e-4, "logit " + i);
    }

    @Test
    void trainEvalMergeAndGenerateOnStories260K(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path shakespeare = CliRun.asset("datasets/tinyshakespeare/input.txt");
        // a small slice keeps the test fast
        Path data = tmp.resolve("shakespeare.txt");
        Files.writeString(data, Files.readString(shakespeare).substring(0, 40_000));
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        Path run = tmp.resolve("run");
        CliRun train = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--format", "text",
                "--targets", "all-linear", "--r", "4", "--steps", "8", "--lr", "3e-3", "--batch", "4", "--seq-len", "64", "--out", run.toString());
        assertEquals(0, train.code(), train.err());
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "training_args.json", "loss.png"))
            assertTrue(Files.exists(run.resolve(f)), f);
        assertTrue(train.err().contains("step 8/8"), train.err());

        CliRun eval = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--data", data.toString(),
                "--format", "text", "--seq-len", "64", "--last-fraction", "0.1", "--json");
        assertEquals(0, eval.code(), eval.err());
        List<String> lines = eval.out().strip().lines().toList();
        JsonNode json = new ObjectMapper().readTree(lines.getLast());
        assertTrue(json.get("loss").asDouble() > 0 && json.get("perplexity").asDouble() > 1, eval.out());

        Path merged = tmp.resolve("merged");
        CliRun merge = CliRun.of("merge", "--model", model, "--adapter", run.toString(), "--out", merged.toString());
        assertEquals(0, merge.code(), merge.err());
        Path a = tmp.resolve("a.safetensors"), b = tmp.resolve("b.safetensors");
        assertEquals(0, CliRun.of("forward", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--prompt", "Once upon a time", "--out", a.toString()).code());
        assertEquals(0, CliRun.of("forward", "--model", merged.toString(), "--tokenizer", tok, "--prompt", "Once upon a time", "--out", b.toString()).code());
        float[] la = logits(a), lb = logits(b);
        for (int i = 0; i < la.length; i++) assertEquals(la[i], lb[i], 1e-4, "merged model == base + adapter, logit " + i);

        CliRun gen = CliRun.of("generate", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--temperature", "0", "--max-tokens", "20");
        assertEquals(0, gen.code(), gen.err());
        assertFalse(gen.out().isBlank());
    }

    @Test
    void classificationTrainsAScoreHeadAndEvalReportsAccuracy(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path sst2 = CliRun.asset("datasets/sst2/sst2_glue_dev.tsv");
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        Path run = tmp.resolve("cls");
        CliRun train = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", sst2.toString(), "--format", "classification",
                "--targets", "all-linear", "--r", "4", "--steps", "6", "--lr", "3e-3", "--batch", "8", "--seq-len", "64", "--out", run.toString());
        assertEquals(0, train.code(), train.err());
        assertTrue(train.out().contains("classification accuracy"), train.out());
        assertTrue(Files.readString(run.resolve("adapter_config.json")).contains("SEQ_CLS"));
        CliRun eval = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--data", sst2.toString(),
                "--format", "classification", "--seq-len", "64", "--last-fraction", "0.1", "--json");
        assertEquals(0, eval.code(), eval.err());
        JsonNode json = new ObjectMapper().readTree(eval.out().strip().lines().toList().getLast());
        double acc = json.get("accuracy").asDouble();
        assertTrue(acc >= 0 && acc <= 1 && json.get("loss").asDouble() > 0, eval.out());
    }

    @Test
    void combiningAdaptersWritesOnePeftAdapter(@TempDir Path tmp) throws Exception {
        Path model = CliRun.fixture("llama_gqa");
        Path lora = model.getParent().getParent().resolve("lora");
        Path out = tmp.resolve("cat");
        CliRun r = CliRun.of("merge", "--model", model.toString(), "--adapter", lora.resolve("llama_lora").toString(), "--weight", "0.5",
                "--adapter", lora.resolve("llama_rslora_patterns").toString(), "--weight", "0.5", "--combination", "cat", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")));
        assertTrue(Files.readString(out.resolve("adapter_config.json")).contains("\"peft_type\" : \"LORA\""));
    }
}
