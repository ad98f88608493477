package io.peft4j.kernels;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The one thread pool of the process, sized to the cores ({@code -Dpeft4j.threads=N} overrides, {@link #setThreads}
 * changes it at run time). Kernels split their largest independent dimension into ranges and run them here.
 *
 * <p>Why not an {@code ExecutorService}: a hand-off through a queue and a {@code Future} costs tens of microseconds,
 * ~30% of a 512x768x16 GEMM. Here each worker spins on a volatile job slot for a short while after its last job
 * (so back-to-back kernels hand off in well under a microsecond), then parks. The chunks of a job are claimed from
 * an atomic counter by the caller and the workers alike, so a worker that the OS has not scheduled yet never holds
 * the caller up: the caller simply runs that chunk too.
 *
 * <p>A call from inside a parallel body (a worker, or the caller while it runs its own chunks) and a call from a
 * second outside thread while the pool is busy both run inline, so nesting never deadlocks.
 */
public final class Parallel {
    /** The body of a parallel loop over the index range [from, to). */
    @FunctionalInterface
    public interface RangeBody { void run(int from, int to); }

    private static final int MAX_WORKERS = 256;
    /** How long an idle worker (or the waiting caller) spins before parking. */
    private static final long SPIN_NANOS = Long.getLong("peft4j.spinMicros", 200L) * 1000L;

    private static volatile int threads = Math.max(1, Math.min(MAX_WORKERS,
            Integer.getInteger("peft4j.threads", Runtime.getRuntime().availableProcessors())));

    private static final Worker[] WORKERS = new Worker[MAX_WORKERS];   // [threads - 1], started lazily
    private static int started;                                        // guarded by Parallel.class
    private static final AtomicBoolean BUSY = new AtomicBoolean();
    private static volatile Job current;

    private Parallel() {}

    /** The number of threads a parallel loop may use, the caller included. */
    public static int threads() { return threads; }

    /** Changes the number of threads used from now on (benchmarks, tests); extra workers stay parked. */
    public static void setThreads(int n) {
        if (n < 1 || n > MAX_WORKERS) throw new IllegalArgumentException("threads must be in [1, " + MAX_WORKERS + "], got " + n);
        threads = n;
    }

    /**
     * Runs {@code body} over [start, end) split into at most {@link #threads()} contiguous chunks of at least
     * {@code grain} indices each (the last chunk may be shorter when the range is not a multiple). Runs inline when
     * one chunk suffices, when called from inside a parallel body, or when another thread holds the pool.
     * An exception thrown by any chunk is rethrown here after all chunks finished.
     */
    public static void forRange(int start, int end, int grain, RangeBody body) {
        int n = end - start;
        if (n <= 0) return;
        int t = threads;
        int chunks = Math.min(t, Math.max(1, n / Math.max(1, grain)));
        if (chunks <= 1 || Thread.currentThread() instanceof Worker || !BUSY.compareAndSet(false, true)) {
            body.run(start, end);
            return;
        }
        try {
            ensureWorkers(chunks - 1);
            Job job = new Job(body, start, n, chunks, Thread.currentThread());
            current = job;
            for (int w = 0; w < chunks - 1; w++) {
                Worker wk = WORKERS[w];
                if (wk.parked) LockSupport.unpark(wk);
            }
            job.runChunks();
            job.awaitDone();
            current = null;   // drop the reference so the body's captured arrays can be collected
            if (job.error != null) rethrow(job.error);
        } finally {
            BUSY.set(false);
        }
    }

    private static void rethrow(Throwable e) {
        if (e instanceof RuntimeException re) throw re;
        if (e instanceof Error err) throw err;
        throw new RuntimeException(e);
    }

    private static synchronized void ensureWorkers(int need) {
        while (started < need) {
            Worker w = new Worker(started);
            WORKERS[started++] = w;
            w.start();
        }
    }

    /** One parallel loop: its chunks are claimed through {@code next}. */
    private static final class Job {
        final RangeBody body;
        final int start, n, chunks;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile boolean callerParked;
        volatile Throwable error;

        Job(RangeBody body, int start, int n, int chunks, Thread caller) {
            this.body = body; this.start = start; this.n = n; this.chunks = chunks; this.caller = caller;
        }

        void runChunks() {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                int from = start + (int) ((long) n * c / chunks), to = start + (int) ((long) n * (c + 1) / chunks);
                try {
                    body.run(from, to);
                } catch (Throwable e) {
                    if (error == null) error = e;
                }
                // Dekker-style hand-shake with awaitDone: the caller sets callerParked before re-reading done.
                if (done.incrementAndGet() == chunks && callerParked) LockSupport.unpark(caller);
            }
        }

        void awaitDone() {
            long deadline = System.nanoTime() + SPIN_NANOS;
            int spins = 0;
            while (done.get() < chunks) {
                if ((++spins & 255) != 0 || System.nanoTime() < deadline) { Thread.onSpinWait(); continue; }
                callerParked = true;
                if (done.get() < chunks) LockSupport.parkNanos(this, 100_000L);
                callerParked = false;
            }
        }
    }

    private static final class Worker extends Thread {
        volatile boolean parked;

        Worker(int index) {
            super("peft4j-worker-" + index);
            setDaemon(true);
        }

        @Override
        public void run() {
            Job last = null;
            while (true) {
                Job j = current;
                if (j == null || j == last) {
                    j = waitForJob(last);
                }
                last = j;
                if (j != null) j.runChunks();
            }
        }

        /** Spins for a while on the job slot, then parks until forRange unparks this worker. */
        private Job waitForJob(Job last) {
            long deadline = System.nanoTime() + SPIN_NANOS;
            int spins = 0;
            while (true) {
                Job j = current;
                if (j != null && j != last) return j;
                if ((++spins & 255) != 0 || System.nanoTime() < deadline) { Thread.onSpinWait(); continue; }
                parked = true;
                j = current;
                if (j == null || j == last) LockSupport.park(this);
                parked = false;
                deadline = System.nanoTime() + SPIN_NANOS;
            }
        }
    }
}
