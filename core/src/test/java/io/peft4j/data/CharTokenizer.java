package io.peft4j.data;

import io.peft4j.tokenizer.Tokenizer;

/**
 * A tiny tokenizer for pure-logic tests: one token per UTF-16 char ({@code id = char + 3}), pad 0, BOS 1 (or none),
 * EOS 2. Offsets are exact, so label masks can be checked character by character.
 */
final class CharTokenizer implements Tokenizer {
    static final int PAD = 0, BOS = 1, EOS = 2, OFFSET = 3;
    private final boolean hasBos;

    CharTokenizer(boolean hasBos) { this.hasBos = hasBos; }

    static int id(char c) { return c + OFFSET; }

    @Override
    public int[] encode(String text, boolean addBos) { return encodeWithOffsets(text, addBos).ids(); }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addBos) {
        int b = addBos && hasBos ? 1 : 0;
        int n = text.length() + b;
        int[] ids = new int[n], s = new int[n], e = new int[n];
        if (b == 1) ids[0] = BOS;
        for (int i = 0; i < text.length(); i++) {
            ids[i + b] = id(text.charAt(i));
            s[i + b] = i;
            e[i + b] = i + 1;
        }
        return new Encoding(ids, s, e);
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id >= OFFSET) sb.append((char) (id - OFFSET));
        return sb.toString();
    }

    @Override
    public String decodeNext(int previous, int id) { return decode(new int[] {id}); }

    @Override
    public StreamDecoder newStreamDecoder() {
        return new StreamDecoder() {
            @Override public String next(int id) { return decodeNext(-1, id); }
            @Override public String finish() { return ""; }
        };
    }

    @Override public int vocabSize() { return 65536 + OFFSET; }
    @Override public int bosId() { return hasBos ? BOS : -1; }
    @Override public int eosId() { return EOS; }

    @Override
    public int tokenId(String token) {
        return switch (token) {
            case "<pad>" -> PAD;
            case "<s>" -> hasBos ? BOS : -1;
            case "</s>" -> EOS;
            default -> token.length() == 1 ? id(token.charAt(0)) : -1;
        };
    }
}
