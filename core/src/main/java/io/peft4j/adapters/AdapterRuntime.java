package io.peft4j.adapters;

/**
 * State shared by every adapter layer of one model: training vs inference (dropout on or off), the seed stream
 * that makes dropout masks deterministic for a given seed, and the per-token tags (modality) of the batch being run.
 */
public final class AdapterRuntime {
    private boolean training;
    private long seed;
    private long calls;       // dropout masks drawn so far
    private int[] tokenTags;  // [batch * seqLen] row-major tag (modality) of each token of the batch being run, or null

    public AdapterRuntime(long seed) { this.seed = seed; }

    public boolean training() { return training; }
    public void training(boolean t) { training = t; }

    /** A fresh seed for one dropout mask; a function of the base seed and the number of masks drawn. */
    public long nextSeed() { return mix(seed + 0x9E3779B97F4A7C15L * ++calls); }

    /** Resets the stream (checkpoint resume restores {@code calls}). */
    public void reseed(long seed, long calls) { this.seed = seed; this.calls = calls; }
    public long seed() { return seed; }
    public long calls() { return calls; }

    /**
     * Sets the per-token tags of the batch about to run (row-major [batch * seqLen], the row order of the model's
     * linear-layer inputs), or null for none (every token tag 0). The Trainer and Evaluator set it from
     * {@code Batch.tags()} before each forward and clear it after; layers routed by modality (MM-LoRA) read it.
     */
    public void tokenTags(int[] tags) { this.tokenTags = tags; }

    /** The per-token tags of the batch being run ([batch * seqLen]), or null when every token is tag 0. */
    public int[] tokenTags() { return tokenTags; }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
