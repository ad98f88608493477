package io.peft4j.autograd;

import io.peft4j.kernels.Elementwise;
import io.peft4j.kernels.Elementwise.Op;
import io.peft4j.kernels.Gemm;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * Differentiable tensor operations: matrix products, broadcasting arithmetic, reductions, shape ops, gathers.
 * Every op computes its forward with the kernels and, when {@link Tape#tracking} holds, records its backward.
 * Inputs may be any layout; outputs are dense heap F32, except the shape ops (reshape of a contiguous tensor,
 * transpose, permute, slice), which return views sharing the input's storage. Gradients flow only into inputs that
 * require them: a frozen weight costs no gradient work and gets no buffer. A backward step whose output received
 * no gradient does nothing.
 */
public final class TensorOps {
    private TensorOps() {}

    private static final Elementwise K = Elementwise.get();

    // ============================================================================================ products

    /** a [m,k] · b [k,n] -> [m,n]; a or b may be transposed views, of any float dtype. */
    public static Tensor matmul(Tensor a, Tensor b) {
        if (a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(0))
            throw new IllegalArgumentException("matmul: needs a [m,k] and b [k,n], got a " + a.describe() + " and b " + b.describe());
        Tensor c = Tensor.zeros(a.dim(0), b.dim(1));
        gemm(a, b, c, false);
        return Tape.record(c, () -> {
            Tensor g = c.grad();
            if (g == null) return;
            if (a.requiresGrad()) gemm(g, b.transpose(0, 1), a.gradBuffer(), true);   // dA = dC · B^T
            if (b.requiresGrad()) gemm(a.transpose(0, 1), g, b.gradBuffer(), true);   // dB = A^T · dC
        }, a, b);
    }

    /**
     * Batched product over equal (or size-1, broadcast) leading dims: a [..., m, k] · b [..., k, n] -> [..., m, n].
     * Batch dims follow numpy broadcasting (missing leading dims count as 1); a broadcast operand is never copied,
     * and its gradient sums over the batches that shared it.
     */
    public static Tensor bmm(Tensor a, Tensor b) {
        if (a.rank() < 2 || b.rank() < 2 || a.dim(-1) != b.dim(-2))
            throw new IllegalArgumentException("bmm: needs a [..., m, k] and b [..., k, n], got a " + a.describe() + " and b " + b.describe());
        int m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
        int[] aBatch = Arrays.copyOf(a.shape(), a.rank() - 2), bBatch = Arrays.copyOf(b.shape(), b.rank() - 2);
        int[] batch = Broadcast.shape("bmm (batch dims)", aBatch, bBatch);
        int count = Math.toIntExact(Tensor.numel(batch));
        long[] aOff = batchOffsets(batch, aBatch, Arrays.copyOf(a.strides(), aBatch.length), a.offset());
        long[] bOff = batchOffsets(batch, bBatch, Arrays.copyOf(b.strides(), bBatch.length), b.offset());
        int[] outShape = Arrays.copyOf(batch, batch.length + 2);
        outShape[batch.length] = m;
        outShape[batch.length + 1] = n;
        Tensor c = Tensor.zeros(outShape);
        for (int i = 0; i < count; i++)
            gemm(matrix(a, aOff[i], m, k), matrix(b, bOff[i], k, n), matrix(c, (long) i * m * n, m, n), false);
        return Tape.record(c, () -> {
            Tensor g = c.grad();
            if (g == null) return;
            Tensor ga = a.requiresGrad() ? a.gradBuffer() : null, gb = b.requiresGrad() ? b.gradBuffer() : null;
            long[] gaOff = ga == null ? null : batchOffsets(batch, aBatch, Arrays.copyOf(ga.strides(), aBatch.length), 0);
            long[] gbOff = gb == null ? null : batchOffsets(batch, bBatch, Arrays.copyOf(gb.strides(), bBatch.length), 0);
            for (int i = 0; i < count; i++) {
                Tensor gi = matrix(g, (long) i * m * n, m, n);
                if (ga != null) gemm(gi, matrix(b, bOff[i], k, n).transpose(0, 1), matrix(ga, gaOff[i], m, k), true);
                if (gb != null) gemm(matrix(a, aOff[i], m, k).transpose(0, 1), gi, matrix(gb, gbOff[i], k, n), true);
            }
        }, a, b);
    }

    /**
     * y = x W^T + bias: x [..., in], W [out, in] (any float dtype, e.g. a memory-mapped BF16 weight), bias [out]
     * or null -> [..., out]. W is read through a transposed view, never copied. Backward: dX = dY·W, and only
     * when they require gradients dW = dY^T·X and dBias = the column sums of dY, so a frozen W costs one GEMM.
     */
    public static Tensor linear(Tensor x, Tensor w, Tensor bias) {
        if (w.rank() != 2 || x.rank() < 1 || x.dim(-1) != w.dim(1))
            throw new IllegalArgumentException("linear: needs x [..., in] and W [out, in], got x " + x.describe() + " and W " + w.describe());
        int in = w.dim(1), outF = w.dim(0);
        if (bias != null && (bias.rank() != 1 || bias.dim(0) != outF))
            throw new IllegalArgumentException("linear: bias must be [" + outF + "] for W " + w.describe() + ", got " + bias.describe());
        int rows = Math.toIntExact(Tensor.numel(Arrays.copyOf(x.shape(), x.rank() - 1)));
        Tensor x2 = x.reshape(rows, in);  // a view when x is contiguous; a plain copy (no tape) otherwise
        Tensor y = Tensor.zeros(rows, outF);
        gemm(x2, w.transpose(0, 1), y, false);
        Tensor biasF = bias == null ? null : Broadcast.heapF32(bias);
        if (biasF != null) Broadcast.accumulate(y, biasF, 1f);
        int[] outShape = x.shape();
        outShape[outShape.length - 1] = outF;
        Tensor out = y.reshape(outShape);
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            Tensor g2 = g.reshape(rows, outF);
            if (x.requiresGrad()) gemm(g2, w, x.gradBuffer().reshape(rows, in), true);          // dX = dY · W
            if (w.requiresGrad()) gemm(g2.transpose(0, 1), x2, w.gradBuffer(), true);            // dW = dY^T · X
            if (bias != null && bias.requiresGrad()) Broadcast.accumulate(bias.gradBuffer(), g2, 1f);
        }, x, w, bias);
    }

    // ============================================================================================ arithmetic

    /** a + b with numpy broadcasting. */
    public static Tensor add(Tensor a, Tensor b) { return arith(Op.ADD, a, b); }

    /** a - b with numpy broadcasting. */
    public static Tensor sub(Tensor a, Tensor b) { return arith(Op.SUB, a, b); }

    /** a * b (element-wise) with numpy broadcasting. */
    public static Tensor mul(Tensor a, Tensor b) { return arith(Op.MUL, a, b); }

    /** a / b (element-wise) with numpy broadcasting. */
    public static Tensor div(Tensor a, Tensor b) { return arith(Op.DIV, a, b); }

    private static Tensor arith(Op op, Tensor a, Tensor b) {
        int[] shape = Broadcast.shape(op.name().toLowerCase(java.util.Locale.ROOT), a.shape(), b.shape());
        Tensor ah = Broadcast.heapF32(a), bh = Broadcast.heapF32(b);
        Tensor out = Tensor.zeros(shape);
        Broadcast.binary(op, ah, bh, out);
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            switch (op) {
                case ADD, SUB -> {
                    if (a.requiresGrad()) Broadcast.accumulate(a.gradBuffer(), g, 1f);
                    if (b.requiresGrad()) Broadcast.accumulate(b.gradBuffer(), g, op == Op.ADD ? 1f : -1f);
                }
                case MUL -> {
                    if (a.requiresGrad()) accumulateProduct(a.gradBuffer(), g, bh);
                    if (b.requiresGrad()) accumulateProduct(b.gradBuffer(), g, ah);
                }
                case DIV -> {
                    Tensor gOverB = Tensor.zeros(shape);   // dL/da = g / b
                    Broadcast.binary(Op.DIV, g, bh, gOverB);
                    if (a.requiresGrad()) Broadcast.accumulate(a.gradBuffer(), gOverB, 1f);
                    if (b.requiresGrad()) {              // dL/db = -g a / b^2 = -(g / b) * out
                        float[] t = gOverB.data(), o = out.data();
                        Broadcast.flat(t.length, (from, to) -> K.mul(t, from, o, from, t, from, to - from));
                        Broadcast.accumulate(b.gradBuffer(), gOverB, -1f);
                    }
                }
            }
        }, a, b);
    }

    /** dst += reduce-to-dst-shape(g * other), fused when no broadcasting is involved. */
    private static void accumulateProduct(Tensor dst, Tensor g, Tensor other) {
        if (Arrays.equals(dst.shape(), g.shape()) && Arrays.equals(other.shape(), g.shape()) && other.isDense()) {
            float[] d = dst.data(), gd = g.data(), od = other.data();
            int oo = other.dataOffset();
            Broadcast.flat(d.length, (from, to) -> K.mulAdd(gd, from, od, oo + from, d, from, to - from));
            return;
        }
        Tensor t = Tensor.zeros(g.shape());
        Broadcast.binary(Op.MUL, g, other, t);
        Broadcast.accumulate(dst, t, 1f);
    }

    /** a * s. */
    public static Tensor scale(Tensor a, float s) {
        Tensor ac = a.contiguous();
        Tensor out = Tensor.zeros(a.shape());
        float[] x = ac.data(), y = out.data();
        int xo = ac.dataOffset();
        Broadcast.flat(y.length, (from, to) -> K.scale(s, x, xo + from, y, from, to - from));
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), ga = a.gradBuffer().data();
            Broadcast.flat(gd.length, (from, to) -> K.axpy(s, gd, from, ga, from, to - from));
        }, a);
    }

    /** -a. */
    public static Tensor neg(Tensor a) { return scale(a, -1f); }

    /** a + s. */
    public static Tensor addScalar(Tensor a, float s) {
        Tensor ac = a.contiguous();
        Tensor out = Tensor.zeros(a.shape());
        float[] x = ac.data(), y = out.data();
        int xo = ac.dataOffset();
        Broadcast.flat(y.length, (from, to) -> K.addScalar(x, xo + from, s, y, from, to - from));
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), ga = a.gradBuffer().data();
            Broadcast.flat(gd.length, (from, to) -> K.add(ga, from, gd, from, ga, from, to - from));
        }, a);
    }

    /** e^a. */
    public static Tensor exp(Tensor a) {
        return unary(a, K::exp, false, (g, x, xo, y, t, ga, from, n) -> K.mulAdd(g, from, y, from, ga, from, n));   // g * e^a
    }

    /** Natural logarithm of a. */
    public static Tensor log(Tensor a) {
        return unary(a, K::log, true, (g, x, xo, y, t, ga, from, n) -> {
            K.div(g, from, x, xo + from, t, from, n);                          // g / a
            K.add(ga, from, t, from, ga, from, n);
        });
    }

    /** Square root of a. */
    public static Tensor sqrt(Tensor a) {
        return unary(a, K::sqrt, true, (g, x, xo, y, t, ga, from, n) -> {
            K.div(g, from, y, from, t, from, n);                               // g / sqrt(a), then * 1/2
            K.axpy(0.5f, t, from, ga, from, n);
        });
    }

    /** a raised to the constant power p. */
    public static Tensor pow(Tensor a, float p) {
        return unary(a, (x, xo, y, yo, n) -> K.pow(x, xo, p, y, yo, n), true, (g, x, xo, y, t, ga, from, n) -> {
            if (p == 0f) return;   // d(a^0)/da = 0 everywhere, as in PyTorch (no 0 * inf at a = 0)
            K.pow(x, xo + from, p - 1f, t, from, n);                           // p a^(p-1) g
            K.mul(t, from, g, from, t, from, n);
            K.axpy(p, t, from, ga, from, n);
        });
    }

    /** y[yo..yo+n) = f(x[xo..xo+n)). */
    @FunctionalInterface
    private interface UnaryForward { void apply(float[] x, int xo, float[] y, int yo, int n); }

    /** ga[from..from+n) += g * f'(x) given the input x (from xo), the output y and a scratch row t (null unless asked for). */
    @FunctionalInterface
    private interface UnaryBackward { void apply(float[] g, float[] x, int xo, float[] y, float[] t, float[] ga, int from, int n); }

    /** An element-wise unary op: forward and backward over flat ranges, in parallel for large tensors. */
    private static Tensor unary(Tensor a, UnaryForward forward, boolean scratch, UnaryBackward backward) {
        Tensor ac = a.contiguous();
        Tensor out = Tensor.zeros(a.shape());
        float[] x = ac.data(), y = out.data();
        int xo = ac.dataOffset();
        Broadcast.flat(y.length, (from, to) -> forward.apply(x, xo + from, y, from, to - from));
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), ga = a.gradBuffer().data(), t = scratch ? new float[gd.length] : null;
            Broadcast.flat(gd.length, (from, to) -> backward.apply(gd, x, xo, y, t, ga, from, to - from));
        }, a);
    }

    // ============================================================================================ reductions

    /** Sum over {@code axes} (all axes when empty); reduced axes are kept as size 1 when {@code keepDims}. */
    public static Tensor sum(Tensor a, boolean keepDims, int... axes) {
        boolean[] reduced = reducedAxes(a, axes);
        int[] keep = a.shape(), dropped = new int[a.rank()];
        int r = 0;
        for (int i = 0; i < keep.length; i++) {
            if (reduced[i]) keep[i] = 1; else dropped[r++] = keep[i];
        }
        Tensor acc = Tensor.zeros(keep);
        Broadcast.accumulate(acc, Broadcast.heapF32(a), 1f);
        Tensor out = keepDims ? acc : acc.reshape(Arrays.copyOf(dropped, r));
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            Broadcast.accumulate(a.gradBuffer(), g.reshape(keep), 1f);
        }, a);
    }

    /** Mean over {@code axes} (all axes when empty); reduced axes are kept as size 1 when {@code keepDims}. */
    public static Tensor mean(Tensor a, boolean keepDims, int... axes) {
        boolean[] reduced = reducedAxes(a, axes);
        long count = 1;
        for (int i = 0; i < reduced.length; i++) if (reduced[i]) count *= a.dim(i);
        return scale(sum(a, keepDims, axes), 1f / count);   // an empty reduction gives 0/0 = NaN, as numpy does
    }

    /** Which axes of {@code a} the reduction covers (all when {@code axes} is empty); repeats are an error. */
    private static boolean[] reducedAxes(Tensor a, int[] axes) {
        boolean[] reduced = new boolean[a.rank()];
        if (axes.length == 0) { Arrays.fill(reduced, true); return reduced; }
        for (int ax : axes) {
            int d = a.axis(ax);
            if (reduced[d]) throw new IllegalArgumentException("reduction over " + a.describe() + " repeats axis " + ax + " in " + Arrays.toString(axes));
            reduced[d] = true;
        }
        return reduced;
    }

    // ============================================================================================ shape

    /** A view with a new shape (one dim may be -1); copies only when {@code a} is not contiguous. */
    public static Tensor reshape(Tensor a, int... shape) {
        Tensor out = a.reshape(shape);
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), ga = a.gradBuffer().data();
            Broadcast.flat(gd.length, (from, to) -> K.add(ga, from, gd, from, ga, from, to - from));
        }, a);
    }

    /** Swaps two axes (a view). */
    public static Tensor transpose(Tensor a, int d0, int d1) {
        int[] perm = new int[a.rank()];
        for (int i = 0; i < perm.length; i++) perm[i] = i;
        int x = a.axis(d0), y = a.axis(d1);
        perm[x] = y;
        perm[y] = x;
        return permute(a, perm);
    }

    /** Reorders axes (a view): result axis i is a's axis perm[i]. */
    public static Tensor permute(Tensor a, int... perm) {
        Tensor out = a.permute(perm);
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            int[] inv = new int[perm.length];
            for (int i = 0; i < perm.length; i++) inv[a.axis(perm[i])] = i;
            Broadcast.accumulate(a.gradBuffer(), g.permute(inv), 1f);
        }, a);
    }

    /** Elements [start, end) along {@code dim} (a view); backward adds into that window of a's gradient. */
    public static Tensor slice(Tensor a, int dim, int start, int end) {
        Tensor out = a.slice(dim, start, end);
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            Broadcast.accumulate(a.gradBuffer().slice(dim, start, end), g, 1f);
        }, a);
    }

    /** Concatenation along {@code dim}; every part has the same shape except along {@code dim}. */
    public static Tensor concat(List<Tensor> parts, int dim) {
        if (parts.isEmpty()) throw new IllegalArgumentException("concat: no tensors given");
        Tensor first = parts.get(0);
        int d = first.axis(dim);
        int[] shape = first.shape();
        int total = 0;
        for (int p = 0; p < parts.size(); p++) {
            Tensor t = parts.get(p);
            boolean ok = t.rank() == shape.length;
            for (int i = 0; ok && i < shape.length; i++) if (i != d && t.dim(i) != shape[i]) ok = false;
            if (!ok) throw new IllegalArgumentException("concat along dim " + d + ": part " + p + " " + t.describe()
                    + " does not match part 0 " + first.describe());
            total += t.dim(d);
        }
        shape[d] = total;
        Tensor out = Tensor.zeros(shape);
        int[] starts = new int[parts.size()];
        int at = 0;
        for (int p = 0; p < parts.size(); p++) {
            Tensor t = parts.get(p);
            starts[p] = at;
            Broadcast.copy(out.slice(d, at, at + t.dim(d)), Broadcast.heapF32(t));
            at += t.dim(d);
        }
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            for (int p = 0; p < parts.size(); p++) {
                Tensor t = parts.get(p);
                if (t.requiresGrad()) Broadcast.accumulate(t.gradBuffer(), g.slice(d, starts[p], starts[p] + t.dim(d)), 1f);
            }
        }, parts.toArray(new Tensor[0]));
    }

    // ============================================================================================ gathers

    /**
     * Rows of {@code weight} [V, d] (any float dtype, heap or segment) for {@code ids} -> [ids.length, d];
     * backward scatter-adds into weight's gradient (repeated ids accumulate).
     */
    public static Tensor embedding(Tensor weight, int[] ids) {
        if (weight.rank() != 2) throw new IllegalArgumentException("embedding: weight must be [V, d], got " + weight.describe());
        int v = weight.dim(0), d = weight.dim(1);
        for (int i = 0; i < ids.length; i++)
            if (ids[i] < 0 || ids[i] >= v)
                throw new IllegalArgumentException("embedding: id " + ids[i] + " at position " + i + " is out of range for weight " + weight.describe());
        Tensor out = Tensor.zeros(ids.length, d);
        float[] o = out.data();
        boolean rowContiguous = d <= 1 || weight.stride(1) == 1;
        long base = weight.offset();
        long rowStride = weight.stride(0), colStride = weight.stride(1);
        Broadcast.flat(ids.length * d, (from, to) -> { // rows whose first element falls in [from, to)
            int r0 = (from + d - 1) / d, r1 = (to + d - 1) / d;
            for (int i = r0; i < r1; i++) {
                long row = base + ids[i] * rowStride;
                if (rowContiguous) weight.storage().readFloats(weight.dtype(), row, o, i * d, d);
                else for (int j = 0; j < d; j++) o[i * d + j] = weight.storage().getFloat(weight.dtype(), row + j * colStride);
            }
        });
        int[] saved = ids.clone();
        return Tape.record(out, () -> {
            Tensor g = out.grad();
            if (g == null) return;
            float[] gd = g.data(), gw = weight.gradBuffer().data();
            for (int i = 0; i < saved.length; i++) K.add(gw, saved[i] * d, gd, i * d, gw, saved[i] * d, d);
        }, weight);
    }

    // ============================================================================================ helpers

    /** All matrix products go through {@link Gemm}; empty products only clear (or keep) C. */
    private static void gemm(Tensor a, Tensor b, Tensor c, boolean accumulate) {
        if (c.numel() == 0) return;
        if (a.dim(1) == 0) {
            if (!accumulate) Arrays.fill(c.data(), c.dataOffset(), c.dataOffset() + (int) c.numel(), 0f);
            return;
        }
        Gemm.matmul(a, b, c, accumulate);
    }

    /** Element offset of each batch of a broadcast batch shape in an operand with the given batch dims/strides. */
    private static long[] batchOffsets(int[] batch, int[] opShape, int[] opStrides, long base) {
        int[] st = Broadcast.alignedStrides(opShape, opStrides, batch);
        int count = Math.toIntExact(Tensor.numel(batch));
        long[] off = new long[count];
        int[] idx = new int[batch.length];
        long o = base;
        for (int i = 0; i < count; i++) {
            off[i] = o;
            for (int d = batch.length - 1; d >= 0; d--) {
                o += st[d];
                if (++idx[d] < batch[d]) break;
                o -= (long) batch[d] * st[d];
                idx[d] = 0;
            }
        }
        return off;
    }

    /** The [rows, cols] matrix of a batched tensor at element offset {@code off} (a view, same storage). */
    private static Tensor matrix(Tensor t, long off, int rows, int cols) {
        return new Tensor(t.storage(), t.dtype(), new int[] {rows, cols}, new int[] {t.stride(-2), t.stride(-1)}, off);
    }
}
