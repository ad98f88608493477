package io.peft4j.tokenizer;

/** Text <-> token ids. Implementations: HF {@code tokenizer.json} (DJL binding) and llama2.c {@code tokenizer.bin}. */
public interface Tokenizer {
    /** Token ids for {@code text}; a BOS token is prepended when {@code addBos} and the tokenizer has one. */
    int[] encode(String text, boolean addBos);

    /** Text for a whole sequence of ids (special tokens skipped). */
    String decode(int[] ids);

    /**
     * Text for {@code id} when it follows {@code previous} (-1 at the start), for streaming output: handles a leading
     * space after BOS and byte-fallback tokens as the reference implementations do. Concatenating the pieces of a
     * sequence equals its {@link #decode}.
     */
    String decodeNext(int previous, int id);

    int vocabSize();
    /** BOS id, or -1 if the tokenizer has none. */
    int bosId();
    /** EOS id, or -1 if the tokenizer has none. */
    int eosId();
}
