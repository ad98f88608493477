package io.peft4j.models;

import io.peft4j.tensor.Storage;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

/**
 * Keys and values of past positions for incremental decoding, preallocated per layer as [B, maxSeq, Hkv, Dh] F32.
 * All rows of the batch advance together: {@link #length()} positions are filled. A forward with a cache appends
 * its T new positions to every layer, then {@link #advance} moves the length on.
 *
 * <p>Not differentiable: the cache copies keys and values out of the tape's reach. Training runs without one.
 */
public final class KvCache {
    private final int layers, batch, maxSeq, kvHeads, headDim;
    private final float[][] keys;     // [layers][B * maxSeq * Hkv * Dh]
    private final float[][] values;   // [layers][B * maxSeq * Hkv * Dh]
    private int length;

    public KvCache(int layers, int batch, int maxSeq, int kvHeads, int headDim) {
        long per = (long) batch * maxSeq * kvHeads * headDim;
        if (per > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("KV cache of " + per + " floats per layer is too large; lower maxSeq or batch");
        this.layers = layers;
        this.batch = batch;
        this.maxSeq = maxSeq;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.keys = new float[layers][(int) per];
        this.values = new float[layers][(int) per];
    }

    public int layers() { return layers; }
    public int batch() { return batch; }
    public int maxSeq() { return maxSeq; }
    public int kvHeads() { return kvHeads; }
    public int headDim() { return headDim; }

    /** Positions filled so far (the position of the next token). */
    public int length() { return length; }

    /** Forgets every position (the buffers are reused). */
    public void reset() { length = 0; }

    /** Truncates to the first {@code n} positions (e.g. to re-run from a shared prompt prefix). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("cannot truncate a KV cache of length " + length + " to " + n);
        length = n;
    }

    public long bytes() { return 2L * layers * keys[0].length * 4; }

    void checkFits(int b, int t) {
        if (b != batch) throw new IllegalArgumentException("KV cache was made for batch " + batch + ", forward has batch " + b);
        if (length + t > maxSeq)
            throw new IllegalArgumentException("KV cache holds " + maxSeq + " positions; " + length + " used, " + t + " more requested");
    }

    /** Writes k, v [B, T, Hkv, Dh] (any layout) at positions [length, length + T) of {@code layer}. */
    void write(int layer, Tensor k, Tensor v) {
        copyIn(keys[layer], k);
        copyIn(values[layer], v);
    }

    private void copyIn(float[] dst, Tensor src) {
        Tensor s = src.contiguous();
        float[] d = s.data();
        int t = s.dim(1);
        int row = kvHeads * headDim;
        int off = s.dataOffset();
        for (int b = 0; b < batch; b++)
            System.arraycopy(d, off + b * t * row, dst, (b * maxSeq + length) * row, t * row);
    }

    /** Keys of {@code layer} for positions [0, n): a view [B, n, Hkv, Dh] over the cache (contiguous when B == 1). */
    Tensor keys(int layer, int n) { return view(keys[layer], n); }

    Tensor values(int layer, int n) { return view(values[layer], n); }

    private Tensor view(float[] buf, int n) {
        Tensor full = new Tensor(Storage.heap(buf), DType.F32, new int[] {batch, maxSeq, kvHeads, headDim},
                Tensor.contiguousStrides(batch, maxSeq, kvHeads, headDim), 0);
        return full.slice(1, 0, n);
    }

    /** Moves the length on by {@code t}; a model calls this once per forward, after every layer has written its positions. */
    public void advance(int t) {
        if (t < 0 || length + t > maxSeq) throw new IllegalArgumentException("cannot advance a KV cache of length " + length + " by " + t + " (holds " + maxSeq + ")");
        length += t;
    }
}
