package io.peft4j.data;

import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Loads the shared datasets and checks the counts against the files counted independently (line splitting), and
 * that the token statistics are plausible. Row counts use the char tokenizer (fast); the real llama2 tokenizer
 * covers the two text-heavy cases.
 */
class RealDatasetsTest {
    private final CharTokenizer chars = new CharTokenizer(true);

    private static List<String> nonBlankLines(Path p) throws IOException {
        return Files.readAllLines(p, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
    }

    @Test
    void tinyShakespeareAsPackedText() throws IOException {
        Path f = Assets.require("datasets/tinyshakespeare/input.txt");
        String text = Files.readString(f);
        int L = 256;
        // Exact arithmetic with one token per char: BOS + text + EOS.
        Dataset byChar = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, L).build(), chars);
        long n = text.length() + 2;
        assertEquals((n - 1) / L, byChar.size());
        assertEquals((n - 1) % L, byChar.report().droppedTailTokens());
        assertEquals(text.substring(0, L - 1), chars.decode(byChar.get(0).ids()));
        Dataset.Split s = byChar.splitLast(0.1);
        assertEquals(Math.round(byChar.size() * 0.1), s.eval().size());
        int firstEval = s.train().size();
        assertEquals(text.substring(firstEval * L - 1, firstEval * L - 1 + L), chars.decode(s.eval().get(0).ids()),
                "the held-out windows are the end of the text");

        try (HfTokenizer t = HfTokenizer.load(Assets.require("tokenizers/llama2"))) {
            Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, L).build(), t);
            long tokens = ds.size() * (long) L + ds.report().droppedTailTokens() + 1;
            assertTrue(tokens > text.length() / 5 && tokens < text.length() / 2, "implausible token count " + tokens + " for " + text.length() + " chars");
            assertEquals(ds.size() * (long) L, ds.targetCount());
            assertEquals(t.bosId(), ds.get(0).ids()[0]);
            assertTrue(t.decode(ds.get(0).ids()).startsWith("First Citizen:\nBefore we proceed"));
        }
    }

    @Test
    void sst2TsvAsClassification() throws IOException {
        Path f = Assets.require("datasets/sst2/sst2_glue_dev.tsv");
        List<String> lines = nonBlankLines(f);
        long positives = lines.stream().skip(1).filter(l -> l.endsWith("\t1")).count();
        try (HfTokenizer t = HfTokenizer.load(Assets.require("tokenizers/llama2"))) {
            Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.CLASSIFICATION, 128).build(), t);
            assertEquals(lines.size() - 1, ds.size());
            assertEquals(872, ds.size());
            assertEquals(List.of("0", "1"), ds.labelNames());
            assertEquals(positives, ds.examples().stream().filter(e -> e.classLabel() == 1).count());
            assertTrue(positives > 0.4 * ds.size() && positives < 0.6 * ds.size(), "SST-2 dev is roughly balanced");
            assertEquals(0, ds.report().truncated());
            double meanLen = ds.tokenCount() / (double) ds.size();
            assertTrue(meanLen > 10 && meanLen < 60, "mean tokens per sentence " + meanLen);
            assertTrue(ds.examples().stream().allMatch(e -> e.ids()[0] == t.bosId()));
        }
    }

    @Test
    void gsm8kJsonlAsCompletion() throws IOException {
        for (String split : List.of("train", "test")) {
            Path f = Assets.require("datasets/gsm8k/" + split + ".jsonl");
            int rows = nonBlankLines(f).size();
            Dataset ds = DataLoader.load(f, DataConfig.builder(DataFormat.COMPLETION, 4096).build(), chars);
            assertEquals(rows, ds.size(), split);
            assertEquals(split.equals("train") ? 7473 : 1319, rows);
            assertEquals(0, ds.report().truncated());
            for (Example e : ds.examples()) {
                // Answers end "#### <number>" then EOS: the last two labels are a digit and EOS.
                int[] l = e.labels();
                assertEquals(CharTokenizer.EOS, l[l.length - 1]);
                assertTrue(Character.isDigit((char) (l[l.length - 2] - CharTokenizer.OFFSET)));
                assertEquals(Example.IGNORE, l[0], "the question is never a target");
            }
        }
    }

    @Test
    void alpacaLibreJsonlAsCompletionWithStatusFilter() throws IOException {
        Path f = Assets.require("datasets/alpaca-libre/alpaca_libre_tasks_v3.jsonl");
        List<String> lines = nonBlankLines(f);
        long ok = lines.stream().filter(l -> l.startsWith("{\"status\": \"ok\"")).count();
        DataConfig cfg = DataConfig.builder(DataFormat.COMPLETION, 4096).build();
        Dataset all = DataLoader.load(f, cfg, chars);
        assertEquals(lines.size(), all.size());
        assertEquals(1205, all.size());
        Dataset good = DataLoader.load(f, cfg.toBuilder().optFilter("status", "ok").build(), chars);
        assertEquals(ok, good.size());
        assertEquals(lines.size() - ok, good.report().rowsFiltered());
        // Rows with an input render it after a blank line.
        long withInput = all.examples().stream().filter(e -> chars.decode(e.ids()).contains("\n\n")).count();
        assertTrue(withInput > 0 && withInput < all.size());
    }

    @Test
    void wikisqlJsonlAsTextWithEvalFile() throws IOException {
        Path train = Assets.require("datasets/wikisql-mlx/train.jsonl"), valid = Assets.require("datasets/wikisql-mlx/valid.jsonl");
        DataConfig cfg = DataConfig.builder(DataFormat.TEXT, 4096).optPacking(false).build();
        Dataset.Split s = DataLoader.loadSplit(train, valid, 0, cfg, chars);
        assertEquals(nonBlankLines(train).size(), s.train().size());
        assertEquals(1000, s.train().size());
        assertEquals(100, s.eval().size());
        assertEquals(0, s.train().report().truncated());
        for (Example e : s.train().examples()) assertTrue(chars.decode(e.ids()).startsWith("table: "));
        Dataset packed = DataLoader.load(train, DataConfig.builder(DataFormat.TEXT, 512).build(), chars);
        long n = s.train().tokenCount() + s.train().size(); // each document's inputs plus its final target
        assertEquals((n - 1) / 512, packed.size());
    }
}
