package io.peft4j.tokenizer;

import java.util.HashMap;
import java.util.Map;

/**
 * A character-level tokenizer over a fixed alphabet: id 0 pad, 1 BOS, 2 EOS, then one id per character. Used by
 * models peft4j builds itself (the demo), which need no tokenizer file. Unknown characters are an error naming them.
 */
public final class CharTokenizer implements Tokenizer {
    public static final int PAD = 0, BOS = 1, EOS = 2;
    private final String alphabet;
    private final Map<Character, Integer> ids = new HashMap<>();

    public CharTokenizer(String alphabet) {
        this.alphabet = alphabet;
        for (int i = 0; i < alphabet.length(); i++)
            if (ids.put(alphabet.charAt(i), 3 + i) != null) throw new IllegalArgumentException("alphabet repeats '" + alphabet.charAt(i) + "'");
    }

    public String alphabet() { return alphabet; }

    @Override
    public int[] encode(String text, boolean addBos) { return encodeWithOffsets(text, addBos).ids(); }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addBos) {
        int n = text.length() + (addBos ? 1 : 0);
        int[] out = new int[n], starts = new int[n], ends = new int[n];
        int k = 0;
        if (addBos) out[k++] = BOS;
        for (int i = 0; i < text.length(); i++, k++) {
            Integer id = ids.get(text.charAt(i));
            if (id == null) throw new IllegalArgumentException("character '" + text.charAt(i) + "' (U+" + Integer.toHexString(text.charAt(i)) + ") is not in the alphabet");
            out[k] = id;
            starts[k] = i;
            ends[k] = i + 1;
        }
        return new Encoding(out, starts, ends);
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id >= 3 && id < 3 + alphabet.length()) sb.append(alphabet.charAt(id - 3));
        return sb.toString();
    }

    @Override
    public String decodeNext(int previous, int id) { return decode(new int[] {id}); }

    @Override
    public StreamDecoder newStreamDecoder() {
        return new StreamDecoder() {
            @Override public String next(int id) { return decode(new int[] {id}); }
            @Override public String finish() { return ""; }
        };
    }

    @Override public int vocabSize() { return 3 + alphabet.length(); }
    @Override public int bosId() { return BOS; }
    @Override public int eosId() { return EOS; }

    @Override
    public int tokenId(String token) {
        if (token.equals("<pad>")) return PAD;
        if (token.equals("<s>")) return BOS;
        if (token.equals("</s>")) return EOS;
        Integer id = token.length() == 1 ? ids.get(token.charAt(0)) : null;
        return id == null ? -1 : id;
    }
}
