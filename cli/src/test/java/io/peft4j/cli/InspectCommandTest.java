package io.peft4j.cli;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class InspectCommandTest {
    @Test
    void describesStories260K() {
        Path bin = CliRun.asset("models/stories260K/stories260K.bin");
        CliRun r = CliRun.of("inspect", bin.toString());
        assertEquals(0, r.code(), r.err());
        String out = r.out();
        assertTrue(out.contains("architecture:  LlamaForCausalLM"), out);
        assertTrue(out.contains("layers 5, heads 8 (kv 4)"), out);
        // 512*64 embedding + 5 * (64*64*2 + 32*64*2 + 3*64*172 + 2*64) + 64 final norm (tied head)
        long expected = 512 * 64 + 5L * (64 * 64 * 2 + 32 * 64 * 2 + 3 * 64 * 172 + 2 * 64) + 64;
        assertTrue(out.contains(String.format("parameters:    %,d", expected)), out);
        assertTrue(out.contains("F32"), out);
        assertTrue(out.contains("bytes on disk: 1.06 MB"), out);
    }

    @Test
    void countsByModuleKindForGpt2AndBert() {
        CliRun g = CliRun.of("inspect", CliRun.fixture("gpt2").toString());
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().contains("GPT2LMHeadModel") && g.out().contains("attention") && g.out().contains("mlp"), g.out());
        CliRun b = CliRun.of("inspect", CliRun.fixture("bert_cls").toString());
        assertEquals(0, b.code(), b.err());
        assertTrue(b.out().contains("BertForSequenceClassification") && b.out().contains("labels 3") && b.out().contains("head"), b.out());
    }

    @Test
    void unknownPathIsOneErrorLine() {
        CliRun r = CliRun.of("inspect", "/nonexistent/model");
        assertEquals(1, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("/nonexistent/model"), r.err());
    }
}
