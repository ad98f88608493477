package io.peft4j.data;

import io.peft4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Format conversion logic with the one-token-per-char {@link CharTokenizer}, so every label can be predicted. */
class DataLoaderTest {
    @TempDir Path dir;
    private final CharTokenizer tok = new CharTokenizer(true);
    private final CharTokenizer noBos = new CharTokenizer(false);

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        return p;
    }

    private static String jsonl(String... objects) { return String.join("\n", objects) + "\n"; }

    /** The concatenation BOS doc EOS BOS doc EOS ... as the char tokenizer produces it. */
    private static int[] stream(List<String> docs, boolean bos) {
        List<Integer> s = new ArrayList<>();
        for (String d : docs) {
            if (bos) s.add(CharTokenizer.BOS);
            for (char c : d.toCharArray()) s.add(CharTokenizer.id(c));
            s.add(CharTokenizer.EOS);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    // ---------------------------------------------------------------- TEXT

    @Test
    void packingArithmeticOverRandomDocuments() throws IOException {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int trial = 0; trial < 30; trial++) {
            int nDocs = 1 + rnd.nextInt(6), L = 1 + rnd.nextInt(12);
            List<String> docs = new ArrayList<>();
            StringBuilder file = new StringBuilder();
            for (int d = 0; d < nDocs; d++) {
                StringBuilder sb = new StringBuilder();
                int len = 1 + rnd.nextInt(20);
                for (int i = 0; i < len; i++) sb.append((char) ('a' + rnd.nextInt(26)));
                docs.add(sb.toString());
                file.append("{\"text\": \"").append(sb).append("\"}\n");
            }
            boolean pad = rnd.nextBoolean();
            Path f = write("t" + trial + ".jsonl", file.toString());
            Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, L).optPadLastWindow(pad).build(), tok);
            int[] s = stream(docs, true);
            int N = s.length, full = (N - 1) / L, tail = N - 1 - full * L;
            String ctx = "trial " + trial + " N=" + N + " L=" + L;
            assertEquals(full + (pad && tail > 0 ? 1 : 0), ds.size(), ctx);
            assertEquals(pad ? 0 : tail, ds.report().droppedTailTokens(), ctx);
            for (int k = 0; k < ds.size(); k++) {
                Example e = ds.get(k);
                int len = k < full ? L : tail;
                assertArrayEquals(Arrays.copyOfRange(s, k * L, k * L + len), e.ids(), ctx + " window " + k);
                assertArrayEquals(Arrays.copyOfRange(s, k * L + 1, k * L + 1 + len), e.labels(), ctx + " window " + k);
            }
            assertEquals(nDocs, ds.report().rowsRead());
            // Every token after the first is a target exactly once (when the tail is kept).
            if (pad) assertEquals(N - 1, ds.targetCount(), ctx);
        }
    }

    @Test
    void textWithoutBosOrPacking() throws IOException {
        Path f = write("d.jsonl", jsonl("{\"text\": \"abc\"}", "{\"text\": \"\"}", "{\"text\": \"defghij\"}"));
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, 4).optPacking(false).build(), noBos);
        assertEquals(2, ds.size());
        assertEquals(1, ds.report().emptyRows());
        int a = CharTokenizer.id('a'), b = CharTokenizer.id('b'), c = CharTokenizer.id('c'), E = CharTokenizer.EOS;
        assertArrayEquals(new int[] {a, b, c}, ds.get(0).ids());
        assertArrayEquals(new int[] {b, c, E}, ds.get(0).labels());
        // "defghij" + EOS is 8 tokens: cut to seqLen + 1 = 5, giving 4 inputs.
        assertArrayEquals(Arrays.copyOf(stream(List.of("defghij"), false), 4), ds.get(1).ids());
        assertArrayEquals(Arrays.copyOfRange(stream(List.of("defghij"), false), 1, 5), ds.get(1).labels());
        assertEquals(1, ds.report().truncated());
    }

    @Test
    void plainTextFileIsOnlyText() throws IOException {
        Path f = write("doc.txt", "To be, or not to be");
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, 5).build(), tok);
        assertEquals((stream(List.of("To be, or not to be"), true).length - 1) / 5, ds.size());
        DataException e = assertThrows(DataException.class,
                () -> DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 5).build(), tok));
        assertTrue(e.getMessage().contains("doc.txt") && e.getMessage().contains("TEXT"));
    }

    // ---------------------------------------------------------------- COMPLETION

    /** Asserts the labels are exactly the completion's chars then EOS, each at the position before it. */
    private static void assertCompletionLabels(Example e, String head, String completion, boolean bos) {
        int off = bos ? 1 : 0;
        String full = head + completion;
        int n = off + full.length() + 1; // + EOS
        assertEquals(n - 1, e.length());
        for (int t = 0; t < e.length(); t++) {
            int next = t + 1; // token index of the target
            int expected;
            if (next < off + head.length()) expected = Example.IGNORE;
            else if (next < off + full.length()) expected = CharTokenizer.id(full.charAt(next - off));
            else expected = CharTokenizer.EOS;
            assertEquals(expected, e.labels()[t], "position " + t + " of '" + full + "'");
        }
    }

    @Test
    void completionStylesAndMasks() throws IOException {
        Path f = write("c.jsonl", jsonl(
                "{\"prompt\": \"2+2=\", \"completion\": \"4\"}",
                "{\"instruction\": \"Reverse\", \"input\": \"abc\", \"output\": \"cba\"}",
                "{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"hi\"}",
                "{\"question\": \"Q?\", \"answer\": \"A.\\n#### 1\"}"));
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 64).build(), tok);
        assertEquals(4, ds.size());
        assertCompletionLabels(ds.get(0), "2+2=\n", "4", true);
        assertCompletionLabels(ds.get(1), "Reverse\n\nabc\n", "cba", true);
        assertCompletionLabels(ds.get(2), "Say hi\n", "hi", true);
        assertCompletionLabels(ds.get(3), "Q?\n", "A.\n#### 1", true);
        assertEquals(1 + 1 + 3 + 1 + 2 + 1 + 9 + 1, ds.targetCount());

        Dataset custom = DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 64)
                .optPromptTemplate("### Q: {prompt}\n### A: ").optAddBos(false).build(), tok);
        assertCompletionLabels(custom.get(0), "### Q: 2+2=\n### A: ", "4", false);
    }

    @Test
    void completionConfiguredFieldsTruncationAndDrops() throws IOException {
        Path f = write("c.csv", "src,tgt\nabcdefgh,XY\nab,XYZW\n");
        DataConfig cfg = DataConfig.builder(DataFormat.COMPLETION, 6).optCompletionFields("src", "tgt").build();
        Dataset ds = DataLoader.load(f, cfg, tok);
        // Row 1: BOS + 9 prompt chars ("abcdefgh\n"): seqLen 6 leaves no completion token -> dropped, counted.
        // Row 2: BOS a b \n X Y Z W EOS = 9 tokens, cut to 7: inputs BOS a b \n X Y, targets on X Y Z.
        assertEquals(1, ds.size());
        assertEquals(1, ds.report().droppedNoTarget());
        assertEquals(2, ds.report().truncated());
        int I = Example.IGNORE;
        assertArrayEquals(new int[] {I, I, I, CharTokenizer.id('X'), CharTokenizer.id('Y'), CharTokenizer.id('Z')}, ds.get(0).labels());

        Path missing = write("m.jsonl", jsonl("{\"prompt\": \"a\", \"completion\": \"b\"}", "{\"prompt\": \"a\"}", "{\"foo\": 1}"));
        DataException e = assertThrows(DataException.class, () -> DataLoader.load(missing,
                DataConfig.builder(DataFormat.COMPLETION, 8).build(), tok));
        assertEquals(2, e.line());
        assertTrue(e.problem().contains("missing field 'completion'"), e.getMessage());
        Dataset skipped = DataLoader.load(missing, DataConfig.builder(DataFormat.COMPLETION, 8).optSkipBadRows(true).build(), tok);
        assertEquals(1, skipped.size());
        assertEquals(2, skipped.report().rowsSkipped());
        assertTrue(skipped.report().skipReasons().get(1).contains(":3: no completion fields"), skipped.report().summary());
    }

    // ---------------------------------------------------------------- CHAT

    @Test
    void chatLossOnlyOnAssistantTurns() throws IOException {
        Path f = write("chat.jsonl", jsonl(
                "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
                        + " {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye\"},"
                        + " {\"role\": \"assistant\", \"content\": \"Ciao\"}]}",
                "{\"messages\": [{\"from\": \"human\", \"value\": \"x\"}, {\"from\": \"gpt\", \"value\": \"y\"}]}"));
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CHAT, 512).optChatFormat("chatml").build(), tok);
        assertEquals(2, ds.size());
        assertEquals(List.of("Hello!<|im_end|>", "Ciao<|im_end|>"), labelRuns(ds.get(0)));
        assertEquals(List.of("y<|im_end|>"), labelRuns(ds.get(1)));
        // The inputs are the rendered conversation minus its last token.
        String rendered = "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\ny<|im_end|>\n";
        assertEquals(rendered.substring(0, rendered.length() - 1), tok.decode(ds.get(1).ids()));
    }

    /** Decoded runs of consecutive labelled positions. */
    private List<String> labelRuns(Example e) {
        List<String> runs = new ArrayList<>();
        StringBuilder cur = null;
        for (int l : e.labels()) {
            if (l == Example.IGNORE) {
                if (cur != null) { runs.add(cur.toString()); cur = null; }
            } else {
                if (cur == null) cur = new StringBuilder();
                cur.append(tok.decode(new int[] {l}));
            }
        }
        if (cur != null) runs.add(cur.toString());
        return runs;
    }

    @Test
    void chatMalformedRows() throws IOException {
        Path f = write("bad.jsonl", jsonl(
                "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}",
                "{\"messages\": \"not a list\"}",
                "{\"messages\": [{\"role\": \"wizard\", \"content\": \"a\"}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": [1]}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"only a question\"}]}",
                "{\"messages\": []}"));
        DataConfig strict = DataConfig.builder(DataFormat.CHAT, 64).optChatFormat("zephyr").build();
        DataException e = assertThrows(DataException.class, () -> DataLoader.load(f, strict, tok));
        assertEquals(2, e.line());
        Dataset ds = DataLoader.load(f, strict.toBuilder().optSkipBadRows(true).build(), tok);
        LoadReport r = ds.report();
        assertEquals(1, ds.size());
        assertEquals(3, r.rowsSkipped(), r.summary());
        assertEquals(1, r.droppedNoTarget(), "a conversation with no assistant turn has nothing to learn");
        assertEquals(1, r.emptyRows());
        assertTrue(r.skipReasons().get(1).contains(":3:") && r.skipReasons().get(1).contains("wizard"), r.summary());
        assertTrue(r.skipReasons().get(2).contains(":4: message 0 content is an array"), r.summary());
    }

    /** Like CharTokenizer, but each space is preceded by a marker token (id 5) with no source text. */
    private static Tokenizer markerTokenizer() {
        CharTokenizer base = new CharTokenizer(true);
        return new Tokenizer() {
            @Override public int[] encode(String text, boolean addBos) { return encodeWithOffsets(text, addBos).ids(); }
            @Override public Encoding encodeWithOffsets(String text, boolean addBos) {
                Encoding e = base.encodeWithOffsets(text, addBos);
                List<int[]> toks = new ArrayList<>();
                for (int i = 0; i < e.size(); i++) {
                    if (e.ends()[i] > e.starts()[i] && text.charAt(e.starts()[i]) == ' ')
                        toks.add(new int[] {5, e.starts()[i], e.starts()[i]});
                    toks.add(new int[] {e.ids()[i], e.starts()[i], e.ends()[i]});
                }
                int[] ids = new int[toks.size()], st = new int[toks.size()], en = new int[toks.size()];
                for (int i = 0; i < ids.length; i++) { ids[i] = toks.get(i)[0]; st[i] = toks.get(i)[1]; en[i] = toks.get(i)[2]; }
                return new Encoding(ids, st, en);
            }
            @Override public String decode(int[] ids) { return base.decode(ids); }
            @Override public String decodeNext(int previous, int id) { return base.decodeNext(previous, id); }
            @Override public StreamDecoder newStreamDecoder() { return base.newStreamDecoder(); }
            @Override public int vocabSize() { return base.vocabSize(); }
            @Override public int bosId() { return base.bosId(); }
            @Override public int eosId() { return base.eosId(); }
            @Override public int tokenId(String token) { return base.tokenId(token); }
        };
    }

    @Test
    void tokensWithoutSourceTextInsideATargetSpanAreTargets() throws IOException {
        Tokenizer t = markerTokenizer();
        Path f = write("m.jsonl", jsonl("{\"prompt\": \"p q\", \"completion\": \"a b\"}"));
        Example e = DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 64).build(), t).get(0);
        // Sequence: BOS p M ' ' q \n a M ' ' b EOS; the marker inside the prompt is not a target, the one in the completion is.
        int I = Example.IGNORE, M = 5;
        assertArrayEquals(new int[] {I, I, I, I, I, CharTokenizer.id('a'), M, CharTokenizer.id(' '), CharTokenizer.id('b'), CharTokenizer.EOS},
                e.labels());

        Path c = write("mc.jsonl", jsonl("{\"messages\": [{\"role\": \"user\", \"content\": \"u v\"}, {\"role\": \"assistant\", \"content\": \"x y\"}]}"));
        Example ch = DataLoader.load(c, DataConfig.builder(DataFormat.CHAT, 256).optChatFormat("chatml").build(), t).get(0);
        List<Integer> targets = new ArrayList<>();
        for (int l : ch.labels()) if (l != Example.IGNORE) targets.add(l);
        List<Integer> expected = new ArrayList<>(List.of(CharTokenizer.id('x'), M, CharTokenizer.id(' '), CharTokenizer.id('y')));
        for (char ch2 : "<|im_end|>".toCharArray()) expected.add(CharTokenizer.id(ch2));
        assertEquals(expected, targets);
    }

    // ---------------------------------------------------------------- CLASSIFICATION

    @Test
    void classificationIntegerLabels() throws IOException {
        Path f = write("c.tsv", "sentence\tlabel\ngood film\t1\nbad\t0\nfine\t2\n");
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CLASSIFICATION, 4).build(), tok);
        assertEquals(List.of("0", "1", "2"), ds.labelNames());
        assertEquals(List.of(1, 0, 2), ds.examples().stream().map(Example::classLabel).toList());
        assertArrayEquals(new int[] {CharTokenizer.BOS, CharTokenizer.id('g'), CharTokenizer.id('o'), CharTokenizer.id('o')}, ds.get(0).ids());
        assertEquals(0, ds.get(0).targetCount());
        assertEquals(2, ds.report().truncated(), "'good film' and 'fine' exceed 4 tokens with BOS");
    }

    @Test
    void classificationStringLabelsAreSortedAndEvalUsesTrainNames() throws IOException {
        Path train = write("train.jsonl", jsonl("{\"text\": \"a\", \"label\": \"pos\"}", "{\"text\": \"b\", \"label\": \"neg\"}",
                "{\"text\": \"c\", \"label\": \"neutral\"}", "{\"text\": \"d\", \"label\": \"pos\"}"));
        Path eval = write("eval.jsonl", jsonl("{\"text\": \"e\", \"label\": \"pos\"}", "{\"text\": \"f\", \"label\": \"other\"}"));
        DataConfig cfg = DataConfig.builder(DataFormat.CLASSIFICATION, 16).build();
        Dataset ds = DataLoader.load(train, cfg, tok);
        assertEquals(List.of("neg", "neutral", "pos"), ds.labelNames());
        assertEquals(List.of(2, 0, 1, 2), ds.examples().stream().map(Example::classLabel).toList());

        DataException e = assertThrows(DataException.class, () -> DataLoader.load(eval, cfg, tok, ds.labelNames()));
        assertEquals(2, e.line());
        assertTrue(e.problem().contains("'other'") && e.problem().contains("[neg, neutral, pos]"), e.getMessage());
        Dataset ev = DataLoader.load(eval, cfg.toBuilder().optSkipBadRows(true).build(), tok, ds.labelNames());
        assertEquals(1, ev.size());
        assertEquals(2, ev.get(0).classLabel());
        assertEquals(1, ev.report().rowsSkipped());
        assertEquals(1, ev.report().rowsRead());

        Dataset.Split split = DataLoader.loadSplit(train, eval, 0, cfg.toBuilder().optSkipBadRows(true).build(), tok);
        assertEquals(ds.labelNames(), split.eval().labelNames());
    }

    @Test
    void classificationExplicitNamesAndBadLabels() throws IOException {
        Path f = write("c.jsonl", jsonl("{\"text\": \"a\", \"label\": 1}", "{\"text\": \"b\", \"label\": \"yes\"}",
                "{\"text\": \"c\", \"label\": 0.5}", "{\"text\": \"d\", \"label\": 7}", "{\"text\": \"e\"}"));
        DataConfig cfg = DataConfig.builder(DataFormat.CLASSIFICATION, 16).optLabelNames(List.of("no", "yes"))
                .optSkipBadRows(true).build();
        Dataset ds = DataLoader.load(f, cfg, tok);
        assertEquals(List.of(1, 1), ds.examples().stream().map(Example::classLabel).toList());
        assertEquals(3, ds.report().rowsSkipped(), ds.report().summary());
        String reasons = String.join("\n", ds.report().skipReasons());
        assertTrue(reasons.contains(":3: label field 'label' is a number (0.5)"), reasons);
        assertTrue(reasons.contains(":5: missing field 'label'"), reasons);
        assertTrue(reasons.contains(":4: label 7 is out of range"), reasons);

        Path neg = write("n.jsonl", jsonl("{\"text\": \"a\", \"label\": 1}", "{\"text\": \"b\", \"label\": -1}"));
        DataException e = assertThrows(DataException.class, () -> DataLoader.load(neg, DataConfig.builder(DataFormat.CLASSIFICATION, 8).build(), tok));
        assertEquals(2, e.line());
    }

    // ---------------------------------------------------------------- filter, weights, split

    @Test
    void filterAndWeights() throws IOException {
        Path f = write("w.jsonl", jsonl("{\"text\": \"a\", \"label\": 0, \"status\": \"ok\", \"w\": 2}",
                "{\"text\": \"b\", \"label\": 1, \"status\": \"bad\", \"w\": 1}",
                "{\"text\": \"c\", \"label\": 1, \"status\": \"ok\"}",
                "{\"text\": \"d\", \"label\": 1, \"w\": 1}"));
        Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CLASSIFICATION, 8).optFilter("status", "ok")
                .optWeightField("w").build(), tok);
        assertEquals(2, ds.size());
        assertEquals(2, ds.report().rowsFiltered());
        assertEquals(2, ds.report().rowsRead());
        assertEquals(2f, ds.get(0).weight());
        assertEquals(1f, ds.get(1).weight());
        assertTrue(ds.hasWeights());
    }

    @Test
    void evalSplitIsTheLastTenPercent() throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 95; i++) sb.append("{\"prompt\": \"p").append(i).append("\", \"completion\": \"c\"}\n");
        Path f = write("s.jsonl", sb.toString());
        DataConfig cfg = DataConfig.builder(DataFormat.COMPLETION, 32).build();
        Dataset all = DataLoader.load(f, cfg, tok);
        Dataset.Split s = DataLoader.loadSplit(f, null, 0.1, cfg, tok);
        assertEquals(85, s.train().size());
        assertEquals(10, s.eval().size()); // round(9.5) = 10
        for (int i = 0; i < 85; i++) assertArrayEquals(all.get(i).ids(), s.train().get(i).ids());
        for (int i = 0; i < 10; i++) assertArrayEquals(all.get(85 + i).ids(), s.eval().get(i).ids());
        assertTrue(tok.decode(s.eval().get(0).ids()).startsWith("p85\n"));
        assertEquals(0, DataLoader.loadSplit(f, null, 0, cfg, tok).eval().size());
        assertThrows(IllegalArgumentException.class, () -> DataLoader.loadSplit(f, f, 0.1, cfg, tok));
    }
}
