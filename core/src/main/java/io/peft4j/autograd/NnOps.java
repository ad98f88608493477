package io.peft4j.autograd;

import io.peft4j.kernels.AttentionKernels;
import io.peft4j.kernels.NnKernels;
import io.peft4j.kernels.NnMath;
import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;

/**
 * Differentiable neural-network operations: softmax family, fused cross-entropy, norms, activations, RoPE,
 * attention and dropout. Forward through the fused kernels ({@link NnKernels}, {@link AttentionKernels}); backward
 * recorded on the active {@link Tape}. Inputs may be any layout or dtype (they are made contiguous F32 first);
 * outputs are dense heap F32; gradients accumulate only into inputs that require them.
 */
public final class NnOps {
    private NnOps() {}

    private static final NnKernels K = NnKernels.current();
    /** Elements per parallel task: below this, splitting costs more than it saves. */
    private static final int GRAIN = 1 << 14;

    // ------------------------------------------------------------------ softmax family

    /**
     * Softmax over the last axis (max-shifted). A row that is entirely -inf yields zeros rather than NaN, the same
     * convention as a fully masked attention row.
     */
    public static Tensor softmax(Tensor x) {
        int n = lastDim(x, "softmax");
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), rows = rows(x, n);
        float[] y = new float[rows * n];                 // [rows, n]
        Parallel.forRange(0, rows, rowGrain(n), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int o = r * n;
                float m = K.max(xd, xo + o, n);
                if (m == Float.NEGATIVE_INFINITY) continue;   // zeros
                float s = K.expStore(xd, xo + o, m, y, o, n);
                K.scale(1f / s, y, o, n);
            }
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, rows, rowGrain(n), (r0, r1) -> {
                for (int r = r0; r < r1; r++) K.softmaxBackward(y, r * n, dy, r * n, dx, r * n, n);
            });
        }, x);
    }

    /** Log-softmax over the last axis: x - logsumexp(x). An all -inf row stays -inf. */
    public static Tensor logSoftmax(Tensor x) {
        int n = lastDim(x, "logSoftmax");
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), rows = rows(x, n);
        float[] y = new float[rows * n];                 // [rows, n]
        Parallel.forRange(0, rows, rowGrain(n), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int o = r * n;
                float m = K.max(xd, xo + o, n);
                if (m == Float.NEGATIVE_INFINITY) { Arrays.fill(y, o, o + n, Float.NEGATIVE_INFINITY); continue; }
                float lse = m + (float) Math.log(K.sumExp(xd, xo + o, m, n));
                K.addScalar(xd, xo + o, -lse, y, o, n);
            }
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, rows, rowGrain(n), (r0, r1) -> {
                for (int r = r0; r < r1; r++) K.logSoftmaxBackward(y, r * n, dy, r * n, dx, r * n, n);
            });
        }, x);
    }

    /** {@link #crossEntropy(Tensor, int[], int)} with PyTorch's default ignore index, -100. */
    public static Tensor crossEntropy(Tensor logits, int[] targets) { return crossEntropy(logits, targets, -100); }

    /**
     * Mean cross-entropy of {@code logits} [N, V] against {@code targets} [N], skipping targets equal to
     * {@code ignoreIndex}; fused with log-softmax and chunked over the vocabulary. Returns a scalar [] tensor
     * (0 when every target is ignored).
     *
     * <p>The forward keeps one logsumexp per row and no probabilities; the backward writes
     * {@code (softmax - onehot) / count} straight into the logits' gradient, so the only N x V buffers are the
     * logits and their gradient. Logits of rank > 2 are read as [numel / V, V].
     */
    public static Tensor crossEntropy(Tensor logits, int[] targets, int ignoreIndex) {
        int v = lastDim(logits, "crossEntropy");
        int n = rows(logits, v);
        if (targets.length != n)
            throw new IllegalArgumentException("crossEntropy: " + targets.length + " targets for logits " + Arrays.toString(logits.shape()) + " (" + n + " rows)");
        int[] t = targets.clone();   // the backward must see the targets of this forward
        int count = 0;
        for (int r = 0; r < n; r++) {
            if (t[r] == ignoreIndex) continue;
            if (t[r] < 0 || t[r] >= v)
                throw new IllegalArgumentException("crossEntropy: target " + t[r] + " at row " + r + " is outside [0, " + v + ") and is not the ignore index " + ignoreIndex);
            count++;
        }
        Tensor lc = logits.contiguous();
        float[] xd = lc.data();
        int xo = lc.dataOffset();
        float[] lse = new float[n];        // [N] logsumexp per row
        float[] rowLoss = new float[n];    // [N]
        Parallel.forRange(0, n, rowGrain(v), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                if (t[r] == ignoreIndex) continue;
                int o = xo + r * v;
                float m = K.max(xd, o, v);
                lse[r] = m + (float) Math.log(K.sumExp(xd, o, m, v));
                rowLoss[r] = lse[r] - xd[o + t[r]];
            }
        });
        double total = 0;   // sequential, so the loss does not depend on the thread count
        for (int r = 0; r < n; r++) total += rowLoss[r];
        final int cnt = count;
        Tensor out = Tensor.scalar(cnt == 0 ? 0f : (float) (total / cnt));
        return Tape.record(out, () -> {
            float[] dl = gradOrNull(out);
            if (dl == null || cnt == 0) return;
            float g = dl[out.grad().dataOffset()] / cnt;
            float[] dx = logits.gradBuffer().data();
            Parallel.forRange(0, n, rowGrain(v), (r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    if (t[r] == ignoreIndex) continue;
                    K.addExp(g, xd, xo + r * v, lse[r], dx, r * v, v);
                    dx[r * v + t[r]] -= g;
                }
            });
        }, logits);
    }

    // ------------------------------------------------------------------ norms

    /** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight; weight [d] or null. Computed in F32. */
    public static Tensor rmsNorm(Tensor x, Tensor weight, float eps) {
        int d = lastDim(x, "rmsNorm");
        checkVector(weight, d, "rmsNorm weight", x);
        Tensor xc = x.contiguous(), wc = weight == null ? null : weight.contiguous();
        float[] xd = xc.data(), wd = wc == null ? null : wc.data();
        int xo = xc.dataOffset(), wo = wc == null ? 0 : wc.dataOffset(), rows = rows(x, d);
        float[] y = new float[rows * d];     // [rows, d]
        float[] rstd = new float[rows];      // [rows]
        Parallel.forRange(0, rows, rowGrain(d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) rstd[r] = K.rmsNorm(xd, xo + r * d, wd, wo, y, r * d, d, eps);
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.requiresGrad() ? x.gradBuffer().data() : null;
            boolean needW = weight != null && weight.requiresGrad();
            reduceRows(rows, d, needW ? 1 : 0, (r0, r1, part) -> {
                for (int r = r0; r < r1; r++)
                    K.rmsNormBackward(xd, xo + r * d, wd, wo, dy, r * d, rstd[r], dx, r * d, part, 0, d);
            }, needW ? new Tensor[] {weight} : new Tensor[0]);
        }, x, weight);
    }

    /** LayerNorm over the last axis (biased variance); weight and bias [d] or null. */
    public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps) {
        int d = lastDim(x, "layerNorm");
        checkVector(weight, d, "layerNorm weight", x);
        checkVector(bias, d, "layerNorm bias", x);
        Tensor xc = x.contiguous(), wc = weight == null ? null : weight.contiguous(), bc = bias == null ? null : bias.contiguous();
        float[] xd = xc.data(), wd = wc == null ? null : wc.data(), bd = bc == null ? null : bc.data();
        int xo = xc.dataOffset(), wo = wc == null ? 0 : wc.dataOffset(), bo = bc == null ? 0 : bc.dataOffset();
        int rows = rows(x, d);
        float[] y = new float[rows * d];         // [rows, d]
        float[] stats = new float[rows * 2];     // [rows, (mean, rstd)]
        Parallel.forRange(0, rows, rowGrain(d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) K.layerNorm(xd, xo + r * d, wd, wo, bd, bo, y, r * d, d, eps, stats, 2 * r);
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.requiresGrad() ? x.gradBuffer().data() : null;
            boolean needW = weight != null && weight.requiresGrad(), needB = bias != null && bias.requiresGrad();
            // partial buffer layout: [dw (d) if needed][db (d) if needed]
            int parts = (needW ? 1 : 0) + (needB ? 1 : 0);
            Tensor[] targets = needW && needB ? new Tensor[] {weight, bias} : needW ? new Tensor[] {weight} : needB ? new Tensor[] {bias} : new Tensor[0];
            reduceRows(rows, d, parts, (r0, r1, part) -> {
                float[] dw = needW ? part : null, db = needB ? part : null;
                int dbo = needW ? d : 0;
                for (int r = r0; r < r1; r++)
                    K.layerNormBackward(xd, xo + r * d, wd, wo, dy, r * d, stats[2 * r], stats[2 * r + 1],
                            dx, r * d, dw, 0, db, dbo, d);
            }, targets);
        }, x, weight, bias);
    }

    // ------------------------------------------------------------------ activations

    /** GELU: the tanh approximation when {@code tanhApprox}, else the exact erf form x * Phi(x). */
    public static Tensor gelu(Tensor x, boolean tanhApprox) {
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), n = Math.toIntExact(x.numel());
        float[] y = new float[n];
        Parallel.forRange(0, n, GRAIN, (a, b) -> K.gelu(tanhApprox, xd, xo + a, y, a, b - a));
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, n, GRAIN, (a, b) -> K.geluBackward(tanhApprox, xd, xo + a, dy, a, dx, a, b - a));
        }, x);
    }

    /** SiLU (swish): x * sigmoid(x). */
    public static Tensor silu(Tensor x) {
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), n = Math.toIntExact(x.numel());
        float[] y = new float[n];
        Parallel.forRange(0, n, GRAIN, (a, b) -> K.silu(xd, xo + a, y, a, b - a));
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, n, GRAIN, (a, b) -> K.siluBackward(xd, xo + a, dy, a, dx, a, b - a));
        }, x);
    }

    /** silu(gate) * up, fused; gate and up of equal shape. */
    public static Tensor swiglu(Tensor gate, Tensor up) {
        if (!Arrays.equals(gate.shape(), up.shape()))
            throw new IllegalArgumentException("swiglu: gate " + gate.describe() + " and up " + up.describe() + " differ in shape");
        Tensor gc = gate.contiguous(), uc = up.contiguous();
        float[] gd = gc.data(), ud = uc.data();
        int go = gc.dataOffset(), uo = uc.dataOffset(), n = Math.toIntExact(gate.numel());
        float[] y = new float[n];
        Parallel.forRange(0, n, GRAIN, (a, b) -> K.swiglu(gd, go + a, ud, uo + a, y, a, b - a));
        Tensor out = Tensor.of(y, gate.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dg = gate.requiresGrad() ? gate.gradBuffer().data() : null;
            float[] du = up.requiresGrad() ? up.gradBuffer().data() : null;
            Parallel.forRange(0, n, GRAIN, (a, b) -> K.swigluBackward(gd, go + a, ud, uo + a, dy, a, dg, a, du, a, b - a));
        }, gate, up);
    }

    // ------------------------------------------------------------------ RoPE

    /**
     * RoPE on x [B, T, H, Dh] at the given positions [T] (one position per sequence index, shared by the batch).
     * Dims at or beyond {@code table.rotaryDim} pass through unchanged. The backward applies the inverse rotation.
     */
    public static Tensor rope(Tensor x, RopeTable table, int[] positions) {
        if (x.rank() != 4) throw new IllegalArgumentException("rope: x must be [B, T, H, Dh], got " + x.describe());
        int B = x.dim(0), T = x.dim(1), H = x.dim(2), dh = x.dim(3);
        if (dh != table.headDim)
            throw new IllegalArgumentException("rope: x " + x.describe() + " has head dim " + dh + " but the table was built for " + table.headDim);
        if (positions.length != T)
            throw new IllegalArgumentException("rope: " + positions.length + " positions for x " + x.describe() + " (T = " + T + ")");
        int[] pos = positions.clone();
        for (int t = 0; t < T; t++)
            if (pos[t] < 0 || pos[t] >= table.maxPositions)
                throw new IllegalArgumentException("rope: position " + pos[t] + " at index " + t + " is outside the table's [0, " + table.maxPositions + ")");
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), rowsBT = B * T, rowLen = H * dh;
        float[] y = new float[rowsBT * rowLen];    // [B, T, H, Dh]
        Parallel.forRange(0, rowsBT, rowGrain(rowLen), (r0, r1) -> {
            for (int r = r0; r < r1; r++) ropeRow(table, pos[r % T], H, xd, xo + r * rowLen, y, r * rowLen, false);
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, rowsBT, rowGrain(rowLen), (r0, r1) -> {
                for (int r = r0; r < r1; r++) ropeRow(table, pos[r % T], H, dy, r * rowLen, dx, r * rowLen, true);
            });
        }, x);
    }

    /** Rotates the H heads of one (b, t) row; {@code backward}: inverse rotation accumulated into dst. */
    private static void ropeRow(RopeTable table, int p, int heads, float[] src, int so, float[] dst, int dO, boolean backward) {
        int dh = table.headDim, rot = table.rotaryDim, half = rot / 2;
        for (int h = 0; h < heads; h++) {
            int s = so + h * dh, d = dO + h * dh;
            if (table.layout == RopeTable.Layout.ROTATE_HALF)
                K.ropeHalf(src, s, dst, d, half, table.cos, table.sin, p * half, backward, backward);
            else
                K.ropeInterleaved(src, s, dst, d, rot, table.cosPairs, table.sinPairs, p * rot, backward, backward);
            if (rot < dh) {
                if (backward) K.axpy(1f, src, s + rot, dst, d + rot, dh - rot);
                else System.arraycopy(src, s + rot, dst, d + rot, dh - rot);
            }
        }
    }

    // ------------------------------------------------------------------ attention

    /** Attention with scale 1/sqrt(Dh), no mask, query offset 0. */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, boolean causal) {
        return attention(q, k, v, causal, 0, null, (float) (1.0 / Math.sqrt(q.dim(-1))));
    }

    /**
     * Scaled-dot-product attention. q [B, T, Hq, Dh], k and v [B, S, Hkv, Dh] with Hq a multiple of Hkv (grouped
     * query heads share K/V by index, never by copy). When {@code causal}, query i (at absolute position
     * {@code queryOffset + i}) sees keys 0..queryOffset+i, which needs S >= queryOffset + T. {@code mask} is an
     * optional additive mask broadcastable to [B, Hq, T, S] (it receives a gradient if it requires one). Returns
     * [B, T, Hq, Dh]; a query row that sees no key (every score -inf) outputs 0.
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, boolean causal, int queryOffset, Tensor mask, float scale) {
        if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
            throw new IllegalArgumentException("attention: q, k, v must be rank 4, got q " + q.describe() + ", k " + k.describe() + ", v " + v.describe());
        int B = q.dim(0), T = q.dim(1), Hq = q.dim(2), dh = q.dim(3), S = k.dim(1), Hkv = k.dim(2);
        if (!Arrays.equals(k.shape(), v.shape()) || k.dim(0) != B || k.dim(3) != dh)
            throw new IllegalArgumentException("attention: k " + k.describe() + " and v " + v.describe() + " must both be [B, S, Hkv, Dh] for q " + q.describe());
        if (Hkv == 0 || Hq % Hkv != 0)
            throw new IllegalArgumentException("attention: q heads " + Hq + " must be a multiple of kv heads " + Hkv + " (q " + q.describe() + ", k " + k.describe() + ")");
        if (causal && (queryOffset < 0 || queryOffset + T > S))
            throw new IllegalArgumentException("attention: causal query offset " + queryOffset + " with T = " + T + " needs 0 <= offset and offset + T <= S = " + S);
        AttentionKernels.Dims dims = new AttentionKernels.Dims(B, T, S, Hq, Hkv, dh);
        AttentionKernels.Operand qop = operand(q), kop = operand(k), vop = operand(v);
        Tensor mc = mask == null ? null : mask.contiguous();
        AttentionKernels.Mask mv = mc == null ? null : maskView(mc, B, Hq, T, S);
        float[] o = new float[B * T * Hq * dh];   // [B, T, Hq, Dh]
        float[] lse = new float[B * Hq * T];       // [B, Hq, T]
        AttentionKernels.forward(K, dims, qop, kop, vop, mv, causal, queryOffset, scale, o, lse);
        Tensor out = Tensor.of(o, B, T, Hq, dh);
        return Tape.record(out, () -> {
            float[] dOut = gradOrNull(out);
            if (dOut == null) return;
            AttentionKernels.backward(K, dims, qop, kop, vop, mv, causal, queryOffset, scale, o, lse, dOut,
                    q.requiresGrad() ? q.gradBuffer().data() : null,
                    k.requiresGrad() ? k.gradBuffer().data() : null,
                    v.requiresGrad() ? v.gradBuffer().data() : null,
                    mask != null && mask.requiresGrad() ? mask.gradBuffer().data() : null);
        }, q, k, v, mask);
    }

    /**
     * A [B, L, H, Dh] attention input read in place when each batch entry is dense heap F32 (a dense tensor, or a
     * KV-cache slice whose batch stride exceeds L*H*Dh); otherwise a dense copy.
     */
    private static AttentionKernels.Operand operand(Tensor t) {
        int[] sh = t.shape(), st = t.strides();
        boolean inner = (sh[3] <= 1 || st[3] == 1) && (sh[2] <= 1 || st[2] == sh[3]) && (sh[1] <= 1 || st[1] == sh[2] * sh[3]);
        if (inner && t.dtype() == DType.F32 && t.storage().isHeap() && st[0] >= 0)
            return new AttentionKernels.Operand(t.storage().array(), Math.toIntExact(t.offset()), sh[0] <= 1 ? 0 : st[0]);
        Tensor c = t.contiguous();
        return new AttentionKernels.Operand(c.data(), c.dataOffset(), sh[1] * sh[2] * sh[3]);
    }

    /** Broadcast strides of a dense mask against [B, Hq, T, S] (numpy rules: aligned right, size-1 axes broadcast). */
    private static AttentionKernels.Mask maskView(Tensor m, int B, int H, int T, int S) {
        int[] target = {B, H, T, S};
        int r = m.rank();
        if (r > 4) throw new IllegalArgumentException("attention: mask " + m.describe() + " has rank > 4");
        int[] shape = m.shape(), st = Tensor.contiguousStrides(shape), eff = new int[4];
        for (int a = 0; a < 4; a++) {
            int ma = a - (4 - r);
            if (ma < 0) continue;   // missing leading axis: broadcast
            if (shape[ma] == target[a]) eff[a] = target[a] == 1 ? 0 : st[ma];
            else if (shape[ma] == 1) eff[a] = 0;
            else throw new IllegalArgumentException("attention: mask " + m.describe() + " does not broadcast to [B, Hq, T, S] = " + Arrays.toString(target));
        }
        return new AttentionKernels.Mask(m.data(), m.dataOffset(), eff[0], eff[1], eff[2], eff[3]);
    }

    // ------------------------------------------------------------------ dropout

    /**
     * Inverted dropout: each element is zeroed with probability p and the survivors scaled by 1/(1-p). The mask is a
     * pure function of (seed, element index), so the same seed gives the same mask regardless of threading, and
     * the backward regenerates it instead of storing it. Identity (returns {@code x} itself) when !training or
     * p == 0.
     */
    public static Tensor dropout(Tensor x, float p, long seed, boolean training) {
        if (!(p >= 0f && p <= 1f)) throw new IllegalArgumentException("dropout: p must be in [0, 1], got " + p);
        if (!training || p == 0f) return x;
        Tensor xc = x.contiguous();
        float[] xd = xc.data();
        int xo = xc.dataOffset(), n = Math.toIntExact(x.numel());
        float keepScale = p == 1f ? 0f : 1f / (1f - p);
        // keep when the 24-bit uniform u >= p, i.e. when the integer draw >= ceil(p * 2^24)
        int threshold = (int) Math.ceil(p * (double) (1 << 24));
        float[] y = new float[n];
        Parallel.forRange(0, n, GRAIN, (a, b) -> {
            for (int i = a; i < b; i++) y[i] = NnMath.dropoutKeep(seed, i, threshold) ? xd[xo + i] * keepScale : 0f;
        });
        Tensor out = Tensor.of(y, x.shape());
        return Tape.record(out, () -> {
            float[] dy = gradOrNull(out);
            if (dy == null) return;
            float[] dx = x.gradBuffer().data();
            Parallel.forRange(0, n, GRAIN, (a, b) -> {
                for (int i = a; i < b; i++) if (NnMath.dropoutKeep(seed, i, threshold)) dx[i] += dy[i] * keepScale;
            });
        }, x);
    }

    // ------------------------------------------------------------------ helpers

    private static int lastDim(Tensor x, String op) {
        if (x.rank() < 1) throw new IllegalArgumentException(op + ": needs rank >= 1, got " + x.describe());
        int n = x.dim(-1);
        if (n == 0 && x.numel() == 0) return 0;
        return n;
    }

    private static int rows(Tensor x, int lastDim) {
        return lastDim == 0 ? 0 : Math.toIntExact(x.numel() / lastDim);
    }

    private static int rowGrain(int n) { return Math.max(1, GRAIN / Math.max(1, n)); }

    private static void checkVector(Tensor w, int d, String what, Tensor x) {
        if (w != null && (w.rank() != 1 || w.dim(0) != d))
            throw new IllegalArgumentException(what + " must be [" + d + "] for x " + x.describe() + ", got " + w.describe());
    }

    private static float[] gradOrNull(Tensor out) {
        Tensor g = out.grad();
        return g == null ? null : g.data();
    }

    @FunctionalInterface
    private interface RowChunk { void run(int from, int to, float[] partial); }

    /**
     * Runs a backward over rows in a fixed number of chunks, each accumulating per-parameter gradients (parts x d
     * floats) into its own buffer; the buffers are then added to {@code targets}' gradients in chunk order, so the
     * result does not depend on scheduling. With parts == 0 the chunks get a null buffer.
     */
    private static void reduceRows(int rows, int d, int parts, RowChunk body, Tensor[] targets) {
        int chunks = Math.max(1, Math.min(Parallel.threads(), rows / Math.max(1, rowGrain(d))));
        float[][] partial = new float[chunks][];
        Parallel.forRange(0, chunks, 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                float[] part = parts == 0 ? null : (partial[c] = new float[parts * d]);
                body.run((int) ((long) rows * c / chunks), (int) ((long) rows * (c + 1) / chunks), part);
            }
        });
        for (int t = 0; t < targets.length; t++) {
            float[] g = targets[t].gradBuffer().data();
            for (float[] p : partial)
                if (p != null) for (int i = 0; i < d; i++) g[i] += p[t * d + i];
        }
    }
}
