package io.peft4j.tokenizer;

import io.peft4j.testing.Assets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class HfTokenizerTest {
    private static final Map<String, HfTokenizer> CACHE = new HashMap<>();

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

    @Test
    void knownEncodings() throws IOException {
        assertArrayEquals(new int[] {15496, 995}, tok("gpt2").encode("Hello world", false));
        assertArrayEquals(new int[] {1, 15043, 3186}, tok("llama2").encode("Hello world", true));
        assertArrayEquals(new int[] {128000, 9906, 1917}, tok("llama3").encode("Hello world", true));
        // GPT-2 has no BOS in tokenizer_config; config.json says 50256 for both.
        assertEquals(50256, tok("gpt2").bosId());
        assertEquals(50256, tok("gpt2").eosId());
        assertEquals(50257, tok("gpt2").vocabSize());
    }

    @Test
    void specialTokensFromConfig() throws IOException {
        HfTokenizer q = tok("qwen3");
        assertEquals(-1, q.bosId(), "Qwen3 has no BOS");
        assertEquals(q.tokenId("<|im_end|>"), q.eosId());
        assertArrayEquals(q.encode("x", false), q.encode("x", true), "no BOS to add");
        assertFalse(q.addBosByDefault());
        int imStart = q.tokenId("<|im_start|>");
        assertTrue(imStart > 0);
        assertArrayEquals(new int[] {imStart}, q.encode("<|im_start|>", false), "special tokens in text stay whole");

        HfTokenizer l3 = tok("llama3");
        assertEquals(128000, l3.bosId());
        assertEquals(128001, l3.eosId());
        assertTrue(Arrays.stream(l3.stopIds()).anyMatch(i -> i == 128009), "<|eot_id|> stops generation");
        // This (early) Llama-3 tokenizer.json has a plain ByteLevel post-processor, so HF itself adds no BOS.
        assertFalse(l3.addBosByDefault());

        HfTokenizer l2 = tok("llama2");
        assertEquals(1, l2.bosId());
        assertEquals(2, l2.eosId());
        assertTrue(l2.addBosByDefault());
        assertEquals(32000, l2.vocabSize());
        assertNotNull(l2.chatTemplate());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama2", "llama3", "qwen3"})
    void roundTrips(String name) throws IOException {
        HfTokenizer t = tok(name);
        List<String> texts = new ArrayList<>(TokenizerTestTexts.shakespeare(11, 30, 400));
        texts.addAll(TokenizerTestTexts.UNICODE);
        texts.addAll(TokenizerTestTexts.randomUnicode(12, 20, 30));
        for (String s : texts) {
            // Qwen's normalizer composes characters (NFC): "c\u0301" comes back as "\u0107".
            String expected = name.equals("qwen3") ? Normalizer.normalize(s, Normalizer.Form.NFC) : s;
            assertEquals(expected, t.decode(t.encode(s, true)), name + " round trip");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama2", "llama3", "qwen3"})
    void streamDecoderConcatenatesToDecode(String name) throws IOException {
        HfTokenizer t = tok(name);
        List<String> texts = new ArrayList<>(TokenizerTestTexts.UNICODE);
        texts.addAll(TokenizerTestTexts.shakespeare(13, 10, 200));
        for (String s : texts) {
            int[] ids = t.encode(s, true);
            Tokenizer.StreamDecoder d = t.newStreamDecoder();
            StringBuilder sb = new StringBuilder();
            for (int id : ids) sb.append(d.next(id));
            sb.append(d.finish());
            assertEquals(t.decode(ids), sb.toString(), name + ": " + s);
        }
    }

    @Test
    void decodeNextHandlesSpacesAfterPreviousToken() throws IOException {
        HfTokenizer t = tok("llama2");
        int[] ids = t.encode("Hello world", true); // [<s>, ▁Hello, ▁world]
        assertEquals("Hello", t.decodeNext(ids[0], ids[1]), "no space after BOS");
        assertEquals(" world", t.decodeNext(ids[1], ids[2]));
        HfTokenizer g = tok("gpt2");
        int[] gi = g.encode("Hello world", false);
        assertEquals("Hello", g.decodeNext(-1, gi[0]));
        assertEquals(" world", g.decodeNext(gi[0], gi[1]));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama3", "qwen3"})
    void offsetsPointAtTheTokensText(String name) throws IOException {
        HfTokenizer t = tok(name);
        String s = "Hello world, how are you?";
        Tokenizer.Encoding e = t.encodeWithOffsets(s, true);
        assertArrayEquals(t.encode(s, true), e.ids());
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < e.size(); i++) sb.append(s, e.starts()[i], e.ends()[i]);
        assertEquals(s, sb.toString(), "spans tile the text");
    }

    @Test
    void worksOfflineWithTheBundledNativeLibrary() throws IOException {
        tok("gpt2");
        assertEquals("true", System.getProperty("ai.djl.offline"), "DJL kept off the network");
        assertEquals("true", System.getProperty("OPT_OUT_TRACKING"), "DJL telemetry off");
    }

    @Test
    void missingOrBadFilesFailNamingTheFile(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        IOException e = assertThrows(IOException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        Path bad = dir.resolve("tokenizer.json");
        Files.writeString(bad, "{\"model\": 42");
        e = assertThrows(IOException.class, () -> HfTokenizer.load(bad));
        assertTrue(e.getMessage().startsWith(bad.toString()), e.getMessage());
        e = assertThrows(IOException.class, () -> Tokenizers.load(dir.resolve("nope")));
        assertTrue(e.getMessage().contains("nope"), e.getMessage());
    }

    @Test
    void factoryPicksHfForDirectoriesWithTokenizerJson() throws IOException {
        try (Tokenizer t = Tokenizers.load(Assets.require("tokenizers/gpt2"))) {
            assertInstanceOf(HfTokenizer.class, t);
            assertArrayEquals(new int[] {15496, 995}, t.encode("Hello world", false));
        }
    }
}
