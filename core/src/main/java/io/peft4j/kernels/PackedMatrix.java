package io.peft4j.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A B operand [k, n] packed once into the GEMM kernel's panel layout (F32). Immutable after {@link Gemm#pack}.
 *
 * <p>Layout: k is cut into blocks of {@link #kc()} rows (the last may be shorter); inside a block of {@code kcb}
 * rows, column panel {@code j} (columns {@code [j*NR, j*NR + w)}) holds {@code kcb} rows of {@code w} floats, row
 * after row, where {@code w} is NR, or NR/2 for a last panel that narrow (so the kernel wastes no lanes on it).
 * Columns past n inside a panel are zero. Each panel starts {@code kcb * NR} floats after the previous one.
 *
 * <p>The panels live in native memory aligned to 64 bytes, so every vector row the kernel loads is one cache line.
 * A heap {@code float[]} cannot be aligned (its data starts 16 bytes into a 4 MB-aligned region when it is large),
 * and there every 64-byte load straddles two lines: 4-8% of a large product.
 */
public final class PackedMatrix {
    private final int k, n;
    private final int kc;          // rows per k block
    private final int nr;          // panel width (2 vectors)
    private final int panels;      // ceil(n / nr)
    final MemorySegment data;      // [blocks][panels][kcb][w] F32, native, 64-byte aligned

    /** A packed matrix over {@code buffer} (at least {@link #size} floats; reused scratch), or fresh memory if null. */
    PackedMatrix(int k, int n, int kc, int nr, MemorySegment buffer) {
        this.k = k;
        this.n = n;
        this.kc = Math.max(1, kc);
        this.nr = nr;
        this.panels = (n + nr - 1) / nr;
        this.data = buffer != null ? buffer : GemmKernels.alignedFloats(size(k, n, nr));
    }

    /** Floats needed to pack a [k, n] matrix with panels of nr columns. */
    static long size(int k, int n, int nr) { return (long) k * ((n + nr - 1) / nr) * nr; }

    /** Rows of the logical matrix (k). */
    public int rows() { return k; }

    /** Columns of the logical matrix (n). */
    public int cols() { return n; }

    /** Rows per k block. */
    int kc() { return kc; }

    int nr() { return nr; }

    int panels() { return panels; }

    /** Bytes held by the packed panels. */
    public long bytes() { return 4L * size(k, n, nr); }

    /** Row count of k block starting at row {@code p0}. */
    int blockRows(int p0) { return Math.min(kc, k - p0); }

    /** Width of panel {@code j}: NR, or NR/2 when the last panel has at most NR/2 real columns. */
    int panelWidth(int j) {
        int real = Math.min(nr, n - j * nr);
        return real <= nr / 2 && nr % 2 == 0 ? nr / 2 : nr;
    }

    /** Offset in floats in {@link #data} of panel {@code j} of the k block starting at row {@code p0}. */
    int panelOffset(int p0, int j) {
        return Math.toIntExact((long) p0 * panels * nr + (long) j * blockRows(p0) * nr);
    }

    /** Element (p, j) of the logical matrix; slow, for the scalar twin and tests. */
    public float get(int p, int j) {
        if (p < 0 || p >= k || j < 0 || j >= n)
            throw new IndexOutOfBoundsException("(" + p + ", " + j + ") outside packed matrix [" + k + ", " + n + "]");
        int p0 = p / kc * kc, panel = j / nr;
        return data.getAtIndex(ValueLayout.JAVA_FLOAT, panelOffset(p0, panel) + (long) (p - p0) * panelWidth(panel) + (j - panel * nr));
    }

    @Override
    public String toString() { return "PackedMatrix[" + k + ", " + n + "] (kc " + kc + ", panel " + nr + ")"; }
}
