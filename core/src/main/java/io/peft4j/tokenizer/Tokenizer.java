package io.peft4j.tokenizer;

/**
 * Text <-> token ids. Implementations: HF {@code tokenizer.json} ({@link HfTokenizer}, DJL binding) and llama2.c
 * {@code tokenizer.bin} ({@link Llama2cTokenizer}); {@link Tokenizers#load} picks one for a path.
 */
public interface Tokenizer extends AutoCloseable {
    /** Token ids for {@code text}; a BOS token is prepended when {@code addBos} and the tokenizer has one. */
    int[] encode(String text, boolean addBos);

    /**
     * Like {@link #encode} plus, per token, the span {@code [start, end)} of {@code text} (in chars) it came from.
     * Tokens that come from no text (BOS, a dummy-prefix space) have an empty span. Lets a trainer map character
     * spans (e.g. {@link ChatTemplate.Rendered#assistantSpans}) to tokens.
     */
    Encoding encodeWithOffsets(String text, boolean addBos);

    /** Text for a whole sequence of ids (special tokens skipped), as correct UTF-8 even across byte-fallback tokens. */
    String decode(int[] ids);

    /**
     * Text for {@code id} when it follows {@code previous} (-1 at the start), for streaming output: handles a leading
     * space after BOS as the reference implementations do. Stateless, so it cannot join a multi-byte character that
     * arrives as several byte tokens (each such partial piece comes out as U+FFFD or empty); use
     * {@link #newStreamDecoder()} where that matters: its pieces always concatenate to {@link #decode}.
     */
    String decodeNext(int previous, int id);

    /** A stateful streaming decoder whose pieces, plus {@link StreamDecoder#finish()}, concatenate to {@link #decode}. */
    StreamDecoder newStreamDecoder();

    int vocabSize();
    /** BOS id, or -1 if the tokenizer has none. */
    int bosId();
    /** EOS id, or -1 if the tokenizer has none. */
    int eosId();

    /** Ids that end generation: EOS plus end-of-turn tokens of chat formats ({@code <|eot_id|>}, {@code <|im_end|>}) if present. */
    default int[] stopIds() { return eosId() >= 0 ? new int[] {eosId()} : new int[0]; }

    /** Id of a token given by its exact text (e.g. a special token such as {@code <|im_end|>}), or -1. */
    int tokenId(String token);

    /** Releases native resources (HF tokenizers); a no-op otherwise. */
    @Override
    default void close() {}

    /** Token ids with the char span each came from; {@code starts[i] == ends[i]} for tokens with no source text. */
    record Encoding(int[] ids, int[] starts, int[] ends) {
        public int size() { return ids.length; }
    }

    /** Incremental text for a stream of ids; one instance per generated sequence (not thread-safe). */
    interface StreamDecoder {
        /** Text completed by appending {@code id}; empty while a multi-byte character is still incomplete. */
        String next(int id);

        /** Whatever is still held back (an incomplete character becomes U+FFFD); call once at the end. */
        String finish();
    }
}
