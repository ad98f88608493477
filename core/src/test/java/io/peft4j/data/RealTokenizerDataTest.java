package io.peft4j.data;

import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.ChatTemplate;
import io.peft4j.tokenizer.HfTokenizer;
import io.peft4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Completion and chat loss masks with the real llama2 (TinyLlama, Zephyr chat) and Qwen3 tokenizers. */
class RealTokenizerDataTest {
    private static final Map<String, HfTokenizer> CACHE = new HashMap<>();
    @TempDir Path dir;

    static HfTokenizer tok(String name) throws IOException {
        HfTokenizer t = CACHE.get(name);
        if (t == null) {
            t = HfTokenizer.load(Assets.require("tokenizers/" + name));
            CACHE.put(name, t);
        }
        return t;
    }

    @AfterAll
    static void close() {
        CACHE.values().forEach(HfTokenizer::close);
        CACHE.clear();
    }

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        return p;
    }

    /** Runs of consecutive labelled positions, as token ids. */
    static List<int[]> labelRuns(Example e) {
        List<int[]> runs = new ArrayList<>();
        int start = -1;
        int[] l = e.labels();
        for (int t = 0; t <= l.length; t++) {
            boolean on = t < l.length && l[t] != Example.IGNORE;
            if (on && start < 0) start = t;
            if (!on && start >= 0) { runs.add(Arrays.copyOfRange(l, start, t)); start = -1; }
        }
        return runs;
    }

    /** Labels must be the next input token wherever they are set (a shifted copy of the sequence). */
    static void assertShifted(Example e) {
        for (int t = 0; t + 1 < e.length(); t++)
            if (e.labels()[t] != Example.IGNORE) assertEquals(e.ids()[t + 1], e.labels()[t], "label at " + t);
    }

    @Test
    void completionLossIsExactlyTheCompletionAndEos() throws IOException {
        String prompt = "Natalia sold clips to 48 of her friends. How many?", completion = "She sold 48/2 = 24.\n#### 72";
        Path f = write("c.jsonl", "{\"question\": \"" + prompt + "\", \"answer\": \"" + completion.replace("\n", "\\n") + "\"}\n");
        for (String name : List.of("llama2", "qwen3")) {
            Tokenizer t = tok(name);
            Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 256).build(), t);
            Example e = ds.get(0);
            assertShifted(e);
            List<int[]> runs = labelRuns(e);
            assertEquals(1, runs.size(), name + ": one contiguous run of targets at the end");
            int[] run = runs.getFirst();
            assertEquals(t.eosId(), run[run.length - 1], name + ": the EOS ending the completion is learned");
            int[] body = Arrays.copyOf(run, run.length - 1);
            // Independent of offsets: the full text's tokens split at the prompt's token count.
            String head = prompt + "\n";
            boolean bos = t.bosId() >= 0;
            int[] full = t.encode(head + completion, bos), headIds = t.encode(head, bos);
            assertArrayEquals(Arrays.copyOf(full, headIds.length), headIds, name + ": the boundary is a token boundary");
            assertArrayEquals(Arrays.copyOfRange(full, headIds.length, full.length), body, name);
            assertEquals(completion, t.decode(body), name);
            // Every input position before the last prompt token predicts nothing.
            for (int i = 0; i < headIds.length - 1; i++) assertEquals(Example.IGNORE, e.labels()[i], name + " position " + i);
            assertEquals(full.length, e.length(), name + ": inputs are the sequence minus the final EOS");
        }
    }

    @Test
    void qwen3ChatLossIsExactlyTheAssistantTurns() throws IOException {
        HfTokenizer t = tok("qwen3");
        String conv = "{\"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"},"
                + "{\"role\": \"user\", \"content\": \"Capital of France?\"}, {\"role\": \"assistant\", \"content\": \"Paris.\"},"
                + "{\"role\": \"user\", \"content\": \"And of Italy?\"}, {\"role\": \"assistant\", \"content\": \"Rome \u2014 Roma.\"}]}\n";
        Path f = write("chat.jsonl", conv);
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CHAT, 512).build(), t);
        Example e = ds.get(0);
        assertShifted(e);
        List<int[]> runs = labelRuns(e);
        // The template comes from the tokenizer (Qwen3): the answer to the last query carries an empty think block.
        List<String> spans = List.of("Paris.<|im_end|>", "<think>\n\n</think>\n\nRome \u2014 Roma.<|im_end|>");
        assertEquals(spans.size(), runs.size());
        int imEnd = t.tokenId("<|im_end|>");
        for (int i = 0; i < spans.size(); i++) {
            assertArrayEquals(t.encode(spans.get(i), false), runs.get(i), "assistant turn " + i);
            assertEquals(imEnd, runs.get(i)[runs.get(i).length - 1]);
        }
        // Nothing else is learned: the targets are exactly those tokens.
        assertEquals(t.encode(spans.get(0), false).length + t.encode(spans.get(1), false).length, e.targetCount());
    }

    @Test
    void llama2ZephyrChatLossIsExactlyTheAssistantTurns() throws IOException {
        HfTokenizer t = tok("llama2");
        assertEquals(ChatTemplate.Format.ZEPHYR, ChatTemplate.forTokenizer(t).format(), "TinyLlama's tokenizer_config template");
        Path f = write("chat.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"Say hi\"},"
                + "{\"role\": \"assistant\", \"content\": \"Hi there!\"}, {\"role\": \"user\", \"content\": \"Again\"},"
                + "{\"role\": \"assistant\", \"content\": \"Hi again.\"}]}\n");
        Example e = DataLoader.load(f, DataConfig.builder(DataFormat.CHAT, 512).build(), t).get(0);
        assertShifted(e);
        List<int[]> runs = labelRuns(e);
        assertEquals(2, runs.size());
        assertEquals(List.of("Hi there!", "Hi again."), runs.stream().map(t::decode).toList());
        for (int[] r : runs) assertEquals(t.eosId(), r[r.length - 1], "the turn's </s> is learned");
        // The role header tokens just before each run are not learned.
        String rendered = ChatTemplate.forTokenizer(t).render(List.of(ChatTemplate.Message.user("Say hi"),
                ChatTemplate.Message.assistant("Hi there!"), ChatTemplate.Message.user("Again"),
                ChatTemplate.Message.assistant("Hi again.")), false).text();
        int[] all = t.encode(rendered, false);
        assertEquals(all.length - 1, e.length());
        assertArrayEquals(Arrays.copyOf(all, all.length - 1), e.ids());
    }

    @Test
    void chatTruncationKeepsOnlyWhatFits() throws IOException {
        HfTokenizer t = tok("qwen3");
        Path f = write("long.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "word ".repeat(40)
                + "\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]}\n");
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CHAT, 16).build(), t);
        assertEquals(0, ds.size());
        assertEquals(1, ds.report().droppedNoTarget());
        assertEquals(1, ds.report().truncated());
    }
}
