package io.peft4j.generate;

import java.util.Arrays;

/**
 * Picks the next token from a row of logits. {@link Kind#HF} follows Hugging Face's processors
 * ({@code RepetitionPenaltyLogitsProcessor}, {@code TemperatureLogitsWarper}, {@code TopKLogitsWarper},
 * {@code TopPLogitsWarper}, then multinomial sampling); {@link Kind#LLAMA2C} reproduces llama2.c's run.c sampler
 * (softmax, then {@code sample_mult} or its pre-filtered {@code sample_topp}) so a run.c seed gives run.c's text.
 * Both draw from run.c's xorshift generator, so a seed is reproducible across runs and machines.
 * Not thread-safe: one per generation.
 */
public final class Sampler {
    public enum Kind { HF, LLAMA2C }

    private final GenerationConfig cfg;
    private long rng;              // xorshift64* state, as run.c's random_u32
    private float[] scores = new float[0];
    private long[] order = new long[0];
    private boolean[] seen = new boolean[0];

    public Sampler(GenerationConfig cfg) {
        this.cfg = cfg;
        // a zero state is a fixed point of xorshift; run.c seeds from time(NULL) instead, so 0 never occurs there
        this.rng = cfg.seed() != 0 ? cfg.seed() : 0x9E3779B97F4A7C15L;
    }

    /** run.c's {@code random_f32}: a float in [0, 1) with 24 random bits. */
    float nextCoin() {
        rng ^= rng >>> 12;
        rng ^= rng << 25;
        rng ^= rng >>> 27;
        long u32 = (rng * 0x2545F4914F6CDD1DL) >>> 32;
        return (u32 >>> 8) / 16777216.0f;
    }

    /**
     * The next token given {@code logits[off, off + vocab)} and the sequence so far ({@code history[0, historyLen)},
     * prompt included: the repetition penalty reads it). {@code logits} is not modified.
     */
    public int next(float[] logits, int off, int vocab, int[] history, int historyLen) {
        if (scores.length < vocab) {
            scores = new float[vocab];
            order = new long[vocab];
            seen = new boolean[vocab];
        }
        float[] s = scores;
        System.arraycopy(logits, off, s, 0, vocab);
        if (cfg.repetitionPenalty() != 1f) repetitionPenalty(s, vocab, history, historyLen);
        if (cfg.temperature() == 0f) return argmax(s, vocab);
        float invT = 1f / cfg.temperature();
        for (int i = 0; i < vocab; i++) s[i] *= invT;
        if (cfg.sampler() == Kind.LLAMA2C && cfg.topK() == 0) return llama2c(s, vocab);
        if (cfg.topK() > 0 && cfg.topK() < vocab) topK(s, vocab, cfg.topK());
        if (cfg.sampler() == Kind.LLAMA2C) return llama2c(s, vocab);
        if (cfg.topP() < 1f) topP(s, vocab, cfg.topP());
        softmax(s, vocab);
        return sampleCdf(s, vocab, nextCoin());
    }

    /** HF: each distinct token already present has its logit divided by the penalty if positive, multiplied if negative. */
    private void repetitionPenalty(float[] s, int vocab, int[] history, int n) {
        float p = cfg.repetitionPenalty();
        for (int i = 0; i < n; i++) {
            int id = history[i];
            if (id < 0 || id >= vocab || seen[id]) continue;
            seen[id] = true;
            s[id] = s[id] < 0 ? s[id] * p : s[id] / p;
        }
        for (int i = 0; i < n; i++) if (history[i] >= 0 && history[i] < vocab) seen[history[i]] = false;
    }

    /** First index of the maximum, as torch.argmax and run.c's sample_argmax. */
    static int argmax(float[] s, int vocab) {
        int best = 0;
        float v = s[0];
        for (int i = 1; i < vocab; i++) if (s[i] > v) { v = s[i]; best = i; }
        return best;
    }

    /** HF TopKLogitsWarper: logits below the k-th largest become -inf (ties with the k-th are kept). */
    private void topK(float[] s, int vocab, int k) {
        int n = sortAscending(s, vocab);
        if (n <= k) return;
        float kth = keyToFloat((int) (order[n - k] >> 32));
        for (int i = 0; i < vocab; i++) if (s[i] < kth) s[i] = Float.NEGATIVE_INFINITY;
    }

    /**
     * HF TopPLogitsWarper: sort ascending, take the softmax's cumulative sum, drop tokens whose cumulative
     * probability is <= 1 - topP (the most likely token always survives).
     */
    private void topP(float[] s, int vocab, float topP) {
        int n = sortAscending(s, vocab);
        float max = keyToFloat((int) (order[n - 1] >> 32));
        double sum = 0;
        for (int j = 0; j < n; j++) sum += Math.exp(keyToFloat((int) (order[j] >> 32)) - max);
        double cum = 0, limit = 1.0 - topP;
        for (int j = 0; j < n - 1; j++) {
            int idx = (int) order[j];
            cum += Math.exp(s[idx] - max) / sum;
            if (cum <= limit) s[idx] = Float.NEGATIVE_INFINITY;
            else break;
        }
    }

    /** Sorts the finite entries by value ascending into {@link #order} as (sortable key << 32 | index); returns their count. */
    private int sortAscending(float[] s, int vocab) {
        int n = 0;
        for (int i = 0; i < vocab; i++)
            if (s[i] != Float.NEGATIVE_INFINITY) order[n++] = ((long) floatToKey(s[i]) << 32) | i;
        Arrays.sort(order, 0, n);
        return n;
    }

    /** A signed int that orders like the float. */
    private static int floatToKey(float f) {
        int b = Float.floatToIntBits(f);
        return b ^ ((b >> 31) & 0x7fffffff);
    }

    private static float keyToFloat(int k) { return Float.intBitsToFloat(k ^ ((k >> 31) & 0x7fffffff)); }

    /** In-place softmax in F32 with a double sum; -inf entries get probability 0. */
    private static void softmax(float[] s, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, s[i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) { float e = (float) Math.exp(s[i] - max); s[i] = e; sum += e; }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < vocab; i++) s[i] *= inv;
    }

    /** Inverse-CDF draw: the first index whose cumulative probability exceeds {@code coin}. */
    private static int sampleCdf(float[] p, int vocab, float coin) {
        float cdf = 0;
        int last = 0;
        for (int i = 0; i < vocab; i++) {
            if (p[i] <= 0) continue;
            cdf += p[i];
            last = i;
            if (coin < cdf) return i;
        }
        return last;   // rounding left the total just under coin
    }

    // ---------------------------------------------------------------- run.c

    private int llama2c(float[] s, int vocab) {
        // run.c softmax: all in float
        float max = s[0];
        for (int i = 1; i < vocab; i++) if (s[i] > max) max = s[i];
        float sum = 0;
        for (int i = 0; i < vocab; i++) { s[i] = (float) Math.exp(s[i] - max); sum += s[i]; }
        for (int i = 0; i < vocab; i++) s[i] /= sum;
        float coin = nextCoin();
        float topp = cfg.topP();
        if (topp <= 0 || topp >= 1) {
            float cdf = 0;
            for (int i = 0; i < vocab; i++) {
                cdf += s[i];
                if (coin < cdf) return i;
            }
            return vocab - 1;
        }
        // sample_topp: drop tokens below (1 - topp) / (n - 1), sort descending, cut where the cumulative mass passes topp
        float cutoff = (1.0f - topp) / (vocab - 1);
        int n0 = 0;
        for (int i = 0; i < vocab; i++)
            if (s[i] >= cutoff) order[n0++] = ((long) floatToKey(-s[i]) << 32) | i;   // ascending in -p = descending in p
        Arrays.sort(order, 0, n0);
        float cumulative = 0;
        int lastIdx = n0 - 1;
        for (int i = 0; i < n0; i++) {
            cumulative += s[(int) order[i]];
            if (cumulative > topp) { lastIdx = i; break; }
        }
        float r = coin * cumulative;
        float cdf = 0;
        for (int i = 0; i <= lastIdx; i++) {
            cdf += s[(int) order[i]];
            if (r < cdf) return (int) order[i];
        }
        return (int) order[lastIdx];
    }
}
