package io.peft4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Per-token modality tags from TEXT rows given as {@code "segments"} (for MM-LoRA): through unpacked and packed
 * examples into batches, with the one-token-per-char {@link CharTokenizer} so every tag can be predicted.
 */
class ModalitySegmentsTest {
    @TempDir Path dir;
    private final CharTokenizer tok = new CharTokenizer(true);

    private Path write(String name, String... lines) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
        return p;
    }

    private static final String MIXED = "{\"segments\": [{\"text\": \"ab\", \"modality\": \"image\"}, {\"text\": \"cd\", \"modality\": 0}]}";

    @Test
    void segmentsTagEachTokenWithItsSegmentsModality() throws IOException {
        Path f = write("m.jsonl", MIXED, "{\"text\": \"ef\"}", "{\"segments\": [{\"text\": \"g\", \"modality\": 2}, {\"text\": \"\", \"modality\": 1}]}");
        Dataset d = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, 16).optPacking(false).build(), tok);
        assertEquals(3, d.size());
        // BOS a b c d [EOS]: inputs BOS a b c d, tags 0 1 1 0 0
        Example e = d.get(0);
        assertArrayEquals(new int[] {CharTokenizer.BOS, CharTokenizer.id('a'), CharTokenizer.id('b'), CharTokenizer.id('c'), CharTokenizer.id('d')}, e.ids());
        assertArrayEquals(new int[] {0, 1, 1, 0, 0}, e.modalities());
        assertNull(d.get(1).modalities(), "a plain text row has no tags");
        assertArrayEquals(new int[] {0, 2}, d.get(2).modalities(), "integer modalities; an empty segment adds nothing");

        // batches carry [batch * seqLen] tags, padding and untagged rows 0
        Batch b = new Batcher(d, Batcher.Options.inOrder(3, 0)).next();
        assertArrayEquals(new int[] {0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}, b.tags());
        Batch plain = new Batcher(d.slice(1, 2), Batcher.Options.inOrder(1, 0)).next();
        assertNull(plain.tags(), "no tags when no row has them");
    }

    @Test
    void packedWindowsKeepTheTagsOfTheirTokens() throws IOException {
        Path f = write("p.jsonl", "{\"text\": \"xy\"}", MIXED, "{\"text\": \"z\"}");
        Dataset d = DataLoader.load(f, DataConfig.builder(DataFormat.TEXT, 4).build(), tok);
        // stream: BOS x y EOS | BOS a b c d EOS | BOS z EOS  ->  tags 0 0 0 0 | 0 1 1 0 0 0 | 0 0 0  (13 tokens, 3 windows of 4)
        int[] tags = {0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
        assertEquals(3, d.size());
        for (int w = 0; w < 3; w++)
            assertArrayEquals(java.util.Arrays.copyOfRange(tags, w * 4, w * 4 + 4), d.get(w).modalities(), "window " + w);
    }

    @Test
    void taggedDataHasItsOwnFingerprintAndBadSegmentsNameTheLine() throws IOException {
        int[] ids = {5, 6, 7}, labels = {6, 7, 8};
        Dataset untagged = Dataset.of(List.of(new Example(ids, labels)));
        Dataset zeros = Dataset.of(List.of(new Example(ids, labels, -1, 1f, new int[] {0, 0, 0})));
        Dataset tagged = Dataset.of(List.of(new Example(ids, labels, -1, 1f, new int[] {0, 1, 0})));
        assertNotEquals(zeros.fingerprint(), tagged.fingerprint(), "a resume on differently tagged data is caught");
        assertEquals(untagged.fingerprint(), Dataset.of(List.of(new Example(ids, labels, -1, 1f))).fingerprint());

        Path bad = write("bad.jsonl", "{\"text\": \"ok\"}", "{\"segments\": [{\"text\": \"a\", \"modality\": \"audio\"}]}");
        var e = assertThrows(DataException.class, () -> DataLoader.load(bad, DataConfig.builder(DataFormat.TEXT, 8).build(), tok));
        assertTrue(e.getMessage().contains("bad.jsonl") && e.getMessage().contains(":2") && e.getMessage().contains("modality"), e.getMessage());
        Path notList = write("nl.jsonl", "{\"segments\": \"abc\"}");
        var e2 = assertThrows(DataException.class, () -> DataLoader.load(notList, DataConfig.builder(DataFormat.TEXT, 8).build(), tok));
        assertTrue(e2.getMessage().contains("segments"), e2.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Example(ids, labels, -1, 1f, new int[] {0, 1}));
    }
}
