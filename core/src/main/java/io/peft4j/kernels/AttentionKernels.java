package io.peft4j.kernels;

import java.util.Arrays;

/**
 * Flash-attention style scaled-dot-product attention on plain arrays, forward and backward, parallel over
 * (batch, head). Keys are processed in tiles of {@link #BC} with an online softmax, so the T x S score matrix never
 * exists; a tile of keys is transposed once per block of {@link #BR} queries so that every product is a small
 * register-tiled matrix product ({@link NnKernels#gemmAcc}) with no horizontal reductions. The forward saves one logsumexp per
 * query row; the backward recomputes the probabilities tile by tile from it.
 *
 * <p>Layouts (row-major): q [B, T, Hq, Dh], k and v [B, S, Hkv, Dh], out [B, T, Hq, Dh], lse [B, Hq, T]. Grouped
 * query heads read K/V head {@code h / (Hq / Hkv)} by index. Query i sits at absolute position
 * {@code queryOffset + i}; when causal it sees keys 0..queryOffset+i. A row whose every score is -inf (fully masked)
 * yields output 0 and lse -inf, and receives no gradient.
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /** Query rows per block: the transposed key tile is reused by this many rows. */
    static final int BR = 32;
    /** Keys per tile. */
    static final int BC = 64;

    /** Problem sizes: B, T (queries), S (keys), Hq, Hkv, Dh. */
    public record Dims(int batch, int queries, int keys, int qHeads, int kvHeads, int headDim) {
        public Dims {
            if (qHeads % kvHeads != 0) throw new IllegalArgumentException("Hq " + qHeads + " is not a multiple of Hkv " + kvHeads);
        }
    }

    /**
     * An additive mask seen as [B, Hq, T, S]: element (b, h, i, j) is {@code data[offset + b*sb + h*sh + i*st + j*ss]};
     * a stride of 0 broadcasts that axis. Its gradient buffer uses the same strides from offset 0.
     */
    public record Mask(float[] data, int offset, int sb, int sh, int st, int ss) {}

    /**
     * A q, k or v input: element (b, i, h, e) at {@code data[offset + b * batchStride + (i * H + h) * Dh + e]}, so a
     * batch-strided view (a KV-cache slice) is read in place.
     */
    public record Operand(float[] data, int offset, int batchStride) {}

    /** Fills {@code out} [B, T, Hq, Dh] and {@code lse} [B, Hq, T] (both from offset 0). */
    public static void forward(NnKernels kern, Dims d, Operand qop, Operand kop, Operand vop,
                               Mask mask, boolean causal, int queryOffset, float scale, float[] out, float[] lse) {
        final int T = d.queries(), S = d.keys(), Hq = d.qHeads(), Hkv = d.kvHeads(), Dh = d.headDim();
        final int group = Hq / Hkv, qld = Hq * Dh, kld = Hkv * Dh;
        final float[] q = qop.data(), k = kop.data(), v = vop.data();
        Parallel.forRange(0, d.batch() * Hq, 1, (t0, t1) -> {
            float[] kt = new float[Dh * BC];     // [Dh, BC] transposed key tile
            float[] sc = new float[BR * BC];     // [BR, BC] scores, then probabilities, of a query block
            float[] acc = new float[BR * Dh];    // [BR, Dh] unnormalised outputs
            float[] m = new float[BR], l = new float[BR];   // running max and sum per row
            for (int task = t0; task < t1; task++) {
                int b = task / Hq, h = task % Hq, kvh = h / group;
                int kBase = kop.offset() + b * kop.batchStride() + kvh * Dh, vBase = vop.offset() + b * vop.batchStride() + kvh * Dh;
                int qBase = qop.offset() + b * qop.batchStride() + h * Dh, oBase = (b * T * Hq + h) * Dh, lseBase = (b * Hq + h) * T;
                int mBase = mask == null ? 0 : mask.offset() + b * mask.sb() + h * mask.sh();
                for (int i0 = 0; i0 < T; i0 += BR) {
                    int rows = Math.min(BR, T - i0);
                    Arrays.fill(m, 0, rows, Float.NEGATIVE_INFINITY);
                    Arrays.fill(l, 0, rows, 0f);
                    Arrays.fill(acc, 0, rows * Dh, 0f);
                    int kEnd = causal ? clamp(queryOffset + i0 + rows, S) : S;
                    for (int j0 = 0; j0 < kEnd; j0 += BC) {
                        int cols = Math.min(BC, kEnd - j0);
                        transpose(k, kBase + j0 * kld, kld, cols, Dh, kt);
                        // scores over the full (zero-padded) tile width, so the product runs on whole vectors;
                        // columns past each row's visible range are ignored below
                        Arrays.fill(sc, 0, rows * BC, 0f);
                        kern.gemmAcc(rows, Dh, BC, scale, q, qBase + i0 * qld, qld, kt, 0, BC, sc, 0, BC);
                        for (int r = 0; r < rows; r++) {
                            int i = i0 + r, so = r * BC;
                            int colsR = causal ? Math.min(cols, clamp(queryOffset + i + 1, S) - j0) : cols;
                            float mt = Float.NEGATIVE_INFINITY;
                            if (colsR > 0) {
                                if (mask != null) addMask(mask, mBase + i * mask.st() + j0 * mask.ss(), sc, so, colsR);
                                mt = kern.max(sc, so, colsR);
                            }
                            if (mt == Float.NEGATIVE_INFINITY) {   // nothing visible in this tile
                                Arrays.fill(sc, so, so + cols, 0f);
                                continue;
                            }
                            float mOld = m[r], mNew = Math.max(mOld, mt);
                            if (mOld != Float.NEGATIVE_INFINITY && mOld != mNew) {
                                float corr = (float) Math.exp(mOld - mNew);
                                l[r] *= corr;
                                kern.scale(corr, acc, r * Dh, Dh);
                            }
                            l[r] += kern.expStore(sc, so, mNew, sc, so, colsR);
                            Arrays.fill(sc, so + colsR, so + cols, 0f);
                            m[r] = mNew;
                        }
                        kern.gemmAcc(rows, cols, Dh, 1f, sc, 0, BC, v, vBase + j0 * kld, kld, acc, 0, Dh);
                    }
                    for (int r = 0; r < rows; r++) {
                        int i = i0 + r, o = oBase + i * qld;
                        if (l[r] > 0f) {
                            float inv = 1f / l[r];
                            for (int e = 0; e < Dh; e++) out[o + e] = acc[r * Dh + e] * inv;
                            lse[lseBase + i] = m[r] + (float) Math.log(l[r]);
                        } else {
                            Arrays.fill(out, o, o + Dh, 0f);
                            lse[lseBase + i] = Float.NEGATIVE_INFINITY;
                        }
                    }
                }
            }
        });
    }

    /**
     * Accumulates the gradients of {@link #forward}. {@code dOut}, {@code dq}, {@code dk}, {@code dv} are dense from
     * offset 0 in the layouts of out, q, k, v; any of dq/dk/dv/dmask may be null (not wanted). {@code dmask} is laid
     * out like the mask data with offset 0; broadcast mask axes sum their gradients.
     */
    public static void backward(NnKernels kern, Dims d, Operand qop, Operand kop, Operand vop, Mask mask, boolean causal, int queryOffset, float scale, float[] out, float[] lse,
                                float[] dOut, float[] dq, float[] dk, float[] dv, float[] dmask) {
        final int B = d.batch(), T = d.queries(), S = d.keys(), Hq = d.qHeads(), Hkv = d.kvHeads(), Dh = d.headDim();
        final int group = Hq / Hkv, qld = Hq * Dh, kld = Hkv * Dh;
        final float[] q = qop.data(), k = kop.data(), v = vop.data();
        final boolean needDs = dq != null || dk != null || dmask != null;
        final int tasks = B * Hkv;
        // A task owns one (batch, kv head): its dK/dV rows and the dQ rows of its query heads. Only a mask broadcast
        // over batch or kv-head groups is written by several tasks: then each chunk gets a private buffer.
        final boolean sharedMask = dmask != null && ((mask.sb() == 0 && B > 1) || (mask.sh() == 0 && Hkv > 1));
        final int chunks = Math.max(1, Math.min(Parallel.threads(), tasks));
        final float[][] partial = sharedMask ? new float[chunks][] : null;
        Parallel.forRange(0, chunks, 1, (c0, c1) -> {
            float[] kt = new float[Dh * BC], vt = new float[Dh * BC];   // [Dh, BC] transposed tiles
            float[] p = new float[BR * BC], ds = new float[BR * BC];    // [BR, BC] probabilities; dP, then dScores
            float[] pT = new float[BC * BR], dsT = new float[BC * BR];  // [BC, BR] their transposes
            float[] dRow = new float[BR];                                // D_i = dOut_i . out_i
            for (int c = c0; c < c1; c++) {
                float[] dm = dmask;
                if (sharedMask) dm = partial[c] = new float[dmask.length];
                int taskEnd = (int) ((long) tasks * (c + 1) / chunks);
                for (int task = (int) ((long) tasks * c / chunks); task < taskEnd; task++) {
                    int b = task / Hkv, kvh = task % Hkv;
                    int kRel = (b * S * Hkv + kvh) * Dh;   // key j of this head in dk/dv at kRel + j * kld
                    int kIn = kop.offset() + b * kop.batchStride() + kvh * Dh, vIn = vop.offset() + b * vop.batchStride() + kvh * Dh;
                    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                        int qRel = (b * T * Hq + h) * Dh, lseBase = (b * Hq + h) * T;   // in dq, out, dOut
                        int qIn = qop.offset() + b * qop.batchStride() + h * Dh;
                        int mBase = mask == null ? 0 : mask.offset() + b * mask.sb() + h * mask.sh();
                        for (int i0 = 0; i0 < T; i0 += BR) {
                            int rows = Math.min(BR, T - i0), qBlock = qRel + i0 * qld;
                            for (int r = 0; r < rows; r++) {
                                int o = qBlock + r * qld;
                                dRow[r] = kern.dot(dOut, o, out, o, Dh);
                            }
                            int kEnd = causal ? clamp(queryOffset + i0 + rows, S) : S;
                            for (int j0 = 0; j0 < kEnd; j0 += BC) {
                                int cols = Math.min(BC, kEnd - j0);
                                transpose(k, kIn + j0 * kld, kld, cols, Dh, kt);
                                Arrays.fill(p, 0, rows * BC, 0f);
                                kern.gemmAcc(rows, Dh, BC, scale, q, qIn + i0 * qld, qld, kt, 0, BC, p, 0, BC);
                                if (needDs) {
                                    transpose(v, vIn + j0 * kld, kld, cols, Dh, vt);
                                    Arrays.fill(ds, 0, rows * BC, 0f);
                                    kern.gemmAcc(rows, Dh, BC, 1f, dOut, qBlock, qld, vt, 0, BC, ds, 0, BC);   // dP
                                }
                                for (int r = 0; r < rows; r++) {
                                    int i = i0 + r, so = r * BC;
                                    float rowLse = lse[lseBase + i];
                                    int colsR = causal ? Math.min(cols, clamp(queryOffset + i + 1, S) - j0) : cols;
                                    if (rowLse == Float.NEGATIVE_INFINITY || colsR <= 0) colsR = 0;
                                    if (colsR > 0) {
                                        int mRow = mask == null ? 0 : mBase + i * mask.st() + j0 * mask.ss();
                                        if (mask != null) addMask(mask, mRow, p, so, colsR);
                                        kern.expStore(p, so, rowLse, p, so, colsR);   // probabilities
                                        if (needDs) {
                                            float di = dRow[r];
                                            for (int cc = 0; cc < colsR; cc++) ds[so + cc] = p[so + cc] * (ds[so + cc] - di);
                                            if (dm != null) {
                                                int mr = mRow - mask.offset(), ss = mask.ss();
                                                for (int cc = 0; cc < colsR; cc++) dm[mr + cc * ss] += ds[so + cc];
                                            }
                                        }
                                    }
                                    Arrays.fill(p, so + colsR, so + cols, 0f);
                                    if (needDs) Arrays.fill(ds, so + colsR, so + cols, 0f);
                                }
                                if (dq != null) kern.gemmAcc(rows, cols, Dh, scale, ds, 0, BC, k, kIn + j0 * kld, kld, dq, qBlock, qld);
                                int kRow = kRel + j0 * kld;
                                if (dv != null) {
                                    transposeBlock(p, rows, cols, pT);
                                    kern.gemmAcc(cols, rows, Dh, 1f, pT, 0, BR, dOut, qBlock, qld, dv, kRow, kld);
                                }
                                if (dk != null) {
                                    transposeBlock(ds, rows, cols, dsT);
                                    kern.gemmAcc(cols, rows, Dh, scale, dsT, 0, BR, q, qIn + i0 * qld, qld, dk, kRow, kld);
                                }
                            }
                        }
                    }
                }
            }
        });
        if (sharedMask)
            for (float[] p : partial)
                if (p != null) for (int i = 0; i < p.length; i++) dmask[i] += p[i];
    }

    private static int clamp(int keys, int s) { return Math.max(0, Math.min(s, keys)); }

    /** dst[e * BC + c] = src[so + c * ld + e] for c < cols, e < dh; columns cols..BC are zeroed. */
    private static void transpose(float[] src, int so, int ld, int cols, int dh, float[] dst) {
        for (int c = 0; c < cols; c++) {
            int s = so + c * ld;
            for (int e = 0; e < dh; e++) dst[e * BC + c] = src[s + e];
        }
        if (cols < BC) for (int e = 0; e < dh; e++) Arrays.fill(dst, e * BC + cols, (e + 1) * BC, 0f);
    }

    /** dst[c * BR + r] = src[r * BC + c] for r < rows, c < cols. */
    private static void transposeBlock(float[] src, int rows, int cols, float[] dst) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) dst[c * BR + r] = src[r * BC + c];
    }

    private static void addMask(Mask mask, int mo, float[] sc, int so, int n) {
        float[] md = mask.data();
        int ss = mask.ss();
        for (int c = 0; c < n; c++) sc[so + c] += md[mo + c * ss];
    }
}
