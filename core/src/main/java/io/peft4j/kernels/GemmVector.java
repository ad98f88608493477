package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.SoftReference;
import java.util.Arrays;

import static io.peft4j.kernels.GemmKernels.MR;
import static io.peft4j.kernels.GemmKernels.NR;

/**
 * The blocked GEMM driver around {@link GemmKernels}: B packed into panels of NR columns by KC rows (once per
 * call, or once per model with {@link Gemm#pack}); A packed per thread into MR-row panels of an MC x KC block that
 * stays in L2 while every B panel streams past it. Threads split the rows of C in MR multiples (or the B panels
 * when C has too few rows), so they share the packed B and never write the same C element.
 *
 * <p>For narrow outputs (n &lt;= 64, the LoRA down-projection x·A^T) with a row-major heap F32 A the kernel reads A
 * in place: there each A element feeds at most 2*64 flops, and packing it would cost as much as the multiply.
 * For small k (the up-projection, k = r) A is packed: it is tiny next to the output.
 */
final class GemmVector {
    private GemmVector() {}

    /**
     * Rows of a k block. Each k block loads and stores every C tile once more, and that costs more than streaming
     * the 128 KB B panel from L2 instead of 64 KB: 1024 measured 4-8% faster than 512 on 1024^3 and 512x2048x5632
     * (2 threads, 40 paired in-process rounds), 256 and 192 were 10-20% slower.
     */
    static final int KC = Integer.getInteger("peft4j.gemm.kc", 1024);
    /**
     * Most rows of the A block packed per thread (MC x KC floats = 1 MB, in the 2 MB L2). Multiple of MR. A thread's
     * rows are cut into equal blocks of at most MC (256 rows: one block, not 192 + 64), which kept each B panel's
     * trip from L3 to L2 amortised over the most rows: +1-4% against MC = 192 (2 threads, 30 paired rounds).
     */
    static final int MC = Math.max(MR, Integer.getInteger("peft4j.gemm.mc", 264) / MR * MR);
    /**
     * Column panels per block of C: the blocked loop finishes a thread's rows x NC_PANELS*NR columns of C over all
     * k blocks before moving right, so that block of C is re-read from cache, not from memory, between k blocks.
     */
    static final int NC_PANELS = Math.max(1, Integer.getInteger("peft4j.gemm.ncPanels", 32));
    /** Up to this n, A is read in place (no packing). */
    static final int THIN = 64;

    /** Per-thread scratch: the packed A block and the edge-tile spill. */
    private static final class Scratch {
        final float[] a = new float[MC * KC + GemmKernels.L];   // [MC/MR][KC][MR], + slack for transposeRows
        final float[] tile = new float[MR * NR]; // [MR][NR]
        final float[] run = new float[Math.max(KC, MR) * 2];
        // A slice of a column-major B on its way into a panel: [TRANSPOSE_CHUNK][w] or [16][TRANSPOSE_CHUNK].
        final float[] stage = new float[TRANSPOSE_CHUNK * NR];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /** Reused per calling thread for the per-call B packing; soft so a one-off huge B does not pin memory. */
    private static final ThreadLocal<SoftReference<MemorySegment>> PACK_BUFFER = new ThreadLocal<>();

    // ------------------------------------------------------------------------------------------ packing B

    /** Packs b [k, n] into a fresh matrix (the frozen-weight path). */
    static PackedMatrix pack(GemmOperand b) {
        PackedMatrix pm = new PackedMatrix(b.rows, b.cols, KC, NR, null);
        fill(b, pm);
        return pm;
    }

    /** Packs b into a per-thread reusable buffer: valid until the next call on this thread. */
    static PackedMatrix packScratch(GemmOperand b) {
        long need = PackedMatrix.size(b.rows, b.cols, NR);
        SoftReference<MemorySegment> ref = PACK_BUFFER.get();
        MemorySegment buf = ref == null ? null : ref.get();
        if (buf == null || buf.byteSize() < 4 * need) {
            buf = GemmKernels.alignedFloats(need);
            PACK_BUFFER.set(new SoftReference<>(buf));
        }
        PackedMatrix pm = new PackedMatrix(b.rows, b.cols, KC, NR, buf);
        fill(b, pm);
        return pm;
    }

    /** Full panels a row-major heap B is packed in at once, row by row (16 x 32 columns = 2 KB read per row). */
    private static final int PANEL_GROUP = 16;

    private static void fill(GemmOperand b, PackedMatrix pm) {
        int k = pm.rows(), panels = pm.panels(), blocks = (k + KC - 1) / KC;
        boolean rowMajorHeap = b.rowMajor() && b.array != null;
        // Row-major heap B: a task is a group of full panels of one k block, copied row by row so the source is read
        // in 2 KB runs (a panel at a time reads 128 bytes per row at the row stride: a page, and a TLB miss, per row).
        int full = pm.cols() / NR, groups = rowMajorHeap ? (full + PANEL_GROUP - 1) / PANEL_GROUP : 0;
        int perBlock = groups + (panels - (rowMajorHeap ? full : 0));
        int tasks = blocks * perBlock;
        int grain = (long) k * pm.cols() < 32_768 ? tasks : 1;
        Parallel.forRange(0, tasks, grain, (t0, t1) -> {
            Scratch s = SCRATCH.get();
            for (int t = t0; t < t1; t++) {
                int p0 = (t / perBlock) * KC, u = t % perBlock;
                if (u < groups) packFullPanels(b, pm, p0, u * PANEL_GROUP, Math.min(full, (u + 1) * PANEL_GROUP));
                else packPanel(b, pm, p0, (rowMajorHeap ? full : 0) + u - groups, s);
            }
        });
    }

    /** Full panels [j0, j1) of the k block at p0 of a row-major heap B, row by row. */
    private static void packFullPanels(GemmOperand b, PackedMatrix pm, int p0, int j0, int j1) {
        MemorySegment d = pm.data;
        float[] src = b.array;
        int kcb = pm.blockRows(p0), l = GemmKernels.L;
        long base = 4L * pm.panelOffset(p0, j0), stride = 4L * kcb * NR; // full panels of a block are kcb*NR apart
        for (int p = 0; p < kcb; p++) {
            int s = Math.toIntExact(b.index(p0 + p, j0 * NR));
            long o = base + 4L * NR * p;
            for (int j = j0; j < j1; j++, s += NR, o += stride) {
                FloatVector.fromArray(GemmKernels.S, src, s).intoMemorySegment(d, o, GemmKernels.NATIVE);
                FloatVector.fromArray(GemmKernels.S, src, s + l).intoMemorySegment(d, o + 4L * l, GemmKernels.NATIVE);
            }
        }
    }

    /** Rows of a column-major B panel transposed at once (through {@code Scratch.stage}, which stays in L1). */
    private static final int TRANSPOSE_CHUNK = 128;

    /** One panel of the k block at p0 (a partial panel, or any panel of a column-major or off-heap B). */
    private static void packPanel(GemmOperand b, PackedMatrix pm, int p0, int j, Scratch s) {
        MemorySegment d = pm.data;
        float[] run = s.run, stage = s.stage;
        int kcb = pm.blockRows(p0), w = pm.panelWidth(j), j0 = j * NR;
        int real = Math.min(w, pm.cols() - j0);
        long off = 4L * pm.panelOffset(p0, j);
        if (b.rowMajor()) {
            for (int p = 0; p < kcb; p++) {
                long o = off + 4L * w * p;
                b.read(b.index(p0 + p, j0), run, 0, real);
                MemorySegment.copy(run, 0, d, ValueLayout.JAVA_FLOAT, o, real);
                if (real < w) d.asSlice(o + 4L * real, 4L * (w - real)).fill((byte) 0);
            }
            return;
        }
        // Column-major B (a transposed row-major weight): each panel column is a contiguous run along k.
        int pv = 0;
        if (GemmKernels.TRANSPOSE16 && real == w && w % 16 == 0) {
            // 16 x 16 blocks in registers; the rows left over (kcb % 16) go through the staging loop below.
            // A heap F32 B is read in place; any other storage (BF16/F16/F32 memory segments) first has the runs of
            // 16 columns converted into the staging tile, [16][TRANSPOSE_CHUNK], and is transposed from there.
            int whole = kcb / 16 * 16;
            for (int pc = 0; pc < whole; pc += TRANSPOSE_CHUNK) {
                int len = Math.min(TRANSPOSE_CHUNK, whole - pc);
                for (int jb = 0; jb < w; jb += 16) {
                    float[] src = stage;
                    int so = 0, lds = TRANSPOSE_CHUNK;
                    if (b.array != null) {
                        src = b.array;
                        so = Math.toIntExact(b.index(p0 + pc, j0 + jb));
                        lds = b.cs;
                    } else {
                        for (int i = 0; i < 16; i++)
                            b.read(b.index(p0 + pc, j0 + jb + i), stage, i * TRANSPOSE_CHUNK, len);
                    }
                    for (int q = 0; q < len; q += 16)   // column-major: consecutive k are adjacent in either source
                        GemmKernels.transpose16(src, so + q, lds, d, off + 4L * ((pc + q) * w + jb), 4L * w);
                }
            }
            pv = whole;
        }
        // Transpose a chunk of rows into the staging tile, then copy it out: the panel's rows are contiguous.
        for (int pc = pv; pc < kcb; pc += TRANSPOSE_CHUNK) {
            int len = Math.min(TRANSPOSE_CHUNK, kcb - pc);
            for (int jj = 0; jj < w; jj++) {
                if (jj >= real) {
                    for (int p = 0; p < len; p++) stage[p * w + jj] = 0f;
                } else if (b.array != null) {
                    float[] src = b.array;
                    int si = Math.toIntExact(b.index(p0 + pc, j0 + jj));
                    for (int p = 0; p < len; p++) stage[p * w + jj] = src[si + p];
                } else {
                    b.read(b.index(p0 + pc, j0 + jj), run, 0, len);
                    for (int p = 0; p < len; p++) stage[p * w + jj] = run[p];
                }
            }
            MemorySegment.copy(stage, 0, d, ValueLayout.JAVA_FLOAT, off + 4L * w * pc, len * w);
        }
    }

    // ------------------------------------------------------------------------------------------ packing A

    /** Packs rows [i0, i0+mcb) x columns [p0, p0+kcb) of a into MR-row panels: buf[q][p][MR]; rows past m are 0. */
    private static void packA(GemmOperand a, int i0, int mcb, int p0, int kcb, float[] buf, float[] run) {
        for (int q = 0; q * MR < mcb; q++) {
            int base = q * MR * kcb, rowStart = i0 + q * MR, mr = Math.min(MR, mcb - q * MR);
            if (a.colMajor() && !(a.array != null && a.rowMajor())) {
                for (int p = 0; p < kcb; p++) {
                    int o = base + p * MR;
                    a.read(a.index(rowStart, p0 + p), buf, o, mr);
                    for (int i = mr; i < MR; i++) buf[o + i] = 0f;
                }
                continue;
            }
            int pv = 0;
            if (GemmKernels.TRANSPOSE16 && a.array != null && a.rowMajor()) {
                // 16 k at a time through a register transpose (2x faster than the element loop, which is left to
                // the kcb % 16 tail). Its spare lanes spill into the tail or the next panel, both written after.
                int s = Math.toIntExact(a.index(rowStart, p0));
                pv = kcb / 16 * 16;
                for (int p = 0; p < pv; p += 16) GemmKernels.transposeRows(a.array, s + p, a.rs, mr, buf, base + p * MR);
            }
            for (int i = 0; i < MR; i++) {
                if (i >= mr) {
                    for (int p = pv; p < kcb; p++) buf[base + p * MR + i] = 0f;
                } else if (a.array != null) {
                    float[] src = a.array;
                    int s = Math.toIntExact(a.index(rowStart + i, p0));
                    for (int p = pv; p < kcb; p++) buf[base + p * MR + i] = src[s + p];
                } else {
                    a.read(a.index(rowStart + i, p0), run, 0, kcb);
                    for (int p = 0; p < kcb; p++) buf[base + p * MR + i] = run[p];
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------ driver

    /**
     * C[m, n] (+)= A[m, k] · B[k, n], packing B per call one block of NC_PANELS panels at a time, each multiplied
     * right after it is packed (while it is still in cache; the scratch holds k x 1024 floats, not all of B).
     */
    static void multiply(GemmOperand a, GemmOperand b, float[] c, int cOff, int ldc, boolean accumulate) {
        int nc = NC_PANELS * NR;
        if (b.cols <= nc) {
            multiply(a, packScratch(b), c, cOff, ldc, accumulate);
            return;
        }
        for (int j = 0; j < b.cols; j += nc)
            multiply(a, packScratch(b.columns(j, Math.min(nc, b.cols - j))), c, cOff + j, ldc, accumulate);
    }

    /** C[m, n] (+)= A[m, k] · B, with B packed; c is row-major with leading dimension ldc from cOff. */
    static void multiply(GemmOperand a, PackedMatrix b, float[] c, int cOff, int ldc, boolean accumulate) {
        int m = a.rows, k = b.rows(), n = b.cols();
        if (m == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) for (int i = 0; i < m; i++) Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + n, 0f);
            return;
        }
        // Read A in place when n is small (each A element feeds only 2n flops, packing it would double the time)
        // or m is (one row block). With small k but large n packing A is nearly free and the packed kernel's
        // simpler addressing wins.
        boolean inPlaceA = a.heapRowMajor() && (n <= THIN || m <= MR);
        int rowBlocks = (m + MR - 1) / MR, panels = b.panels(), t = Parallel.threads();
        // Split the rows when each thread gets at least two row blocks; otherwise split the B panels.
        boolean splitRows = rowBlocks >= 2 * t || rowBlocks >= panels;
        int units = splitRows ? rowBlocks : panels;
        // Grain: about 2 MFLOP per chunk, so tiny products stay on one thread.
        long flopsPerUnit = 2L * k * (splitRows ? (long) MR * n : (long) NR * m);
        int grain = (int) Math.max(1, Math.min(units, 2_000_000L / Math.max(1, flopsPerUnit)));
        Parallel.forRange(0, units, grain, (u0, u1) -> {
            int r0 = splitRows ? u0 * MR : 0, r1 = splitRows ? Math.min(m, u1 * MR) : m;
            int j0 = splitRows ? 0 : u0, j1 = splitRows ? panels : u1;
            Scratch s = SCRATCH.get();
            if (inPlaceA) inPlace(a, b, c, cOff, ldc, accumulate, r0, r1, j0, j1, s);
            else blocked(a, b, c, cOff, ldc, accumulate, r0, r1, j0, j1, s);
        });
    }

    /** Rows [r0, r1) x panels [j0, j1) of C: per MC x KC block of packed A, every B panel meets every A panel. */
    private static void blocked(GemmOperand a, PackedMatrix b, float[] c, int cOff, int ldc, boolean accumulate,
                                int r0, int r1, int j0, int j1, Scratch s) {
        int k = b.rows(), n = b.cols();
        MemorySegment bd = b.data;
        float[] abuf = s.a, tile = s.tile;
        int blocks = (r1 - r0 + MC - 1) / MC, step = ((r1 - r0 + blocks - 1) / blocks + MR - 1) / MR * MR;
        for (int jc = j0; jc < j1; jc += NC_PANELS) {
            int je = Math.min(j1, jc + NC_PANELS);
            for (int p0 = 0; p0 < k; p0 += KC) {
                int kcb = b.blockRows(p0);
                boolean overwrite = p0 == 0 && !accumulate;
                for (int ic = r0; ic < r1; ic += step) {
                    int mcb = Math.min(step, r1 - ic);
                    packA(a, ic, mcb, p0, kcb, abuf, s.run);
                    for (int j = jc; j < je; j++) {
                        int w = b.panelWidth(j), nr = Math.min(w, n - j * NR);
                        long bOff = 4L * b.panelOffset(p0, j);
                        for (int ir = 0; ir < mcb; ir += MR) {
                            int mr = Math.min(MR, mcb - ir), aOff = ir * kcb, cAt = cOff + (ic + ir) * ldc + j * NR;
                            if (w != NR) {
                                GemmKernels.packedNarrow(abuf, aOff, bd, bOff, kcb, c, cAt, ldc, mr, nr, overwrite, tile);
                            } else if (mr == MR && nr == NR) {
                                GemmKernels.packedWide(abuf, aOff, bd, bOff, kcb, c, cAt, ldc, overwrite);
                            } else {
                                GemmKernels.packedWide(abuf, aOff, bd, bOff, kcb, tile, 0, NR, true);
                                GemmKernels.storeTile(tile, c, cAt, ldc, mr, nr, overwrite, NR);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void inPlace(GemmOperand a, PackedMatrix b, float[] c, int cOff, int ldc, boolean accumulate,
                                int r0, int r1, int j0, int j1, Scratch s) {
        int k = b.rows(), n = b.cols(), lda = a.rs;
        float[] ad = a.array, tile = s.tile;
        MemorySegment bd = b.data;
        int aBase = Math.toIntExact(a.off);
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kcb = b.blockRows(p0);
            boolean overwrite = p0 == 0 && !accumulate;
            for (int i = r0; i < r1; i += MR) {
                int mr = Math.min(MR, r1 - i), aOff = aBase + i * lda + p0, cRow = cOff + i * ldc;
                for (int j = j0; j < j1; j++) {
                    int w = b.panelWidth(j), nr = Math.min(w, n - j * NR);
                    long bOff = 4L * b.panelOffset(p0, j);
                    if (w == NR) GemmKernels.rowsWide(ad, aOff, lda, mr, bd, bOff, kcb, c, cRow + j * NR, ldc, nr, overwrite, tile);
                    else GemmKernels.rowsNarrow(ad, aOff, lda, mr, bd, bOff, kcb, c, cRow + j * NR, ldc, nr, overwrite, tile);
                }
            }
        }
    }
}
