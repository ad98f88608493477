package io.peft4j.generate;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The sampler against Hugging Face's processor semantics, checked on hand-computable distributions. */
class SamplerTest {
    static GenerationConfig base() { return GenerationConfig.greedy().withTemperature(1f); }

    static int[] counts(GenerationConfig cfg, float[] logits, int draws) {
        Sampler s = new Sampler(cfg);
        int[] c = new int[logits.length];
        for (int i = 0; i < draws; i++) c[s.next(logits, 0, logits.length, new int[0], 0)]++;
        return c;
    }

    static float[] logitsOf(double... probs) {
        float[] l = new float[probs.length];
        for (int i = 0; i < l.length; i++) l[i] = (float) Math.log(probs[i]);
        return l;
    }

    @Test
    void greedyIsFirstArgmax() {
        Sampler s = new Sampler(GenerationConfig.greedy());
        float[] l = {0.5f, 3f, -1f, 3f, 2.9f};
        assertEquals(1, s.next(l, 0, 5, new int[0], 0));
        // an offset row inside a larger buffer
        float[] two = {9f, 0f, 0f, 0f, 0f, 0f, 1f, 0f, 0f, 0f};
        assertEquals(1, s.next(two, 5, 5, new int[0], 0));
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce() {
        // logits 2.0 (seen), 1.9, -1 (seen): with penalty 1.2 the seen 2.0 becomes 1.667 < 1.9
        float[] l = {2.0f, 1.9f, -1f};
        GenerationConfig g = GenerationConfig.greedy().withRepetitionPenalty(1.2f);
        int[] history = {0, 2, 0, 0};   // repeats count once, as HF's gather/scatter does
        assertEquals(1, new Sampler(g).next(l, 0, 3, history, history.length));
        assertEquals(0, new Sampler(GenerationConfig.greedy()).next(l, 0, 3, history, history.length));
        // a negative logit is pushed further down: -0.5 * 3 = -1.5 < -1.2, so token 1 (unseen, -1.2) wins
        float[] neg = {-0.5f, -1.2f};
        assertEquals(1, new Sampler(GenerationConfig.greedy().withRepetitionPenalty(3f)).next(neg, 0, 2, new int[] {0}, 1));
        assertArrayEquals(new float[] {-0.5f, -1.2f}, neg, "input logits untouched");
    }

    @Test
    void samplingFollowsTheSoftmaxAndTemperature() {
        float[] l = logitsOf(0.5, 0.3, 0.15, 0.05);
        int n = 40000;
        int[] c = counts(base().withSeed(5), l, n);
        double[] p = {0.5, 0.3, 0.15, 0.05};
        for (int i = 0; i < 4; i++) assertEquals(p[i], c[i] / (double) n, 0.01, "token " + i);
        // temperature 2 flattens: p ∝ sqrt(p)
        int[] t = counts(base().withSeed(6).withTemperature(2f), l, n);
        double z = 0;
        for (double q : p) z += Math.sqrt(q);
        for (int i = 0; i < 4; i++) assertEquals(Math.sqrt(p[i]) / z, t[i] / (double) n, 0.01, "T=2 token " + i);
    }

    @Test
    void topPKeepsTheSmallestHeadWhoseMassExceedsOneMinusP() {
        // ascending cumulative mass 0.05, 0.20, 0.50, 1.0: with top_p 0.7, tokens whose cum <= 0.3 go (3 and 2)
        float[] l = logitsOf(0.5, 0.3, 0.15, 0.05);
        int n = 40000;
        int[] c = counts(base().withSeed(7).withTopP(0.7f), l, n);
        assertEquals(0, c[2]);
        assertEquals(0, c[3]);
        assertEquals(0.5 / 0.8, c[0] / (double) n, 0.01);
        // top_p so small that only the best survives
        int[] one = counts(base().withSeed(8).withTopP(0.01f), l, 2000);
        assertEquals(2000, one[0]);
    }

    @Test
    void topKKeepsKBestAndTies() {
        float[] l = {1f, 3f, 2f, 2f, 0f};
        int[] c = counts(base().withSeed(9).withTopK(2), l, 20000);
        // the 2nd best value (2) is tied: HF keeps every logit >= the k-th value
        assertEquals(0, c[0]);
        assertEquals(0, c[4]);
        assertTrue(c[2] > 0 && c[3] > 0);
        assertEquals(20000, counts(base().withSeed(9).withTopK(1), l, 20000)[1]);
    }

    @Test
    void sameSeedSameStreamDifferentSeedDifferentStream() {
        float[] l = logitsOf(0.25, 0.25, 0.25, 0.25);
        Sampler a = new Sampler(base().withSeed(42)), b = new Sampler(base().withSeed(42)), c = new Sampler(base().withSeed(43));
        StringBuilder sa = new StringBuilder(), sb = new StringBuilder(), sc = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            sa.append(a.next(l, 0, 4, new int[0], 0));
            sb.append(b.next(l, 0, 4, new int[0], 0));
            sc.append(c.next(l, 0, 4, new int[0], 0));
        }
        assertEquals(sa.toString(), sb.toString());
        assertNotEquals(sa.toString(), sc.toString());
    }

    @Test
    void runCRandomStreamMatchesItsDefinition() {
        // run.c: state ^= state >> 12; state ^= state << 25; state ^= state >> 27; (state * 0x2545F4914F6CDD1D) >> 32
        Sampler s = new Sampler(base().withSeed(133742));
        long st = 133742;
        for (int i = 0; i < 5; i++) {
            st ^= st >>> 12; st ^= st << 25; st ^= st >>> 27;
            long u = (st * 0x2545F4914F6CDD1DL) >>> 32;
            assertEquals((u >>> 8) / 16777216.0f, s.nextCoin());
        }
    }

    @Test
    void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> base().withTopP(0f));
        assertThrows(IllegalArgumentException.class, () -> base().withTemperature(-1f));
        assertThrows(IllegalArgumentException.class, () -> base().withStopStrings(List.of("")));
        assertThrows(IllegalArgumentException.class, () -> base().withRepetitionPenalty(0f));
    }
}
