package io.peft4j.kernels;

import java.util.Arrays;

/**
 * Flash-attention style scaled-dot-product attention on plain arrays, forward and backward, parallel over
 * (batch, head). Keys are processed in tiles of {@link #BC} with an online softmax, so the T x S score matrix never
 * exists; a tile of keys is transposed once per block of {@link #BR} queries so that scores are a row-vector-times-
 * matrix product ({@link NnKernels#vecMat}) with no horizontal reductions. The forward saves one logsumexp per
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
            float[] sc = new float[BC];          // scores, then probabilities, of one row
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
                        for (int r = 0; r < rows; r++) {
                            int i = i0 + r;
                            int colsR = causal ? Math.min(cols, clamp(queryOffset + i + 1, S) - j0) : cols;
                            if (colsR <= 0) continue;
                            // the full tile width keeps vecMat on whole vectors (a ragged causal edge would fall to
                            // its scalar tail); columns >= colsR are computed and ignored
                            Arrays.fill(sc, 0f);
                            kern.vecMat(q, qBase + i * qld, kt, 0, BC, Dh, BC, scale, sc, 0);
                            if (mask != null) addMask(mask, mBase + i * mask.st() + j0 * mask.ss(), sc, colsR);
                            float mt = kern.max(sc, 0, colsR);
                            if (mt == Float.NEGATIVE_INFINITY) continue;   // nothing visible in this tile
                            float mOld = m[r], mNew = Math.max(mOld, mt);
                            if (mOld != Float.NEGATIVE_INFINITY && mOld != mNew) {
                                float corr = (float) Math.exp(mOld - mNew);
                                l[r] *= corr;
                                kern.scale(corr, acc, r * Dh, Dh);
                            }
                            l[r] += kern.expStore(sc, 0, mNew, sc, 0, colsR);
                            m[r] = mNew;
                            kern.vecMat(sc, 0, v, vBase + j0 * kld, kld, colsR, Dh, 1f, acc, r * Dh);
                        }
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
            float[] pT = new float[BC * BR], dsT = new float[BC * BR];  // [BC, BR] probabilities and dScores
            float[] sc = new float[BC], ds = new float[BC];
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
                            int rows = Math.min(BR, T - i0);
                            for (int r = 0; r < rows; r++) {
                                int o = qRel + (i0 + r) * qld;
                                dRow[r] = kern.dot(dOut, o, out, o, Dh);
                            }
                            int kEnd = causal ? clamp(queryOffset + i0 + rows, S) : S;
                            for (int j0 = 0; j0 < kEnd; j0 += BC) {
                                int cols = Math.min(BC, kEnd - j0);
                                transpose(k, kIn + j0 * kld, kld, cols, Dh, kt);
                                if (needDs) transpose(v, vIn + j0 * kld, kld, cols, Dh, vt);
                                Arrays.fill(pT, 0, cols * BR, 0f);
                                Arrays.fill(dsT, 0, cols * BR, 0f);
                                for (int r = 0; r < rows; r++) {
                                    int i = i0 + r;
                                    float rowLse = lse[lseBase + i];
                                    if (rowLse == Float.NEGATIVE_INFINITY) continue;
                                    int colsR = causal ? Math.min(cols, clamp(queryOffset + i + 1, S) - j0) : cols;
                                    if (colsR <= 0) continue;
                                    int qRow = qRel + i * qld;
                                    Arrays.fill(sc, 0f);
                                    kern.vecMat(q, qIn + i * qld, kt, 0, BC, Dh, BC, scale, sc, 0);
                                    int mRow = mask == null ? 0 : mBase + i * mask.st() + j0 * mask.ss();
                                    if (mask != null) addMask(mask, mRow, sc, colsR);
                                    kern.expStore(sc, 0, rowLse, sc, 0, colsR);   // probabilities
                                    for (int cc = 0; cc < colsR; cc++) pT[cc * BR + r] = sc[cc];
                                    if (!needDs) continue;
                                    Arrays.fill(ds, 0f);
                                    kern.vecMat(dOut, qRow, vt, 0, BC, Dh, BC, 1f, ds, 0);   // dP
                                    float di = dRow[r];
                                    for (int cc = 0; cc < colsR; cc++) {
                                        float g = sc[cc] * (ds[cc] - di);
                                        ds[cc] = g;
                                        dsT[cc * BR + r] = g;
                                    }
                                    if (dm != null) {
                                        int mr = mRow - mask.offset(), ss = mask.ss();
                                        for (int cc = 0; cc < colsR; cc++) dm[mr + cc * ss] += ds[cc];
                                    }
                                    if (dq != null) kern.vecMat(ds, 0, k, kIn + j0 * kld, kld, colsR, Dh, scale, dq, qRow);
                                }
                                int qBlock = qRel + i0 * qld;
                                for (int cc = 0; cc < cols; cc++) {
                                    int kRow = kRel + (j0 + cc) * kld;
                                    if (dv != null) kern.vecMat(pT, cc * BR, dOut, qBlock, qld, rows, Dh, 1f, dv, kRow);
                                    if (dk != null) kern.vecMat(dsT, cc * BR, q, qIn + i0 * qld, qld, rows, Dh, scale, dk, kRow);
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

    private static void addMask(Mask mask, int mo, float[] sc, int n) {
        float[] md = mask.data();
        int ss = mask.ss();
        for (int c = 0; c < n; c++) sc[c] += md[mo + c * ss];
    }
}
