package io.peft4j.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GenerateCommandTest {
    /** The text run.c printed after {@code ./run ... -t 0.0} in the model card (parsed, not pasted). */
    static String runCGreedyText(Path card) throws IOException {
        return block(card, "-t 0.0");
    }

    static String block(Path card, String flag) throws IOException {
        List<String> lines = Files.readAllLines(card);
        int i = 0;
        while (i < lines.size() && !(lines.get(i).startsWith("$ ./run") && lines.get(i).contains(flag))) i++;
        assertTrue(i < lines.size(), "no '$ ./run ... " + flag + "' block in " + card);
        StringBuilder b = new StringBuilder();
        for (i++; i < lines.size() && !lines.get(i).startsWith("```"); i++) b.append(b.isEmpty() ? "" : "\n").append(lines.get(i));
        return b.toString();
    }

    @Test
    void greedyStories260KFromBinMatchesRunCExactly() throws IOException {
        Path dir = CliRun.asset("models/stories260K");
        CliRun r = CliRun.of("generate", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--temperature", "0", "--max-tokens", "256");
        assertEquals(0, r.code(), r.err());
        assertEquals(runCGreedyText(dir.resolve("stories260K.md")) + "\n", r.out(), "stdout holds the generated text only");
        assertTrue(r.err().contains("tok/s"), "timings go to stderr");
    }

    @Test
    void greedyStories260KFromHfDirectoryMatchesRunCExactly() throws IOException {
        Path dir = CliRun.asset("models/stories260K");
        Path hf = CliRun.asset("models/stories260K-hf");
        CliRun r = CliRun.of("generate", "--model", hf.toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--temperature", "0", "--max-tokens", "256");
        assertEquals(0, r.code(), r.err());
        assertEquals(runCGreedyText(dir.resolve("stories260K.md")) + "\n", r.out());
    }

    @Test
    void llama2cSamplerWithRunCSeedReproducesRunCSample() throws IOException {
        // the card's second sample: ./run ... -t 1.0 -p 0.9 -s 133742
        Path dir = CliRun.asset("models/stories260K");
        CliRun r = CliRun.of("generate", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--temperature", "1.0", "--top-p", "0.9", "--seed", "133742", "--sampler", "llama2c", "--max-tokens", "256");
        assertEquals(0, r.code(), r.err());
        assertEquals(block(dir.resolve("stories260K.md"), "-s 133742") + "\n", r.out());
    }

    @Test
    void stopStringAndPromptAreHonoured() {
        Path dir = CliRun.asset("models/stories260K");
        CliRun r = CliRun.of("generate", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "100", "--stop", "Lily.");
        assertEquals(0, r.code(), r.err());
        // greedy continuation of the prompt, cut before the stop string (the prompt itself is not echoed)
        assertEquals(", there was a little girl named \n", r.out());
        assertTrue(r.err().contains("stopped: stop_string"), r.err());
    }

    @Test
    void aMissingAdapterFolderIsOneClearLine() {
        Path dir = CliRun.asset("models/stories260K");
        CliRun r = CliRun.of("generate", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--adapter", "some/dir", "--temperature", "0");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: some/dir: no adapter_config.json"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void missingTokenizerSaysWhereItLooked() {
        Path dir = CliRun.asset("models/stories260K");
        CliRun r = CliRun.of("generate", "--model", dir.resolve("stories260K.bin").toString(), "--temperature", "0");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no tokenizer.json or tokenizer.bin next to the model; pass --tokenizer PATH"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }
}
