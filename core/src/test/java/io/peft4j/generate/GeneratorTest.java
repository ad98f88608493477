package io.peft4j.generate;

import io.peft4j.models.CausalLM;
import io.peft4j.models.KvCache;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.WeightSource;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import io.peft4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The decode loop's stopping and streaming rules, on a scripted model and a one-char-per-token tokenizer. */
class GeneratorTest {
    static final int V = 30, BOS = 1, EOS = 2;

    /** A "model" whose next token after id t is script[t]; it records the positions it was fed. */
    static final class ScriptedLM implements CausalLM {
        final int[] script;
        final List<Integer> fed = new ArrayList<>();
        final ModelConfig config;

        ScriptedLM(int[] script, int maxPos) {
            this.script = script;
            Map<String, Object> m = new HashMap<>(Map.of("architectures", List.of("LlamaForCausalLM"), "vocab_size", V, "hidden_size", 4,
                    "intermediate_size", 4, "num_hidden_layers", 1, "num_attention_heads", 1, "max_position_embeddings", maxPos));
            m.put("eos_token_id", EOS);
            this.config = ModelConfig.fromMap(m, "scripted");
        }

        public ModelConfig config() { return config; }
        public WeightSource weights() { return WeightSource.ofMap(Map.of(), "none"); }
        public Map<String, Linear> linears() { return Map.of(); }
        public Map<String, Tensor> parameters() { return Map.of(); }

        public Tensor hidden(int[] ids, int batch, int seqLen, KvCache cache) {
            float[] h = new float[ids.length];
            for (int i = 0; i < ids.length; i++) { h[i] = ids[i]; fed.add(ids[i]); }
            if (cache != null) {
                assertTrue(cache.length() + seqLen <= cache.maxSeq(), "cache overflow");
                cache.advance(seqLen);
            }
            return Tensor.of(h, ids.length, 1);
        }

        public Tensor logits(Tensor hidden) {
            int n = hidden.dim(0);
            float[] l = new float[n * V];
            for (int i = 0; i < n; i++) l[i * V + script[(int) hidden.get(i, 0)]] = 10f;
            return Tensor.of(l, n, V);
        }

    }

    /** id i <-> the char ('a' + i - 3) for i >= 3; BOS/EOS decode to nothing. */
    static final class CharTokenizer implements Tokenizer {
        public int[] encode(String text, boolean addBos) {
            int[] ids = new int[text.length() + (addBos ? 1 : 0)];
            int k = 0;
            if (addBos) ids[k++] = BOS;
            for (char ch : text.toCharArray()) ids[k++] = ch - 'a' + 3;
            return ids;
        }
        public Encoding encodeWithOffsets(String text, boolean addBos) { throw new UnsupportedOperationException(); }
        public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int id : ids) b.append(decodeNext(-1, id));
            return b.toString();
        }
        public String decodeNext(int previous, int id) { return id < 3 ? "" : String.valueOf((char) ('a' + id - 3)); }
        public StreamDecoder newStreamDecoder() {
            return new StreamDecoder() {
                public String next(int id) { return decodeNext(-1, id); }
                public String finish() { return ""; }
            };
        }
        public int vocabSize() { return V; }
        public int bosId() { return BOS; }
        public int eosId() { return EOS; }
        public int tokenId(String token) { return -1; }
    }

    /** A chain: BOS -> a -> b -> c ... (ids 3, 4, 5, ...), wrapping to EOS at the end. */
    static int[] chain() {
        int[] s = new int[V];
        s[BOS] = 3;
        for (int i = 3; i < V - 1; i++) s[i] = i + 1;
        s[V - 1] = EOS;
        return s;
    }

    static Generator.Result run(int[] script, int maxPos, GenerationConfig cfg, String prompt, List<String> pieces) {
        return new Generator(new ScriptedLM(script, maxPos), new CharTokenizer()).generate(prompt, cfg, pieces::add);
    }

    @Test
    void emptyPromptStartsFromBosAndMaxTokensCountsGeneratedTokens() {
        List<String> pieces = new ArrayList<>();
        ScriptedLM lm = new ScriptedLM(chain(), 64);
        Generator.Result r = new Generator(lm, new CharTokenizer()).generate("", GenerationConfig.greedy().withMaxNewTokens(5), pieces::add);
        assertEquals("abcde", r.text());
        assertEquals(List.of("a", "b", "c", "d", "e"), pieces, "one piece per token, streamed as produced");
        assertArrayEquals(new int[] {BOS}, r.promptIds());
        assertEquals(Generator.StopReason.MAX_TOKENS, r.stopReason());
        // BOS then the 4 tokens whose successors were needed: the last token is never fed
        assertEquals(List.of(BOS, 3, 4, 5, 6), lm.fed);
    }

    @Test
    void promptIsFedOnceThenContinued() {
        Generator.Result r = run(chain(), 64, GenerationConfig.greedy().withMaxNewTokens(3), "cd", new ArrayList<>());
        assertEquals("efg", r.text());
        assertArrayEquals(new int[] {BOS, 5, 6}, r.promptIds());
    }

    @Test
    void stopsAtEosAndAtBosLikeRunC() {
        int[] toEos = chain();
        toEos[5] = EOS;                      // a b c EOS
        Generator.Result r = run(toEos, 64, GenerationConfig.greedy(), "", new ArrayList<>());
        assertEquals("abc", r.text());
        assertEquals(Generator.StopReason.EOS, r.stopReason());
        assertArrayEquals(new int[] {3, 4, 5}, r.generatedIds(), "the EOS itself is not part of the output");

        int[] toBos = chain();
        toBos[4] = BOS;                      // a b BOS
        r = run(toBos, 64, GenerationConfig.greedy(), "", new ArrayList<>());
        assertEquals("ab", r.text());
        assertEquals(Generator.StopReason.BOS, r.stopReason());
        r = run(toBos, 64, GenerationConfig.greedy().withStopAtBos(false).withMaxNewTokens(5), "", new ArrayList<>());
        assertEquals("abab", r.text(), "without the llama2.c rule BOS is just another token");
        assertArrayEquals(new int[] {3, 4, BOS, 3, 4}, r.generatedIds());
    }

    @Test
    void stopStringsCutTheTextAndAreNeverStreamed() {
        List<String> pieces = new ArrayList<>();
        Generator.Result r = run(chain(), 64, GenerationConfig.greedy().withStopStrings(List.of("xyz", "def")), "", pieces);
        assertEquals("abc", r.text());
        assertEquals(Generator.StopReason.STOP_STRING, r.stopReason());
        assertEquals("abc", String.join("", pieces));
        assertFalse(String.join("", pieces).contains("d"), "a possible stop-string prefix is held back, not streamed");

        // a held-back prefix that turns out not to be a stop string is released
        pieces.clear();
        r = run(chain(), 64, GenerationConfig.greedy().withStopStrings(List.of("cdx")).withMaxNewTokens(6), "", pieces);
        assertEquals("abcdef", r.text());
        assertEquals(List.of("a", "b", "cde", "f"), pieces, "'c' and 'cd' wait until 'e' rules out 'cdx'");
    }

    @Test
    void contextLimitEndsGeneration() {
        Generator.Result r = run(chain(), 6, GenerationConfig.greedy().withMaxNewTokens(100), "", new ArrayList<>());
        // 6 positions: BOS + 5 fed tokens produce 6 tokens
        assertEquals("abcdef", r.text());
        assertEquals(Generator.StopReason.CONTEXT_FULL, r.stopReason());
    }

    @Test
    void heldBackAndFirstStopHelpers() {
        assertEquals(2, Generator.heldBack("xxab", List.of("abc")));
        assertEquals(0, Generator.heldBack("xxab", List.of("c b")));
        assertEquals(1, Generator.heldBack("xxab", List.of("bz", "q")));
        assertEquals(1, Generator.firstStop("a<s>b</s>", List.of("</s>", "<s>"), 0), "the earliest occurrence of any stop string");
        assertEquals(5, Generator.firstStop("a<s>b</s>", List.of("</s>", "<s>"), 2));
    }
}
