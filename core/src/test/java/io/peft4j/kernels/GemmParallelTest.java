package io.peft4j.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** The spin-then-park pool behind the GEMM: coverage, nesting, errors, concurrent callers. */
class GemmParallelTest {
    @Test
    void everyIndexRunsExactlyOnceAcrossManyCalls() {
        int saved = Parallel.threads();
        try {
            for (int threads : new int[] {1, 2, 3, 5}) {
                Parallel.setThreads(threads);
                for (int n : new int[] {1, 2, 7, 100, 1001}) {
                    for (int grain : new int[] {1, 3, 50}) {
                        AtomicIntegerArray hits = new AtomicIntegerArray(n + 10);
                        AtomicInteger calls = new AtomicInteger();
                        Parallel.forRange(10, 10 + n, grain, (from, to) -> {
                            assertTrue(from < to && to - from >= Math.min(grain, n), "chunk [" + from + "," + to + ")");
                            calls.incrementAndGet();
                            for (int i = from; i < to; i++) hits.incrementAndGet(i);
                        });
                        for (int i = 0; i < 10; i++) assertEquals(0, hits.get(i));
                        for (int i = 10; i < 10 + n; i++) assertEquals(1, hits.get(i), "index " + i);
                        assertTrue(calls.get() <= threads, calls.get() + " chunks for " + threads + " threads");
                    }
                }
            }
        } finally {
            Parallel.setThreads(saved);
        }
    }

    @Test
    void emptyRangeRunsNothing() {
        Parallel.forRange(5, 5, 1, (a, b) -> fail("ran on an empty range"));
        Parallel.forRange(5, 2, 1, (a, b) -> fail("ran on a negative range"));
    }

    @Test
    void nestedCallsRunInlineWithoutDeadlock() {
        int saved = Parallel.threads();
        try {
            Parallel.setThreads(2);
            AtomicInteger total = new AtomicInteger();
            Parallel.forRange(0, 4, 1, (a, b) -> {
                for (int i = a; i < b; i++)
                    Parallel.forRange(0, 100, 1, (x, y) -> {
                        Parallel.forRange(x, y, 1, (p, q) -> total.addAndGet(q - p));
                    });
            });
            assertEquals(400, total.get());
        } finally {
            Parallel.setThreads(saved);
        }
    }

    @Test
    void exceptionInAChunkReachesTheCallerAndThePoolSurvives() {
        int saved = Parallel.threads();
        try {
            Parallel.setThreads(2);
            IllegalStateException e = assertThrows(IllegalStateException.class, () ->
                    Parallel.forRange(0, 100, 1, (a, b) -> { if (b == 100) throw new IllegalStateException("boom " + a); }));
            assertTrue(e.getMessage().startsWith("boom"));
            AtomicInteger sum = new AtomicInteger();
            Parallel.forRange(0, 100, 1, (a, b) -> sum.addAndGet(b - a));
            assertEquals(100, sum.get());
        } finally {
            Parallel.setThreads(saved);
        }
    }

    @Test
    void concurrentOutsideCallersAllComplete() throws Exception {
        int saved = Parallel.threads();
        try {
            Parallel.setThreads(2);
            int callers = 4;
            CountDownLatch start = new CountDownLatch(1);
            AtomicInteger total = new AtomicInteger();
            AtomicReference<Throwable> error = new AtomicReference<>();
            Thread[] ts = new Thread[callers];
            for (int t = 0; t < callers; t++) {
                ts[t] = new Thread(() -> {
                    try {
                        start.await();
                        for (int r = 0; r < 200; r++) Parallel.forRange(0, 64, 1, (a, b) -> total.addAndGet(b - a));
                    } catch (Throwable e) {
                        error.set(e);
                    }
                });
                ts[t].start();
            }
            start.countDown();
            for (Thread t : ts) t.join(TimeUnit.SECONDS.toMillis(60));
            assertNull(error.get());
            assertEquals(callers * 200 * 64, total.get());
        } finally {
            Parallel.setThreads(saved);
        }
    }

    @Test
    void setThreadsRejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> Parallel.setThreads(0));
    }
}
