package io.peft4j.generate;

import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The real stories260K model generates, greedily from BOS, exactly the text llama2.c's run.c printed for it
 * (parsed from the model card; run.c's {@code -n 256} = 256 positions from BOS = 256 sampled tokens), both from
 * the llama2.c checkpoint and from its HF conversion.
 */
class Stories260KTest {
    /** The block run.c printed after {@code ./run ... -t 0.0}, from the model card. */
    static String expectedGreedyText(Path modelCard) throws IOException {
        List<String> lines = Files.readAllLines(modelCard);
        int cmd = -1;
        for (int i = 0; i < lines.size(); i++)
            if (lines.get(i).startsWith("$ ./run") && lines.get(i).contains("-t 0.0")) { cmd = i; break; }
        assertTrue(cmd >= 0, "no '$ ./run ... -t 0.0' line in " + modelCard);
        StringBuilder b = new StringBuilder();
        for (int i = cmd + 1; i < lines.size() && !lines.get(i).startsWith("```"); i++) {
            if (!b.isEmpty()) b.append('\n');
            b.append(lines.get(i));
        }
        assertTrue(b.length() > 100, "expected text block too short in " + modelCard);
        return b.toString();
    }

    static String generate(Path model, Path tokenizer) throws IOException {
        try (CausalLM lm = Models.loadCausalLM(model); Tokenizer tok = Tokenizers.load(tokenizer)) {
            StringBuilder streamed = new StringBuilder();
            Generator.Result r = new Generator(lm, tok).generate("", GenerationConfig.greedy().withMaxNewTokens(256), streamed::append);
            assertEquals(r.text(), streamed.toString(), "streamed pieces must concatenate to the result text");
            return r.text();
        }
    }

    @Test
    void greedyFromLlama2cCheckpointMatchesRunC() throws IOException {
        Path dir = Assets.require("models/stories260K");
        String expected = expectedGreedyText(dir.resolve("stories260K.md"));
        assertEquals(expected, generate(dir.resolve("stories260K.bin"), dir.resolve("tok512.bin")));
    }

    @Test
    void greedyFromHfDirectoryMatchesRunC() throws IOException {
        Path dir = Assets.require("models/stories260K");
        Path hf = Assets.require("models/stories260K-hf");
        String expected = expectedGreedyText(dir.resolve("stories260K.md"));
        assertEquals(expected, generate(hf, dir.resolve("tok512.bin")));
    }
}
