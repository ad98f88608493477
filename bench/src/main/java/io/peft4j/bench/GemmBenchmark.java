package io.peft4j.bench;

import io.peft4j.kernels.Gemm;
import io.peft4j.kernels.PackedMatrix;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

/**
 * JMH twin of {@code peft4j bench gemm}: average time of one {@code C = A·B} per shape. GFLOP/s = 2·m·k·n / time.
 * Run: {@code java --add-modules jdk.incubator.vector -jar bench/target/peft4j-benchmarks.jar GemmBenchmark
 * -p shape=512x768x16} ({@code -Dpeft4j.threads=N} via {@code -jvmArgsAppend}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmBenchmark {
    /** MxKxN. */
    @Param({"1024x1024x1024", "512x768x768", "512x2048x5632", "512x768x16", "512x16x768"})
    public String shape;

    /** f32: B row-major F32; nt: B = W^T; bf16packed: W in a BF16 segment, packed once; bf16: that W, unpacked. */
    @Param({"f32"})
    public String variant;

    private Tensor a, b, c;
    private PackedMatrix packed;

    @Setup(Level.Trial)
    public void setup() {
        String[] d = shape.split("x");
        int m = Integer.parseInt(d[0]), k = Integer.parseInt(d[1]), n = Integer.parseInt(d[2]);
        a = Tensor.uniform(1, -1, 1, m, k);
        c = Tensor.zeros(m, n);
        switch (variant) {
            case "f32" -> b = Tensor.uniform(2, -1, 1, k, n);
            case "nt" -> b = Tensor.uniform(2, -1, 1, n, k).transpose(0, 1);
            case "bf16", "bf16packed" -> {
                MemorySegment seg = Arena.ofAuto().allocate(2L * k * n, 64);
                float[] w = Tensor.uniform(2, -1, 1, n, k).data();
                for (int i = 0; i < w.length; i++) seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, DType.floatToBf16(w[i]));
                b = Tensor.ofSegment(seg, DType.BF16, n, k).transpose(0, 1);
            }
            default -> throw new IllegalArgumentException("unknown variant " + variant);
        }
        packed = variant.endsWith("packed") ? Gemm.pack(b) : null;
    }

    @Benchmark
    public Tensor matmul() {
        if (packed != null) Gemm.matmul(a, packed, c, false);
        else Gemm.matmul(a, b, c, false);
        return c;
    }
}
