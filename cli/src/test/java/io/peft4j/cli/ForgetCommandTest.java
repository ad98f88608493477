package io.peft4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.unlearn.SpeakerLines;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code peft4j forget} end to end on stories260K as a tiny-Shakespeare speaker classifier: train a classifier, forget
 * two speakers with GS-LoRA++, and check that {@code eval --forget-classes} on the saved adapters reproduces the
 * command's own "after" figures (so the forgetting adapter reloads exactly) and that forgotten-speaker loss rose.
 */
class ForgetCommandTest {
    @Test
    void forgetThenEvalReproducesTheReport(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        SpeakerLines.write(CliRun.asset("datasets/tinyshakespeare/input.txt"), tmp.resolve("sp"), 4, 5);
        String model = dir.resolve("stories260K.bin").toString(), tok = dir.resolve("tok512.bin").toString();
        String train = tmp.resolve("sp/train.jsonl").toString(), test = tmp.resolve("sp/test.jsonl").toString();
        Path clf = tmp.resolve("clf"), forget = tmp.resolve("forget");

        CliRun t = CliRun.of("train", "--model", model, "--tokenizer", tok, "--data", train, "--eval-data", test, "--eval-split", "0",
                "--format", "classification", "--targets", "all-linear", "--r", "4", "--dropout", "0", "--steps", "20", "--lr", "5e-3",
                "--batch", "8", "--seq-len", "48", "--out", clf.toString());
        assertEquals(0, t.code(), t.err());

        String classes = "GLOUCESTER,ROMEO";
        CliRun f = CliRun.of("forget", "--model", model, "--tokenizer", tok, "--adapter", clf.toString(), "--data", train,
                "--eval-data", test, "--eval-split", "0", "--format", "classification", "--forget-classes", classes,
                "--opt", "prototype=true", "--steps", "15", "--lr", "1e-2", "--batch", "8", "--seq-len", "48", "--out", forget.toString());
        assertEquals(0, f.code(), f.err());
        JsonNode rep = new ObjectMapper().readTree(forget.resolve("forget_report.json").toFile());
        JsonNode before = rep.get("before"), after = rep.get("after");
        assertTrue(after.get("forget_loss").asDouble() > before.get("forget_loss").asDouble() + 0.1,
                "forgotten speakers' loss should rise: " + rep);

        CliRun e = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--adapter", clf.toString(), "--adapter", forget.toString(),
                "--data", test, "--format", "classification", "--seq-len", "48", "--forget-classes", classes, "--json");
        assertEquals(0, e.code(), e.err());
        String[] lines = e.out().strip().split("\n");
        JsonNode ev = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertEquals(after.get("forget_accuracy").asDouble(), ev.get("forget_accuracy").asDouble(), 1e-9);
        assertEquals(after.get("retain_accuracy").asDouble(), ev.get("retain_accuracy").asDouble(), 1e-9);
        assertEquals(after.get("forget_loss").asDouble(), ev.get("forget_loss").asDouble(), 1e-4);

        CliRun bad = CliRun.of("eval", "--model", model, "--tokenizer", tok, "--data", test, "--format", "text",
                "--forget-classes", classes);
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("--format classification"), bad.err());
    }
}
