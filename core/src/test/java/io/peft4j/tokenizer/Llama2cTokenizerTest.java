package io.peft4j.tokenizer;

import io.peft4j.testing.Assets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cTokenizerTest {
    static Llama2cTokenizer tok;

    @BeforeAll
    static void load() throws IOException {
        tok = Llama2cTokenizer.load(Assets.require("models/stories260K/tok512.bin"));
    }

    @Test
    void readsTheVocabulary() {
        assertEquals(512, tok.vocabSize());
        assertEquals(1, tok.bosId());
        assertEquals(2, tok.eosId());
        assertArrayEquals("<0x00>".getBytes(StandardCharsets.US_ASCII), tok.piece(3));
        assertArrayEquals("<0xFF>".getBytes(StandardCharsets.US_ASCII), tok.piece(258));
        assertTrue(tok.tokenId(" ") > 258, "dummy-prefix space token exists");
    }

    /** run.c's encode, literally: rescan every adjacent pair for the best merge until none is left. */
    static int[] referenceEncode(Llama2cTokenizer t, String text, boolean bos) {
        Map<String, Integer> lookup = new HashMap<>();
        for (int i = 0; i < t.vocabSize(); i++) lookup.putIfAbsent(new String(t.piece(i), StandardCharsets.ISO_8859_1), i);
        List<Integer> tokens = new ArrayList<>();
        if (bos) tokens.add(1);
        if (!text.isEmpty()) tokens.add(lookup.get(" "));
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        for (int c = 0; c < b.length; c++) {
            if ((b[c] & 0xC0) != 0x80) buf.reset();
            buf.write(b[c]);
            if (c + 1 < b.length && (b[c + 1] & 0xC0) == 0x80 && buf.size() < 4) continue;
            Integer id = lookup.get(buf.toString(StandardCharsets.ISO_8859_1));
            if (id != null) tokens.add(id);
            else for (byte x : buf.toByteArray()) tokens.add((x & 0xff) + 3);
            buf.reset();
        }
        while (true) {
            float best = -1e10f;
            int bestId = -1, bestIdx = -1;
            for (int i = 0; i + 1 < tokens.size(); i++) {
                String merged = new String(t.piece(tokens.get(i)), StandardCharsets.ISO_8859_1)
                        + new String(t.piece(tokens.get(i + 1)), StandardCharsets.ISO_8859_1);
                Integer id = lookup.get(merged);
                if (id != null && t.score(id) > best) { best = t.score(id); bestId = id; bestIdx = i; }
            }
            if (bestIdx == -1) break;
            tokens.set(bestIdx, bestId);
            tokens.remove(bestIdx + 1);
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void heapEncodeMatchesRunCsQuadraticEncode() throws IOException {
        List<String> texts = new ArrayList<>(TokenizerTestTexts.shakespeare(1, 150, 300));
        texts.addAll(TokenizerTestTexts.UNICODE);
        texts.addAll(TokenizerTestTexts.randomUnicode(2, 150, 40));
        // Repetitive text makes many equal-score pairs: the tie-break (leftmost) must match.
        texts.add("aaaaaaaaaaaaaaaaaaaaaaaaa aaaa aaa");
        texts.add("the the the the thethethe   the");
        texts.add("xlllx 9ppp9 zooo ball lll ooooo pppp"); // "ll", "pp", "oo" are tokens: which pair merges first matters
        for (String s : texts) {
            assertArrayEquals(referenceEncode(tok, s, true), tok.encode(s, true), () -> "text: " + s);
            assertArrayEquals(referenceEncode(tok, s, false), tok.encode(s, false), () -> "text: " + s);
        }
    }

    @Test
    void roundTripsShakespeareAndUnicode() throws IOException {
        List<String> texts = new ArrayList<>(TokenizerTestTexts.shakespeare(3, 200, 500));
        texts.addAll(TokenizerTestTexts.UNICODE);
        texts.addAll(TokenizerTestTexts.randomUnicode(4, 100, 30));
        for (String s : texts) assertEquals(s, tok.decode(tok.encode(s, true)), "round trip");
    }

    @Test
    void knownEncodings() {
        assertArrayEquals(new int[] {1}, tok.encode("", true));
        assertArrayEquals(new int[0], tok.encode("", false));
        // Code points missing from the 512-token vocabulary fall back to their UTF-8 bytes at id byte + 3.
        int[] ids = tok.encode("\u4e2d", false); // E4 B8 AD
        assertEquals(4, ids.length);
        assertArrayEquals(new int[] {0xE4 + 3, 0xB8 + 3, 0xAD + 3}, Arrays.copyOfRange(ids, 1, 4));
        assertEquals(tok.tokenId(" "), ids[0]);
        // Without BOS the dummy-prefix space is kept, as run.c prints it.
        assertEquals(" Once upon a time", tok.decode(tok.encode("Once upon a time", false)));
    }

    @Test
    void decodeNextFollowsRunC() {
        int once = tok.encode("Once", false)[0];
        String piece = new String(tok.piece(once), StandardCharsets.UTF_8);
        assertTrue(piece.startsWith(" "), "llama2.c pieces carry their leading space: " + piece);
        assertEquals(piece.substring(1), tok.decodeNext(1, once), "after BOS the leading space is stripped");
        assertEquals(piece, tok.decodeNext(-1, once));
        assertEquals("\n", tok.decodeNext(5, 0x0A + 3), "<0x0A> is the raw byte");
        assertEquals("", tok.decodeNext(5, 2), "EOS prints nothing");
    }

    @Test
    void streamDecoderJoinsByteFallbackIntoCharacters() throws IOException {
        List<String> texts = new ArrayList<>(TokenizerTestTexts.UNICODE);
        texts.addAll(TokenizerTestTexts.randomUnicode(5, 100, 30));
        texts.addAll(TokenizerTestTexts.shakespeare(6, 20, 200));
        for (String s : texts) {
            int[] ids = tok.encode(s, true);
            Tokenizer.StreamDecoder d = tok.newStreamDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                String p = d.next(id);
                assertFalse(p.contains("\uFFFD"), "no replacement char for valid input: " + s);
                sb.append(p);
            }
            sb.append(d.finish());
            assertEquals(s, sb.toString());
        }
        // The pieces of "中": nothing until the third byte, then the character.
        Tokenizer.StreamDecoder d = tok.newStreamDecoder();
        int[] ids = tok.encode("\u4e2d", true);
        assertEquals("", d.next(ids[0]));
        assertEquals("", d.next(ids[1]));
        assertEquals("", d.next(ids[2]));
        assertEquals("", d.next(ids[3]));
        assertEquals("\u4e2d", d.next(ids[4]));
        assertEquals("", d.finish());
    }

    @Test
    void streamDecoderOnArbitraryBytesMatchesWholeDecode() {
        // Invalid and truncated UTF-8 too: streaming must replace exactly as a whole-sequence decode does.
        SplittableRandom r = new SplittableRandom(7);
        int[] interesting = {0x41, 0x20, 0x80, 0xBF, 0xC2, 0xC3, 0xE0, 0xE4, 0xED, 0xF0, 0xF4, 0xF5, 0xFF, 0xA9, 0x9F};
        for (int trial = 0; trial < 2000; trial++) {
            int n = r.nextInt(12);
            int[] ids = new int[n + 1];
            ids[0] = 1;
            for (int i = 1; i <= n; i++) ids[i] = interesting[r.nextInt(interesting.length)] + 3;
            Tokenizer.StreamDecoder d = tok.newStreamDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : ids) sb.append(d.next(id));
            sb.append(d.finish());
            assertEquals(tok.decode(ids), sb.toString(), () -> "ids " + Arrays.toString(ids));
        }
    }

    @Test
    void offsetsCoverTheTextInOrder() throws IOException {
        List<String> texts = new ArrayList<>(TokenizerTestTexts.shakespeare(8, 50, 200));
        texts.addAll(TokenizerTestTexts.UNICODE);
        for (String s : texts) {
            Tokenizer.Encoding e = tok.encodeWithOffsets(s, true);
            assertArrayEquals(tok.encode(s, true), e.ids());
            assertEquals(e.starts()[0], e.ends()[0], "BOS has no text");
            int covered = 0;
            for (int i = 1; i < e.size(); i++) {
                if (e.starts()[i] == e.ends()[i]) continue;
                assertTrue(e.starts()[i] <= covered && e.ends()[i] >= covered, "spans are contiguous in " + s);
                // Each token's bytes are the UTF-8 of its span (minus the dummy-prefix space; byte tokens share a span).
                covered = e.ends()[i];
            }
            assertEquals(s.length(), covered, "spans reach the end of " + s);
        }
        // A word-sized token maps back to its word.
        String s = "Once upon a time";
        Tokenizer.Encoding e = tok.encodeWithOffsets(s, false);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < e.size(); i++) sb.append(s, e.starts()[i], e.ends()[i]);
        assertEquals(s, sb.toString());
    }

    @Test
    void corruptFilesFailNamingTheFile(@TempDir Path dir) throws IOException {
        byte[] good = Files.readAllBytes(Assets.require("models/stories260K/tok512.bin"));
        Path truncated = dir.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(good, good.length - 3));
        IOException e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(truncated));
        assertTrue(e.getMessage().startsWith(truncated.toString() + ": "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));

        Path garbage = dir.resolve("garbage.bin");
        Files.write(garbage, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(-5).array());
        e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(garbage));
        assertTrue(e.getMessage().contains(garbage.toString()) && e.getMessage().contains("max_token_length"), e.getMessage());

        // A token whose length runs past the end of the file.
        ByteBuffer b = ByteBuffer.allocate(4 + 8 + 2).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(16).putFloat(0f).putInt(10).put((byte) 'a').put((byte) 'b');
        Path longTok = dir.resolve("long.bin");
        Files.write(longTok, b.array());
        e = assertThrows(IOException.class, () -> Llama2cTokenizer.load(longTok));
        assertTrue(e.getMessage().contains("token 0") && e.getMessage().contains(longTok.toString()), e.getMessage());
    }

    @Test
    void factoryPicksByExtension() throws IOException {
        try (Tokenizer t = Tokenizers.load(Assets.require("models/stories260K/tok512.bin"))) {
            assertInstanceOf(Llama2cTokenizer.class, t);
        }
    }
}
