package io.peft4j.generate;

import io.peft4j.models.CausalLM;
import io.peft4j.models.KvCache;
import io.peft4j.tensor.Tensor;
import io.peft4j.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Autoregressive text generation: one batched prefill of the prompt into a {@link KvCache}, then one token per
 * step, streaming decoded text to a consumer as soon as it can no longer turn into a stop string.
 */
public final class Generator {
    /** Why generation ended. */
    public enum StopReason { MAX_TOKENS, EOS, BOS, STOP_STRING, CONTEXT_FULL }

    /**
     * @param promptIds    the ids the model was fed first (BOS included)
     * @param generatedIds the tokens produced (an ending EOS/BOS is not included)
     * @param text         the generated text, cut before any stop string
     */
    public record Result(int[] promptIds, int[] generatedIds, String text, StopReason stopReason, long prefillNanos, long decodeNanos) {
        /** Decode speed in tokens per second (the first token comes from the prefill and is not counted). */
        public double decodeTokensPerSecond() {
            int steps = Math.max(0, generatedIds.length - 1);
            return decodeNanos == 0 ? 0 : steps * 1e9 / decodeNanos;
        }
    }

    private final CausalLM model;
    private final Tokenizer tokenizer;

    public Generator(CausalLM model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Encodes {@code prompt} with a BOS (an empty prompt is BOS alone) and generates from it. */
    public Result generate(String prompt, GenerationConfig cfg, Consumer<String> out) {
        int[] ids = tokenizer.encode(prompt == null ? "" : prompt, true);
        return generate(ids, cfg, out);
    }

    /** Generates after {@code promptIds}; an empty prompt starts from the tokenizer's BOS. */
    public Result generate(int[] promptIds, GenerationConfig cfg, Consumer<String> out) {
        int[] prompt = promptIds;
        if (prompt.length == 0) {
            int bos = bosId();
            if (bos < 0) throw new IllegalArgumentException("empty prompt and the tokenizer has no BOS token to start from");
            prompt = new int[] {bos};
        }
        int maxPos = model.config().maxPositions;
        if (prompt.length > maxPos)
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens exceeds the model's " + maxPos + " positions");
        int vocab = model.config().vocabSize;
        int maxNew = Math.min(cfg.maxNewTokens(), maxPos - prompt.length + 1);
        int[] history = Arrays.copyOf(prompt, prompt.length + Math.max(0, maxNew));
        int histLen = prompt.length;
        int[] stopIds = stopIds();
        int bos = cfg.stopAtBos() ? bosId() : -1;
        List<String> stops = cfg.stopStrings();
        int maxStop = 0;
        for (String s : stops) maxStop = Math.max(maxStop, s.length());

        Tokenizer.StreamDecoder dec = tokenizer.newStreamDecoder();
        for (int id : prompt) dec.next(id);           // sets the decoder's context (e.g. no leading space after BOS)
        StringBuilder text = new StringBuilder();
        int emitted = 0;
        Sampler sampler = new Sampler(cfg);
        StopReason reason = StopReason.MAX_TOKENS;

        long t0 = System.nanoTime();
        if (maxNew == 0) return new Result(prompt, new int[0], "", StopReason.MAX_TOKENS, 0, 0);
        // the cache needs a slot for every position fed: the prompt plus all generated tokens but the last
        KvCache cache = model.newCache(1, Math.min(maxPos, prompt.length + maxNew - 1));
        Tensor hidden = model.hidden(prompt, 1, prompt.length, cache);
        Tensor logits = model.logits(CausalLM.rows(hidden, prompt.length - 1, prompt.length)).contiguous();
        long t1 = System.nanoTime();
        int generated = 0;
        boolean stopped = false;
        while (true) {
            int next = sampler.next(logits.data(), logits.dataOffset(), vocab, history, histLen);
            if (next == bos) { reason = StopReason.BOS; break; }
            if (contains(stopIds, next) && cfg.stopAtEos()) { reason = StopReason.EOS; break; }
            history[histLen++] = next;
            generated++;
            text.append(dec.next(next));
            if (!stops.isEmpty()) {
                int cut = firstStop(text, stops, Math.max(0, emitted - maxStop));
                if (cut >= 0) {
                    if (cut > emitted) out.accept(text.substring(emitted, cut));
                    text.setLength(cut);
                    emitted = cut;
                    reason = StopReason.STOP_STRING;
                    stopped = true;
                    break;
                }
            }
            int safe = text.length() - heldBack(text, stops);
            if (safe > emitted) { out.accept(text.substring(emitted, safe)); emitted = safe; }
            if (generated >= maxNew) { reason = generated < cfg.maxNewTokens() ? StopReason.CONTEXT_FULL : StopReason.MAX_TOKENS; break; }
            if (cache.length() >= cache.maxSeq()) { reason = StopReason.CONTEXT_FULL; break; }
            logits = model.forward(new int[] {next}, 1, 1, cache).contiguous();
        }
        long t2 = System.nanoTime();
        if (!stopped) {
            text.append(dec.finish());
            if (text.length() > emitted) out.accept(text.substring(emitted));
        }
        return new Result(prompt, Arrays.copyOfRange(history, prompt.length, histLen), text.toString(), reason, t1 - t0, t2 - t1);
    }

    private int bosId() {
        int b = tokenizer.bosId();
        return b >= 0 ? b : model.config().bosTokenId;
    }

    private int[] stopIds() {
        int[] a = tokenizer.stopIds(), b = model.config().eosTokenIds;
        int[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }

    /** Earliest index at which any stop string occurs in {@code text} at or after {@code from}, or -1. */
    static int firstStop(CharSequence text, List<String> stops, int from) {
        String s = text.toString();
        int best = -1;
        for (String stop : stops) {
            int i = s.indexOf(stop, from);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /** Length of the longest suffix of {@code text} that is a proper prefix of a stop string (must not be emitted yet). */
    static int heldBack(CharSequence text, List<String> stops) {
        int hold = 0, n = text.length();
        for (String stop : stops) {
            for (int len = Math.min(stop.length() - 1, n); len > hold; len--) {
                boolean match = true;
                for (int j = 0; j < len && match; j++) match = text.charAt(n - len + j) == stop.charAt(j);
                if (match) { hold = len; break; }
            }
        }
        return hold;
    }
}
