package io.peft4j.autograd;

import io.peft4j.tensor.Tensor;

import java.util.List;

/**
 * Differentiable tensor operations: matrix products, broadcasting arithmetic, reductions, shape ops, gathers.
 * Every op computes its forward with the kernels and, when {@link Tape#tracking} holds, records its backward.
 * Inputs may be any layout; outputs are dense heap F32. Gradients flow only into inputs that require them:
 * a frozen weight costs no gradient work and gets no buffer.
 */
public final class TensorOps {
    private TensorOps() {}

    private static UnsupportedOperationException todo(String op) { return new UnsupportedOperationException("TensorOps." + op + ": not yet implemented"); }

    // ---- products
    /** a [m,k] · b [k,n] -> [m,n]; a or b may be transposed views. */
    public static Tensor matmul(Tensor a, Tensor b) { throw todo("matmul"); }
    /** Batched product over equal (or size-1, broadcast) leading dims: a [..., m, k] · b [..., k, n] -> [..., m, n]. */
    public static Tensor bmm(Tensor a, Tensor b) { throw todo("bmm"); }
    /** y = x W^T + bias: x [..., in], W [out, in] (any float dtype), bias [out] or null -> [..., out]. */
    public static Tensor linear(Tensor x, Tensor w, Tensor bias) { throw todo("linear"); }

    // ---- broadcasting arithmetic (numpy rules)
    public static Tensor add(Tensor a, Tensor b) { throw todo("add"); }
    public static Tensor sub(Tensor a, Tensor b) { throw todo("sub"); }
    public static Tensor mul(Tensor a, Tensor b) { throw todo("mul"); }
    public static Tensor div(Tensor a, Tensor b) { throw todo("div"); }
    public static Tensor scale(Tensor a, float s) { throw todo("scale"); }

    // ---- reductions
    /** Sum over {@code axes} (all axes when empty). */
    public static Tensor sum(Tensor a, boolean keepDims, int... axes) { throw todo("sum"); }
    public static Tensor mean(Tensor a, boolean keepDims, int... axes) { throw todo("mean"); }

    // ---- shape
    public static Tensor reshape(Tensor a, int... shape) { throw todo("reshape"); }
    public static Tensor transpose(Tensor a, int d0, int d1) { throw todo("transpose"); }
    public static Tensor permute(Tensor a, int... perm) { throw todo("permute"); }
    public static Tensor slice(Tensor a, int dim, int start, int end) { throw todo("slice"); }
    public static Tensor concat(List<Tensor> parts, int dim) { throw todo("concat"); }

    // ---- gathers
    /** Rows of {@code weight} [V, d] for {@code ids} -> [ids.length, d]; backward scatter-adds into weight. */
    public static Tensor embedding(Tensor weight, int[] ids) { throw todo("embedding"); }
}
