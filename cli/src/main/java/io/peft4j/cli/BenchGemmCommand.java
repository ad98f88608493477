package io.peft4j.cli;

import io.peft4j.kernels.Gemm;
import io.peft4j.kernels.PackedMatrix;
import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code peft4j bench gemm}: GFLOP/s of {@link Gemm#matmul} on a list of shapes, best and median of several timed
 * runs after a warm-up. {@code tools/bench_gemm_numpy.py} prints the same JSON for numpy (OpenBLAS), so the two can
 * be run back to back and compared row by row.
 */
@Command(name = "gemm", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"GEMM GFLOP/s: C[m,n] = A[m,k] · B[k,n], F32 unless a variant says otherwise.",
                "Shape syntax MxKxN[@variant]; variants: f32 (B row-major, packed per call, the default), "
                        + "nt (B = W^T, W [n,k] row-major), packed (B packed once with Gemm.pack), "
                        + "bf16 (B = W^T, W BF16 in a memory segment), bf16packed (that W packed once)."})
public final class BenchGemmCommand implements Callable<Integer> {
    static final String DEFAULT_SHAPES = "1024x1024x1024,512x768x768,512x2048x5632,512x768x16,512x16x768,"
            + "512x768x768@bf16packed,1x2048x5632@bf16";

    @Option(names = "--shapes", paramLabel = "MxKxN[@variant],...", defaultValue = DEFAULT_SHAPES,
            description = "shapes to run (default ${DEFAULT-VALUE})")
    String shapes;

    @Option(names = "--threads", paramLabel = "N", description = "threads (default: the cores, or -Dpeft4j.threads)")
    Integer threads;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "10", description = "timed runs per shape (default ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--min-time", paramLabel = "SECONDS", defaultValue = "0.2",
            description = "each timed run repeats the product for at least this long (default ${DEFAULT-VALUE})")
    double minTime;

    @Option(names = "--json", description = "print one JSON object {\"results\":[...]} on stdout (logs go to stderr)")
    boolean json;

    /** One parsed shape. */
    record Shape(int m, int k, int n, String variant) {
        static Shape parse(String s) {
            String[] parts = s.trim().split("@", 2);
            String variant = parts.length > 1 ? parts[1].trim().toLowerCase(Locale.ROOT) : "f32";
            if (!List.of("f32", "nt", "packed", "bf16", "bf16packed").contains(variant))
                throw new IllegalArgumentException("unknown variant '" + variant + "' in shape '" + s + "'");
            String[] d = parts[0].toLowerCase(Locale.ROOT).split("x");
            if (d.length != 3) throw new IllegalArgumentException("shape '" + s + "' is not MxKxN");
            try {
                int m = Integer.parseInt(d[0]), k = Integer.parseInt(d[1]), n = Integer.parseInt(d[2]);
                if (m < 1 || k < 1 || n < 1) throw new IllegalArgumentException("shape '" + s + "' has a dimension < 1");
                return new Shape(m, k, n, variant);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("shape '" + s + "' is not MxKxN with integer sizes");
            }
        }

        String label() { return m + "x" + k + "x" + n + (variant.equals("f32") ? "" : "@" + variant); }
    }

    record Result(Shape shape, double best, double median, double gbps) {}

    @Override
    public Integer call() {
        if (runs < 1) throw new IllegalArgumentException("--runs must be >= 1, got " + runs);
        if (threads != null) Parallel.setThreads(threads);
        List<Shape> list = new ArrayList<>();
        for (String s : shapes.split(",")) if (!s.isBlank()) list.add(Shape.parse(s));
        PrintStream log = System.err;
        log.printf(Locale.ROOT, "peft4j bench gemm: %d threads, %d runs of >= %.2f s per shape, vector species %s%n",
                Parallel.threads(), runs, minTime, jdk.incubator.vector.FloatVector.SPECIES_PREFERRED);
        List<Result> results = new ArrayList<>();
        for (Shape s : list) {
            Result r = run(s);
            results.add(r);
            log.printf(Locale.ROOT, "%-24s best %8.1f GFLOP/s  median %8.1f%s%n", s.label(), r.best, r.median,
                    r.gbps > 0 ? String.format(Locale.ROOT, "  (B streamed at %.1f GB/s)", r.gbps) : "");
        }
        if (json) System.out.println(toJson(results));
        else {
            System.out.printf(Locale.ROOT, "%-24s %10s %10s%n", "shape (MxKxN)", "GFLOP/s", "median");
            for (Result r : results) System.out.printf(Locale.ROOT, "%-24s %10.1f %10.1f%n", r.shape.label(), r.best, r.median);
        }
        return 0;
    }

    private Result run(Shape s) {
        Tensor a = Tensor.uniform(1, -1, 1, s.m, s.k);
        Tensor c = Tensor.zeros(s.m, s.n);
        Tensor b;
        long bBytes;
        switch (s.variant) {
            case "nt" -> { b = Tensor.uniform(2, -1, 1, s.n, s.k).transpose(0, 1); bBytes = 4L * s.k * s.n; }
            case "bf16", "bf16packed" -> {
                MemorySegment seg = Arena.ofAuto().allocate(2L * s.k * s.n, 64);
                Tensor w = Tensor.ofSegment(seg, DType.BF16, s.n, s.k);
                Tensor src = Tensor.uniform(2, -1, 1, s.n, s.k);
                float[] d = src.data();
                for (int i = 0; i < d.length; i++) seg.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, DType.floatToBf16(d[i]));
                b = w.transpose(0, 1);
                bBytes = 2L * s.k * s.n;
            }
            default -> { b = Tensor.uniform(2, -1, 1, s.k, s.n); bBytes = 4L * s.k * s.n; }
        }
        PackedMatrix packed = s.variant.endsWith("packed") ? Gemm.pack(b) : null;
        Runnable op = packed != null ? () -> Gemm.matmul(a, packed, c, false) : () -> Gemm.matmul(a, b, c, false);
        double flops = 2.0 * s.m * s.k * s.n;
        // Warm-up: until the kernels are C2-compiled (Vector API code is ~100x slower before), the pool has
        // started and pages are touched: at least 1 s (or 3 run lengths) and 20 products, then until two
        // successive 0.1 s windows agree within 5% (at most 5 s more): on 2 cores a late C2 compilation can
        // otherwise leave the first shape of a list measured at a quarter of its speed.
        long warmEnd = System.nanoTime() + (long) (Math.max(1.0, 3 * minTime) * 1e9);
        int reps = 0;
        while (System.nanoTime() < warmEnd || reps < 20) { op.run(); reps++; }
        long settleEnd = System.nanoTime() + 5_000_000_000L;
        double previous = 0;
        while (System.nanoTime() < settleEnd) {
            long w = System.nanoTime();
            int n = 0;
            do { op.run(); n++; } while (System.nanoTime() - w < 100_000_000L);
            double rate = n / ((System.nanoTime() - w) / 1e9);
            if (previous > 0 && Math.abs(rate - previous) <= 0.05 * previous) break;
            previous = rate;
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < 5; i++) op.run();
        double perOp = (System.nanoTime() - t0) / 1e9 / 5;
        int inner = (int) Math.max(1, Math.min(1_000_000, minTime / Math.max(1e-9, perOp)));
        double[] gflops = new double[runs];
        for (int r = 0; r < runs; r++) {
            long t = System.nanoTime();
            for (int i = 0; i < inner; i++) op.run();
            double sec = (System.nanoTime() - t) / 1e9 / inner;
            gflops[r] = flops / sec / 1e9;
        }
        double[] sorted = gflops.clone();
        Arrays.sort(sorted);
        double best = sorted[runs - 1], median = runs % 2 == 1 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2;
        // Decode (m small) is memory-bound: report how fast B's bytes went by at the best time.
        double gbps = s.m <= 4 && packed == null ? bBytes / (flops / (best * 1e9)) / 1e9 : 0;
        return new Result(s, best, median, gbps);
    }

    private String toJson(List<Result> results) {
        StringBuilder sb = new StringBuilder("{\"threads\":").append(Parallel.threads()).append(",\"results\":[");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            if (i > 0) sb.append(',');
            sb.append(String.format(Locale.ROOT, "{\"m\":%d,\"k\":%d,\"n\":%d,\"variant\":\"%s\",\"gflops\":%.2f,\"median_gflops\":%.2f",
                    r.shape.m, r.shape.k, r.shape.n, r.shape.variant, r.best, r.median));
            if (r.gbps > 0) sb.append(String.format(Locale.ROOT, ",\"b_gbps\":%.2f", r.gbps));
            sb.append('}');
        }
        return sb.append("]}").toString();
    }
}
