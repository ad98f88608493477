package io.peft4j.kernels;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;

/**
 * The one thread pool of the process, sized to the cores ({@code -Dpeft4j.threads=N} overrides).
 * Kernels split their largest independent dimension into ranges and run them here.
 */
public final class Parallel {
    /** The body of a parallel loop over the index range [from, to). */
    @FunctionalInterface
    public interface RangeBody { void run(int from, int to); }

    private static final int THREADS = Integer.getInteger("peft4j.threads", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(Math.max(1, THREADS));

    private Parallel() {}

    public static int threads() { return THREADS; }

    /**
     * Runs {@code body} over [start, end) split into at most {@link #threads()} contiguous chunks of at least
     * {@code grain} indices each; the calling thread runs the first chunk. Runs inline when one chunk suffices.
     */
    public static void forRange(int start, int end, int grain, RangeBody body) {
        int n = end - start;
        if (n <= 0) return;
        int chunks = Math.min(THREADS, Math.max(1, n / Math.max(1, grain)));
        if (chunks <= 1 || (Thread.currentThread() instanceof java.util.concurrent.ForkJoinWorkerThread w && w.getPool() == POOL)) { body.run(start, end); return; }
        List<Future<?>> futures = new ArrayList<>(chunks - 1);
        for (int c = 1; c < chunks; c++) {
            int from = start + (int) ((long) n * c / chunks), to = start + (int) ((long) n * (c + 1) / chunks);
            futures.add(POOL.submit(() -> body.run(from, to)));
        }
        body.run(start, start + (int) ((long) n / chunks));
        for (Future<?> f : futures) {
            try { f.get(1, TimeUnit.HOURS); }
            catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof RuntimeException re) throw re;
                if (e.getCause() instanceof Error err) throw err;
                throw new RuntimeException(e.getCause());
            } catch (Exception e) { throw new RuntimeException(e); }
        }
    }
}
