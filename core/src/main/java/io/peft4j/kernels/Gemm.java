package io.peft4j.kernels;

import io.peft4j.tensor.Tensor;

/**
 * Matrix multiply entry points. {@code C[m,n] (+)= A[m,k] · B[k,n]}, where A and B are 2-D tensors of any float
 * dtype (F32, BF16, F16), on the heap or in a memory segment, row-major or column-major (a transposed view of a
 * row-major matrix is column-major: pass {@code w.transpose(0, 1)} to compute {@code x W^T} without copying).
 * C is a dense heap F32 tensor. Dispatches to the Vector API kernel or its scalar twin by {@link KernelMode}.
 */
public final class Gemm {
    private Gemm() {}

    /** C = A·B (or C += A·B when {@code accumulate}). Shapes: A [m,k], B [k,n], C [m,n]. */
    public static void matmul(Tensor a, Tensor b, Tensor c, boolean accumulate) {
        throw new UnsupportedOperationException("Gemm.matmul: not yet implemented");
    }

    /** Packs a frozen B operand ([k,n], any float dtype and layout) once into the kernel's panel layout (F32). */
    public static PackedMatrix pack(Tensor b) {
        throw new UnsupportedOperationException("Gemm.pack: not yet implemented");
    }

    /** C (+)= A·B with a pre-packed B. */
    public static void matmul(Tensor a, PackedMatrix b, Tensor c, boolean accumulate) {
        throw new UnsupportedOperationException("Gemm.matmul(packed): not yet implemented");
    }
}
