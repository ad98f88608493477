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

/** {@code peft4j federated} on stories260K and a slice of tiny Shakespeare: a DP run, its files, and `eval --adapter` on the result. */
class FederatedCommandTest {
    @Test
    void aDpFederatedRunWritesAnAdapterThatEvalLoads(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path data = CliRun.shakespeare(tmp, 20_000);
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        Path run = tmp.resolve("fed");
        CliRun fed = CliRun.of("federated", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--clients", "2",
                "--rounds", "2", "--local-steps", "2", "--batch", "4", "--seq-len", "32", "--max-eval-examples", "8",
                "--dp", "--clip", "1.0", "--noise", "1.0", "--out", run.toString());
        assertEquals(0, fed.code(), fed.err());
        assertTrue(fed.err().contains("round 2/2") && fed.err().contains("epsilon"), fed.err());
        assertTrue(fed.out().contains("epsilon"), fed.out());
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json", MethodConfig.FILE, "metrics.jsonl", "loss.png", "federated_args.json"))
            assertTrue(Files.exists(run.resolve(f)), f);
        JsonNode last = new ObjectMapper().readTree(Files.readAllLines(run.resolve("metrics.jsonl")).getLast());
        assertEquals(2, last.get("round").asInt());
        assertTrue(last.get("epsilon").asDouble() > 0);

        CliRun eval = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", run.toString(), "--data", data.toString(),
                "--format", "text", "--seq-len", "32", "--max-batches", "2");
        assertEquals(0, eval.code(), eval.err());

        CliRun bad = CliRun.of("federated", "--model", model, "--tokenizer", tok, "--data", data.toString(), "--noise", "1.0",
                "--out", tmp.resolve("bad").toString());
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("--dp"), bad.err());
    }
}
