package io.peft4j.bench;

import io.peft4j.kernels.NnKernels;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The dropout kernel and its scalar twin on one thread: forward then backward over one LoRA input, 1024 tokens x
 * 1408 (the 60M training benchmark's largest). Run: {@code java --add-modules jdk.incubator.vector -jar
 * bench/target/peft4j-benchmarks.jar DropoutBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class DropoutBenchmark {
    @Param({"vector", "scalar"})
    public String impl;

    private static final int N = 1024 * 1408;
    private static final int THRESHOLD = (int) Math.ceil(0.05 * (1 << 24));   // p = 0.05
    private static final float SCALE = 1f / 0.95f;

    private NnKernels k;
    private float[] x, y, dx;

    @Setup(Level.Trial)
    public void setup() {
        k = impl.equals("scalar") ? NnKernels.scalar() : NnKernels.vector();
        SplittableRandom rng = new SplittableRandom(1);
        x = new float[N];
        for (int i = 0; i < N; i++) x[i] = (float) rng.nextDouble();
        y = new float[N];
        dx = new float[N];
    }

    @Benchmark
    public float forwardAndBackward() {
        k.dropout(42, 0, THRESHOLD, SCALE, x, 0, y, 0, N);
        k.dropoutBackward(42, 0, THRESHOLD, SCALE, y, 0, dx, 0, N);
        return dx[N - 1];
    }
}
