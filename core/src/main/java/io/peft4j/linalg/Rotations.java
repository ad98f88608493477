package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;

/**
 * Givens rotations applied to the rows of a row-major matrix that holds singular or eigen vectors as rows
 * (transposed storage, so each rotation streams two contiguous rows). The QR sweeps of {@link Svd} and
 * {@link SymmetricEigen} record their rotations on a small bidiagonal/tridiagonal matrix in O(n) and then apply the
 * whole chain here, split over column ranges across threads: every chunk replays the same chain on its columns, so
 * the result does not depend on the thread count.
 *
 * <p>Buffering many sweeps and replaying them on cache-sized column blocks was tried and measured (n = 2048,
 * 100 sweeps, one thread, CPU time): no faster than one sweep at a time (0.6 s both with 256-1024-column blocks,
 * 1.5x slower with 16-64), since the two streamed rows are prefetched well; so the simple form stays.
 */
final class Rotations {
    private Rotations() {}

    /** Rows a and b of {@code x} (row length {@code len}): {@code x_a <- c x_a + s x_b, x_b <- -s x_a + c x_b}. */
    static void rot(double[] x, int len, int a, int b, double c, double s) {
        int oa = a * len, ob = b * len;
        for (int j = 0; j < len; j++) {
            double xa = x[oa + j], xb = x[ob + j];
            x[oa + j] = c * xa + s * xb;
            x[ob + j] = c * xb - s * xa;
        }
    }

    /**
     * Applies {@link #rot} to row pairs {@code (lo + t, lo + t + 1)} with {@code (c[t], s[t])} for
     * {@code t = 0 .. count - 1}, in that order.
     */
    static void chain(double[] x, int len, int lo, int count, double[] c, double[] s) {
        if (x == null || count <= 0 || len == 0) return;
        int grain = (int) Math.max(16, Dense.PARALLEL_FLOPS / (6L * count));
        Parallel.forRange(0, len, grain, (from, to) -> {
            for (int t = 0; t < count; t++) {
                double ct = c[t], st = s[t];
                if (st == 0 && ct == 1) continue;
                int oa = (lo + t) * len, ob = oa + len;
                for (int j = from; j < to; j++) {
                    double xa = x[oa + j], xb = x[ob + j];
                    x[oa + j] = ct * xa + st * xb;
                    x[ob + j] = ct * xb - st * xa;
                }
            }
        });
    }
}
