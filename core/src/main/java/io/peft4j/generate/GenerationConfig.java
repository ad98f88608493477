package io.peft4j.generate;

import java.util.List;

/**
 * How to pick tokens and when to stop. Sampling follows Hugging Face's logits processors, in its order:
 * repetition penalty, then temperature, top-k, top-p; {@code temperature == 0} is greedy (argmax).
 *
 * @param maxNewTokens      tokens to generate at most (an empty prompt that starts from BOS generates this many,
 *                          matching llama2.c's {@code -n}, which counts positions including the BOS)
 * @param temperature       0 = greedy; otherwise logits are divided by it before sampling
 * @param topK              keep the k most likely tokens (0 = off)
 * @param topP              nucleus: keep the most likely tokens up to this cumulative probability (1 = off)
 * @param repetitionPenalty > 1 discourages tokens already in the sequence (prompt included), 1 = off
 * @param seed              seeds the sampler's random stream: same seed, same text
 * @param stopStrings       generation ends before the first occurrence of any of these in the generated text
 * @param stopAtEos         end at the tokenizer's / model's EOS (and other end-of-turn ids)
 * @param stopAtBos         end when BOS is produced, as llama2.c's run.c does
 * @param sampler           {@link Sampler.Kind#HF} semantics, or {@link Sampler.Kind#LLAMA2C} to reproduce run.c's sampler exactly
 */
public record GenerationConfig(int maxNewTokens, float temperature, int topK, float topP, float repetitionPenalty, long seed,
                               List<String> stopStrings, boolean stopAtEos, boolean stopAtBos, Sampler.Kind sampler) {
    public GenerationConfig {
        if (maxNewTokens < 0) throw new IllegalArgumentException("max new tokens must be >= 0, got " + maxNewTokens);
        if (!(temperature >= 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        if (!(repetitionPenalty > 0)) throw new IllegalArgumentException("repetition penalty must be > 0, got " + repetitionPenalty);
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) if (s.isEmpty()) throw new IllegalArgumentException("stop strings must not be empty");
        if (sampler == null) sampler = Sampler.Kind.HF;
    }

    /** Greedy decoding of up to 256 tokens, stopping at EOS and (llama2.c) BOS. */
    public static GenerationConfig greedy() {
        return new GenerationConfig(256, 0f, 0, 1f, 1f, 0L, List.of(), true, true, Sampler.Kind.HF);
    }

    public GenerationConfig withMaxNewTokens(int n) { return new GenerationConfig(n, temperature, topK, topP, repetitionPenalty, seed, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withTemperature(float t) { return new GenerationConfig(maxNewTokens, t, topK, topP, repetitionPenalty, seed, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withTopK(int k) { return new GenerationConfig(maxNewTokens, temperature, k, topP, repetitionPenalty, seed, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withTopP(float p) { return new GenerationConfig(maxNewTokens, temperature, topK, p, repetitionPenalty, seed, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withRepetitionPenalty(float r) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, r, seed, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withSeed(long s) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, s, stopStrings, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withStopStrings(List<String> s) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, s, stopAtEos, stopAtBos, sampler); }
    public GenerationConfig withStopAtEos(boolean b) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, stopStrings, b, stopAtBos, sampler); }
    public GenerationConfig withStopAtBos(boolean b) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, stopStrings, stopAtEos, b, sampler); }
    public GenerationConfig withSampler(Sampler.Kind k) { return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, stopStrings, stopAtEos, stopAtBos, k); }
}
