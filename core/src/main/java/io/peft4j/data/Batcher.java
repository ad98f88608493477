package io.peft4j.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * Cuts a {@link Dataset} into padded {@link Batch}es, epoch after epoch. Each epoch visits every example once, in
 * file order or in a permutation fixed by {@code (seed, epoch)}; {@link #position()} captures where the iteration
 * stands and {@link #seek} restores it, so a run resumed from a checkpoint sees exactly the batches it would have.
 */
public final class Batcher {
    /**
     * @param batchSize   rows per batch
     * @param shuffle     visit examples in a per-epoch random order
     * @param seed        shuffle seed
     * @param dropLast    drop the last, smaller batch of an epoch (otherwise it is returned short)
     * @param padId       id written into padding positions (their labels are IGNORE, so any valid id works)
     * @param fixedSeqLen pad every batch to this many positions; 0 = to the longest example in the batch
     */
    public record Options(int batchSize, boolean shuffle, long seed, boolean dropLast, int padId, int fixedSeqLen) {
        public Options {
            if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
            if (padId < 0) throw new IllegalArgumentException("pad id must be >= 0, got " + padId);
            if (fixedSeqLen < 0) throw new IllegalArgumentException("fixedSeqLen must be >= 0, got " + fixedSeqLen);
        }

        /** Training defaults: shuffled, short last batch kept, padded to the longest row. */
        public static Options training(int batchSize, long seed, int padId) {
            return new Options(batchSize, true, seed, false, padId, 0);
        }

        /** In file order, short last batch kept: for evaluation. */
        public static Options inOrder(int batchSize, int padId) {
            return new Options(batchSize, false, 0, false, padId, 0);
        }
    }

    /**
     * Where an iteration stands: the epoch, how many examples of it were consumed, the shuffle seed, and the
     * dataset's fingerprint (so resuming against different data fails loudly).
     */
    public record Position(int epoch, int index, long seed, long fingerprint) {
        /** A single-line form for checkpoint metadata: {@code epoch=2,index=64,seed=42,fingerprint=...}. */
        public String encode() {
            return "epoch=" + epoch + ",index=" + index + ",seed=" + seed + ",fingerprint=" + Long.toHexString(fingerprint);
        }

        /** Parses {@link #encode}'s form. */
        public static Position parse(String s) {
            Integer epoch = null, index = null;
            Long seed = null, fp = null;
            try {
                for (String part : s.strip().split(",")) {
                    int eq = part.indexOf('=');
                    if (eq < 0) throw new IllegalArgumentException("no '=' in '" + part + "'");
                    String k = part.substring(0, eq).strip(), v = part.substring(eq + 1).strip();
                    switch (k) {
                        case "epoch" -> epoch = Integer.parseInt(v);
                        case "index" -> index = Integer.parseInt(v);
                        case "seed" -> seed = Long.parseLong(v);
                        case "fingerprint" -> fp = Long.parseUnsignedLong(v, 16);
                        default -> throw new IllegalArgumentException("unknown key '" + k + "'");
                    }
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad data position '" + s + "': " + e.getMessage(), e);
            }
            if (epoch == null || index == null || seed == null || fp == null)
                throw new IllegalArgumentException("bad data position '" + s + "': needs epoch, index, seed and fingerprint");
            return new Position(epoch, index, seed, fp);
        }
    }

    private final Dataset data;
    private final Options opt;
    private final boolean classification, weighted;
    private int epoch;
    private int index;     // examples of this epoch already handed out
    private int[] order;   // [size] visiting order of the current epoch

    public Batcher(Dataset data, Options opt) {
        if (data.isEmpty()) throw new IllegalArgumentException("cannot batch an empty dataset");
        if (opt.dropLast() && data.size() < opt.batchSize())
            throw new IllegalArgumentException("dataset has " + data.size() + " examples, fewer than one batch of "
                    + opt.batchSize() + " (and dropLast is set)");
        if (opt.fixedSeqLen() > 0 && data.maxLength() > opt.fixedSeqLen())
            throw new IllegalArgumentException("an example has " + data.maxLength() + " tokens, more than the fixed batch length "
                    + opt.fixedSeqLen());
        this.data = data;
        this.opt = opt;
        this.classification = data.isClassification();
        this.weighted = data.hasWeights();
        startEpoch(0);
    }

    private void startEpoch(int e) {
        epoch = e;
        index = 0;
        // Mixing the epoch in with an odd constant keeps each epoch's order independent of the others.
        order = opt.shuffle() ? Dataset.permutation(data.size(), opt.seed() + 0x632BE59BD9B4E019L * (e + 1L)) : null;
    }

    /** Examples per epoch that are batched (all, or whole batches only with dropLast). */
    private int epochEnd() {
        int n = data.size();
        return opt.dropLast() ? n - n % opt.batchSize() : n;
    }

    /** Batches per epoch. */
    public int batchesPerEpoch() {
        int b = opt.batchSize();
        return opt.dropLast() ? data.size() / b : (data.size() + b - 1) / b;
    }

    /** The epoch the next batch comes from (0-based). */
    public int epoch() {
        return index >= epochEnd() ? epoch + 1 : epoch;
    }

    public Options options() { return opt; }

    /** The state after the last batch returned. */
    public Position position() { return new Position(epoch, index, opt.seed(), data.fingerprint()); }

    /** Continues from {@code p}, taken from a batcher over the same data and options. */
    public void seek(Position p) {
        if (p.seed() != opt.seed()) throw new IllegalArgumentException("data position has shuffle seed " + p.seed()
                + " but this batcher uses " + opt.seed());
        if (p.fingerprint() != data.fingerprint())
            throw new IllegalArgumentException("data position was saved for different data (fingerprint "
                    + Long.toHexString(p.fingerprint()) + ", this dataset " + Long.toHexString(data.fingerprint()) + ")");
        if (p.epoch() < 0 || p.index() < 0 || p.index() > data.size())
            throw new IllegalArgumentException("data position " + p.encode() + " is out of range for " + data.size() + " examples");
        startEpoch(p.epoch());
        index = p.index();
    }

    /** The next batch; after the last batch of an epoch, the first of the next. Never runs out. */
    public Batch next() {
        if (index >= epochEnd()) startEpoch(epoch + 1);
        int b = Math.min(opt.batchSize(), data.size() - index);
        Example[] rows = new Example[b];
        for (int i = 0; i < b; i++) rows[i] = data.get(order != null ? order[index + i] : index + i);
        index += b;
        return assemble(rows);
    }

    /** The batches of one pass over {@code data} in file order (for evaluation); the last may be short. */
    public static Iterable<Batch> inOrder(Dataset data, int batchSize, int padId) {
        Options opt = Options.inOrder(batchSize, padId);
        return () -> new Iterator<>() {
            final Batcher b = data.isEmpty() ? null : new Batcher(data, opt);
            int left = b == null ? 0 : b.batchesPerEpoch();

            @Override public boolean hasNext() { return left > 0; }

            @Override public Batch next() {
                if (left == 0) throw new NoSuchElementException();
                left--;
                return b.next();
            }
        };
    }

    /** All batches of one pass in file order, as a list. */
    public static List<Batch> allInOrder(Dataset data, int batchSize, int padId) {
        List<Batch> out = new ArrayList<>();
        for (Batch b : inOrder(data, batchSize, padId)) out.add(b);
        return out;
    }

    private Batch assemble(Example[] rows) {
        int b = rows.length;
        int len = opt.fixedSeqLen();
        if (len == 0) for (Example e : rows) len = Math.max(len, e.length());
        int[] ids = new int[b * len], labels = new int[b * len], lengths = new int[b];
        int[] cls = classification ? new int[b] : null;
        float[] w = weighted ? new float[b] : null;
        int[] tags = null;                                  // [b * len] modality per position, only when some row has them
        for (Example e : rows) if (e.modalities() != null) { tags = new int[b * len]; break; }
        Arrays.fill(ids, opt.padId());
        Arrays.fill(labels, Example.IGNORE);
        for (int r = 0; r < b; r++) {
            Example e = rows[r];
            System.arraycopy(e.ids(), 0, ids, r * len, e.length());
            System.arraycopy(e.labels(), 0, labels, r * len, e.length());
            lengths[r] = e.length();
            if (cls != null) cls[r] = e.classLabel();
            if (w != null) w[r] = e.weight();
            if (tags != null && e.modalities() != null) System.arraycopy(e.modalities(), 0, tags, r * len, e.length());
        }
        return new Batch(ids, labels, b, len, cls, w, lengths, tags);
    }
}
