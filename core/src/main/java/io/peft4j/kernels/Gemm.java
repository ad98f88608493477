package io.peft4j.kernels;

import io.peft4j.tensor.Tensor;

/**
 * Matrix multiply entry points. {@code C[m,n] (+)= A[m,k] · B[k,n]}, where A and B are 2-D tensors of any float
 * dtype (F32, BF16, F16), on the heap or in a memory segment, row-major or column-major (a transposed view of a
 * row-major matrix is column-major: pass {@code w.transpose(0, 1)} to compute {@code x W^T} without copying);
 * other strides are copied first. C is a dense heap F32 tensor (it may start at a non-zero offset) that shares no
 * storage with A or B. Dispatches to the Vector API kernels or their scalar twin by {@link KernelMode}:
 *
 * <ul>
 *   <li>m &lt;= 4 ({@link Matvec}): B streamed once from its storage, no packing (decode is memory-bound).</li>
 *   <li>n = 16 with a row-major heap F32 A, on CPUs with 512-bit vectors ({@link GemmPairs}): A broadcast two k at
 *       a time, each broadcast feeding two FMAs (LoRA {@code x·A^T} at rank 16).</li>
 *   <li>other n &lt;= 16 with a row-major heap F32 A ({@link GemmDot}): dot products along k.</li>
 *   <li>otherwise ({@link GemmVector}): B packed into panels, a 12 x 2-vector register tile, A packed per MC x KC
 *       block, or read in place for the LoRA shapes (n &lt;= 64 or k &lt;= 64).</li>
 * </ul>
 * All paths run on the {@link Parallel} pool.
 */
public final class Gemm {
    private Gemm() {}

    private static final ThreadLocal<long[]> COUNTS = ThreadLocal.withInitial(() -> new long[3]);   // {calls, multiply-adds, largest C}

    /**
     * What the GEMMs called from one thread cost since {@link #resetThreadCounts()}: calls, multiply-adds
     * ({@code m·n·k} summed) and the largest output ({@code m·n}). For tests and diagnostics (e.g. that a LoRA step
     * never forms an out x in product); per thread so concurrent callers do not mix.
     */
    public record Counts(long calls, long multiplyAdds, long largestOutput) {}

    /** The calling thread's GEMM counts. */
    public static Counts threadCounts() {
        long[] c = COUNTS.get();
        return new Counts(c[0], c[1], c[2]);
    }

    /** Zeroes the calling thread's GEMM counts. */
    public static void resetThreadCounts() { java.util.Arrays.fill(COUNTS.get(), 0L); }

    private static void count(long m, long n, long k) {
        long[] c = COUNTS.get();
        c[0]++;
        c[1] += m * n * k;
        if (m * n > c[2]) c[2] = m * n;
    }

    /** C = A·B (or C += A·B when {@code accumulate}). Shapes: A [m,k], B [k,n], C [m,n]. */
    public static void matmul(Tensor a, Tensor b, Tensor c, boolean accumulate) {
        matmul(a, b, c, accumulate, KernelMode.current());
    }

    /** {@link #matmul(Tensor, Tensor, Tensor, boolean)} with an explicit implementation (tests, benchmarks). */
    static void matmul(Tensor a, Tensor b, Tensor c, boolean accumulate, KernelMode mode) {
        GemmOperand ao = GemmOperand.of(a, "A"), bo = GemmOperand.of(b, "B");
        if (bo.rows != ao.cols)
            throw new IllegalArgumentException("Gemm: inner dimensions differ: A " + a.describe() + " · B " + b.describe());
        float[] cd = checkC(c, ao.rows, bo.cols, a, b);
        count(ao.rows, bo.cols, ao.cols);
        int cOff = c.dataOffset(), ldc = bo.cols;
        if (ao.rows == 0 || bo.cols == 0) return;
        if (ao.cols == 0) {   // an empty sum: C = 0, or C unchanged when accumulating
            if (!accumulate) java.util.Arrays.fill(cd, cOff, cOff + ao.rows * ldc, 0f);
            return;
        }
        if (mode == KernelMode.SCALAR) {
            GemmScalar.multiply(ao, bo, cd, cOff, ldc, accumulate);
        } else if (ao.rows <= Matvec.MAX_M) {
            Tensor ad = a.contiguous();
            Matvec.multiply(ad.data(), ad.dataOffset(), ao.cols, ao.rows, bo, cd, cOff, ldc, accumulate);
        } else if (GemmPairs.AVAILABLE && bo.cols == GemmPairs.N && ao.heapRowMajor()) {
            GemmPairs.multiply(ao, GemmPairs.relayoutB(bo), ao.cols, cd, cOff, ldc, accumulate);
        } else if (bo.cols <= GemmDot.MAX_N && ao.heapRowMajor()) {
            GemmDot.multiply(ao, GemmDot.transposeB(bo), ao.cols, bo.cols, cd, cOff, ldc, accumulate);
        } else {
            GemmVector.multiply(ao, bo, cd, cOff, ldc, accumulate);
        }
    }

    /**
     * Packs a frozen B operand ([k,n], any float dtype and layout) once into the kernel's panel layout (F32):
     * {@code k * ceil(n/32) * 32} floats. Pack base weights at load time; the per-call packing then disappears.
     */
    public static PackedMatrix pack(Tensor b) {
        return GemmVector.pack(GemmOperand.of(b, "B"));
    }

    /** C (+)= A·B with a pre-packed B. Shapes: A [m,k], B [k,n], C [m,n]. */
    public static void matmul(Tensor a, PackedMatrix b, Tensor c, boolean accumulate) {
        matmul(a, b, c, accumulate, KernelMode.current());
    }

    /** {@link #matmul(Tensor, PackedMatrix, Tensor, boolean)} with an explicit implementation. */
    static void matmul(Tensor a, PackedMatrix b, Tensor c, boolean accumulate, KernelMode mode) {
        GemmOperand ao = GemmOperand.of(a, "A");
        if (b.rows() != ao.cols)
            throw new IllegalArgumentException("Gemm: inner dimensions differ: A " + a.describe() + " · packed B " + b);
        float[] cd = checkC(c, ao.rows, b.cols(), a, null);
        count(ao.rows, b.cols(), ao.cols);
        if (mode == KernelMode.SCALAR) GemmScalar.multiply(ao, b, cd, c.dataOffset(), b.cols(), accumulate);
        else GemmVector.multiply(ao, b, cd, c.dataOffset(), b.cols(), accumulate);
    }

    private static float[] checkC(Tensor c, int m, int n, Tensor a, Tensor b) {
        if (c.rank() != 2 || c.dim(0) != m || c.dim(1) != n)
            throw new IllegalArgumentException("Gemm: C must be [" + m + ", " + n + "] for A " + a.describe()
                    + (b != null ? " · B " + b.describe() : "") + ", got " + c.describe());
        if (!c.isDense())
            throw new IllegalArgumentException("Gemm: C must be a contiguous heap F32 tensor, got " + c.describe());
        float[] cd = c.data();
        if (a.storage().isHeap() && a.storage().array() == cd)
            throw new IllegalArgumentException("Gemm: C " + c.describe() + " shares storage with A " + a.describe());
        if (b != null && b.storage().isHeap() && b.storage().array() == cd)
            throw new IllegalArgumentException("Gemm: C " + c.describe() + " shares storage with B " + b.describe());
        return cd;
    }
}
