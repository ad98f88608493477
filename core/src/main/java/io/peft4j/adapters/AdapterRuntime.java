package io.peft4j.adapters;

/**
 * State shared by every adapter layer of one model: training vs inference (dropout on or off) and the seed stream
 * that makes dropout masks deterministic for a given seed.
 */
public final class AdapterRuntime {
    private boolean training;
    private long seed;
    private long calls;       // dropout masks drawn so far

    public AdapterRuntime(long seed) { this.seed = seed; }

    public boolean training() { return training; }
    public void training(boolean t) { training = t; }

    /** A fresh seed for one dropout mask; a function of the base seed and the number of masks drawn. */
    public long nextSeed() { return mix(seed + 0x9E3779B97F4A7C15L * ++calls); }

    /** Resets the stream (checkpoint resume restores {@code calls}). */
    public void reseed(long seed, long calls) { this.seed = seed; this.calls = calls; }
    public long seed() { return seed; }
    public long calls() { return calls; }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
