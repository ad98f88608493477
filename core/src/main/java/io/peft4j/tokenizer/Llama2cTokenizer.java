package io.peft4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * llama2.c's {@code tokenizer.bin}: {@code int32 max_token_length}, then per token {@code float32 score,
 * int32 len, len bytes}. The vocabulary size is whatever the file holds.
 *
 * <p>Encoding reproduces {@code run.c}'s {@code encode} exactly: a dummy-prefix {@code " "} token when the text is
 * non-empty, one token per UTF-8 code point (or byte-fallback tokens {@code byte + 3}), then repeatedly merge the
 * adjacent pair whose concatenation is in the vocabulary with the highest score, the leftmost on ties. run.c rescans
 * all pairs per merge (quadratic); this uses a heap of candidate pairs with lazy invalidation, ordered by (score
 * descending, position ascending), which picks the same pair at every step, in O(n log n).
 *
 * <p>Decoding follows run.c's {@code decode}: a piece following BOS loses its leading space; {@code <0xXX>} pieces
 * are the raw byte. BOS and EOS pieces are skipped. Raw bytes are assembled and decoded as UTF-8 (malformed input
 * becomes U+FFFD): {@link #decode} over the whole byte string; the {@link #newStreamDecoder() stream decoder} emits
 * every complete character and holds back at most 3 trailing bytes of an incomplete one until it completes (or
 * {@code finish()} turns it into U+FFFD).
 */
public final class Llama2cTokenizer implements Tokenizer {
    public static final int BOS = 1, EOS = 2;

    private final byte[][] pieces;        // [vocab] raw bytes of each token
    private final float[] scores;         // [vocab] merge priority
    private final int[] byteValue;        // [vocab] the byte of a "<0xXX>" piece, else -1
    private final Map<String, Integer> ids; // piece bytes (as ISO-8859-1 chars) -> lowest id with that piece
    private final int maxTokenLength;

    private Llama2cTokenizer(byte[][] pieces, float[] scores, int maxTokenLength) {
        this.pieces = pieces;
        this.scores = scores;
        this.maxTokenLength = maxTokenLength;
        this.byteValue = new int[pieces.length];
        this.ids = HashMap.newHashMap(pieces.length);
        for (int i = 0; i < pieces.length; i++) {
            ids.putIfAbsent(key(pieces[i]), i);
            byteValue[i] = parseByteToken(pieces[i]);
        }
    }

    /** Reads {@code file}; a malformed file fails with one line naming it and the token at fault. */
    public static Llama2cTokenizer load(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (all.length < 4) throw new IOException(file + ": not a llama2.c tokenizer.bin (only " + all.length + " bytes)");
        int maxLen = b.getInt();
        if (maxLen <= 0 || maxLen > 1 << 16)
            throw new IOException(file + ": not a llama2.c tokenizer.bin (max_token_length " + maxLen + ")");
        List<byte[]> ps = new ArrayList<>();
        float[] sc = new float[1024];
        while (b.hasRemaining()) {
            int i = ps.size();
            if (b.remaining() < 8) throw new IOException(file + ": truncated at token " + i + " (" + b.remaining() + " stray bytes)");
            float score = b.getFloat();
            int len = b.getInt();
            if (len < 0 || len > maxLen || len > b.remaining())
                throw new IOException(file + ": corrupt token " + i + " at byte " + (b.position() - 4) + ": length " + len
                        + " (max_token_length " + maxLen + ", " + b.remaining() + " bytes left)");
            byte[] p = new byte[len];
            b.get(p);
            ps.add(p);
            if (i == sc.length) sc = Arrays.copyOf(sc, sc.length * 2);
            sc[i] = score;
        }
        if (ps.size() < 3 + 256)
            throw new IOException(file + ": only " + ps.size() + " tokens; a llama2.c vocabulary has <unk>, <s>, </s> and 256 byte tokens");
        return new Llama2cTokenizer(ps.toArray(new byte[0][]), Arrays.copyOf(sc, ps.size()), maxLen);
    }

    private static String key(byte[] bytes) { return new String(bytes, StandardCharsets.ISO_8859_1); }

    private static String key(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return key(c);
    }

    /** run.c's {@code sscanf(piece, "<0x%02hhX>")} for the pieces it is meant for: exactly {@code <0xHH>}. */
    private static int parseByteToken(byte[] p) {
        if (p.length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
        int hi = Character.digit(p[3], 16), lo = Character.digit(p[4], 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    // ---------------------------------------------------------------- encode

    @Override
    public int[] encode(String text, boolean addBos) { return encodeWithOffsets(text, addBos).ids(); }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addBos) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        int[] charOfByte = charIndexOfBytes(text, utf8.length); // [bytes + 1] char offset where each byte's code point starts
        // Symbols form a doubly linked list; a merge keeps the left symbol and unlinks the right one.
        int cap = utf8.length + 1;
        int[] tok = new int[cap], next = new int[cap], prev = new int[cap], start = new int[cap], end = new int[cap];
        int n = 0;
        if (!text.isEmpty()) {
            tok[n] = lookupOrFail(" ");
            n++; // start = end = 0: the dummy prefix has no source text
        }
        byte[] buf = new byte[4];
        int len = 0, groupStart = 0;
        for (int c = 0; c < utf8.length; c++) {
            if ((utf8[c] & 0xC0) != 0x80) { len = 0; groupStart = c; }
            buf[len++] = utf8[c];
            if (c + 1 < utf8.length && (utf8[c + 1] & 0xC0) == 0x80 && len < 4) continue;
            Integer id = ids.get(key(Arrays.copyOf(buf, len)));
            int s = charOfByte[groupStart], e = charOfByte[c + 1];
            if (id != null) {
                tok[n] = id; start[n] = s; end[n] = e; n++;
            } else {
                for (int i = 0; i < len; i++) { tok[n] = (buf[i] & 0xff) + 3; start[n] = s; end[n] = e; n++; }
            }
            len = 0;
        }
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }

        PairHeap heap = new PairHeap(Math.max(16, n));
        for (int i = 0; i + 1 < n; i++) offerPair(heap, tok, i, i + 1);
        while (heap.size > 0) {
            int left = heap.popLeft(), right = heap.lastRight, merged = heap.lastMerged;
            int leftTok = heap.lastLeftTok, rightTok = heap.lastRightTok;
            // Stale if either side has merged since: a symbol's token only grows, so an equal id means unchanged.
            if (tok[left] != leftTok || next[left] != right || tok[right] != rightTok) continue;
            tok[left] = merged;
            if (start[left] == end[left]) start[left] = start[right]; // the dummy prefix has no text of its own
            end[left] = Math.max(end[left], end[right]);
            int nn = next[right];
            next[left] = nn;
            if (nn >= 0) prev[nn] = left;
            tok[right] = -1;
            if (prev[left] >= 0) offerPair(heap, tok, prev[left], left);
            if (nn >= 0) offerPair(heap, tok, left, nn);
        }
        int count = (addBos ? 1 : 0);
        for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) count++;
        int[] outIds = new int[count], outS = new int[count], outE = new int[count];
        int k = 0;
        if (addBos) outIds[k++] = BOS;
        for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) { outIds[k] = tok[i]; outS[k] = start[i]; outE[k] = end[i]; k++; }
        return new Encoding(outIds, outS, outE);
    }

    private void offerPair(PairHeap heap, int[] tok, int left, int right) {
        Integer merged = ids.get(key(pieces[tok[left]], pieces[tok[right]]));
        if (merged != null) heap.push(scores[merged], left, right, merged, tok[left], tok[right]);
    }

    private int lookupOrFail(String piece) {
        Integer id = ids.get(key(piece.getBytes(StandardCharsets.UTF_8)));
        if (id == null) throw new IllegalStateException("llama2.c vocabulary has no '" + piece + "' token");
        return id;
    }

    /** For each byte offset of {@code text}'s UTF-8 (and the end), the char offset of the code point it belongs to. */
    private static int[] charIndexOfBytes(String text, int nBytes) {
        int[] m = new int[nBytes + 1];
        int b = 0;
        for (int c = 0; c < text.length(); ) {
            int cp = text.codePointAt(c);
            int cpBytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            // A lone surrogate encodes as one '?' byte in String.getBytes(UTF_8).
            if (Character.isSurrogate((char) cp)) cpBytes = 1;
            for (int i = 0; i < cpBytes; i++) m[b++] = c;
            c += Character.charCount(cp);
        }
        m[nBytes] = text.length();
        return m;
    }

    /** A binary max-heap of candidate merges keyed by (score desc, left position asc), in parallel primitive arrays. */
    private static final class PairHeap {
        float[] score; int[] left, right, merged, leftTok, rightTok;
        int size;
        int lastRight, lastMerged, lastLeftTok, lastRightTok;

        PairHeap(int cap) {
            score = new float[cap]; left = new int[cap]; right = new int[cap];
            merged = new int[cap]; leftTok = new int[cap]; rightTok = new int[cap];
        }

        private boolean before(int a, int b) {
            return score[a] > score[b] || (score[a] == score[b] && left[a] < left[b]);
        }

        void push(float s, int l, int r, int m, int lt, int rt) {
            if (size == score.length) {
                int c = size * 2;
                score = Arrays.copyOf(score, c); left = Arrays.copyOf(left, c); right = Arrays.copyOf(right, c);
                merged = Arrays.copyOf(merged, c); leftTok = Arrays.copyOf(leftTok, c); rightTok = Arrays.copyOf(rightTok, c);
            }
            int i = size++;
            set(i, s, l, r, m, lt, rt);
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (!before(i, p)) break;
                swap(i, p);
                i = p;
            }
        }

        /** Removes the top; returns its left symbol, the rest in the {@code last*} fields. */
        int popLeft() {
            int l = left[0];
            lastRight = right[0]; lastMerged = merged[0]; lastLeftTok = leftTok[0]; lastRightTok = rightTok[0];
            size--;
            if (size > 0) {
                set(0, score[size], left[size], right[size], merged[size], leftTok[size], rightTok[size]);
                int i = 0;
                while (true) {
                    int a = 2 * i + 1, b = a + 1, best = i;
                    if (a < size && before(a, best)) best = a;
                    if (b < size && before(b, best)) best = b;
                    if (best == i) break;
                    swap(i, best);
                    i = best;
                }
            }
            return l;
        }

        private void set(int i, float s, int l, int r, int m, int lt, int rt) {
            score[i] = s; left[i] = l; right[i] = r; merged[i] = m; leftTok[i] = lt; rightTok[i] = rt;
        }

        private void swap(int i, int j) {
            set(size, score[i], left[i], right[i], merged[i], leftTok[i], rightTok[i]); // slot `size` is free scratch
            set(i, score[j], left[j], right[j], merged[j], leftTok[j], rightTok[j]);
            set(j, score[size], left[size], right[size], merged[size], leftTok[size], rightTok[size]);
        }
    }

    // ---------------------------------------------------------------- decode

    /** The raw bytes run.c prints for {@code id} after {@code previous} (BOS/EOS: none). */
    public byte[] pieceBytes(int previous, int id) {
        checkId(id);
        if (id == BOS || id == EOS) return new byte[0];
        int bv = byteValue[id];
        if (bv >= 0) return new byte[] {(byte) bv};
        byte[] p = pieces[id];
        if (previous == BOS && p.length > 0 && p[0] == ' ') return Arrays.copyOfRange(p, 1, p.length);
        return p;
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int prev = -1;
        for (int id : ids) { out.writeBytes(pieceBytes(prev, id)); prev = id; }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public String decodeNext(int previous, int id) {
        return new String(pieceBytes(previous, id), StandardCharsets.UTF_8);
    }

    @Override
    public StreamDecoder newStreamDecoder() {
        return new StreamDecoder() {
            private byte[] pending = new byte[0]; // [<= 3] bytes of a character still incomplete
            private int prev = -1;

            @Override
            public String next(int id) {
                byte[] p = pieceBytes(prev, id);
                prev = id;
                byte[] all = Arrays.copyOf(pending, pending.length + p.length);
                System.arraycopy(p, 0, all, pending.length, p.length);
                int cut = completePrefix(all);
                pending = Arrays.copyOfRange(all, cut, all.length);
                return new String(all, 0, cut, StandardCharsets.UTF_8);
            }

            @Override
            public String finish() {
                String s = new String(pending, StandardCharsets.UTF_8);
                pending = new byte[0];
                return s;
            }
        };
    }

    /**
     * Length of the prefix of {@code b} that decodes the same whatever bytes follow: all of it, unless it ends in a
     * lead byte followed by fewer continuation bytes than the lead announces (a character that may still complete).
     */
    static int completePrefix(byte[] b) {
        int n = b.length;
        for (int back = 1; back <= Math.min(4, n); back++) {
            int v = b[n - back] & 0xff;
            if ((v & 0xC0) == 0x80) continue; // continuation byte: keep looking for its lead
            int need = v >= 0xC2 && v <= 0xDF ? 2 : v >= 0xE0 && v <= 0xEF ? 3 : v >= 0xF0 && v <= 0xF4 ? 4 : 1;
            return back < need ? n - back : n;
        }
        return n;
    }

    private void checkId(int id) {
        if (id < 0 || id >= pieces.length)
            throw new IllegalArgumentException("token id " + id + " out of range for llama2.c vocabulary of " + pieces.length);
    }

    // ---------------------------------------------------------------- vocabulary

    @Override public int vocabSize() { return pieces.length; }
    @Override public int bosId() { return BOS; }
    @Override public int eosId() { return EOS; }

    @Override
    public int tokenId(String token) {
        Integer id = ids.get(key(token.getBytes(StandardCharsets.UTF_8)));
        return id == null ? -1 : id;
    }

    /** The raw piece of {@code id} as stored in the file. */
    public byte[] piece(int id) { checkId(id); return pieces[id].clone(); }

    public float score(int id) { checkId(id); return scores[id]; }

    public int maxTokenLength() { return maxTokenLength; }
}
