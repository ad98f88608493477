package io.peft4j.kernels;

/** A B operand [k, n] packed once into the GEMM kernel's panel layout. Immutable. */
public final class PackedMatrix {
    private final int k, n;

    PackedMatrix(int k, int n) { this.k = k; this.n = n; }

    public int rows() { return k; }
    public int cols() { return n; }
}
