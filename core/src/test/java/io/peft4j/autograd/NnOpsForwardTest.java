package io.peft4j.autograd;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * NnOps forward results against naive double-precision references written here, independently of the kernels
 * (explicit score matrices for attention, HF's rotate_half and Meta's complex-number form for RoPE, a series for
 * erf), plus the op contracts: masking conventions, strided and non-F32 inputs, dropout determinism.
 */
class NnOpsForwardTest {

    private static void close(String what, double[] expected, Tensor actual, double tol) {
        float[] a = actual.toFloatArray();
        assertEquals(expected.length, a.length, what + ": size");
        for (int i = 0; i < a.length; i++) {
            double e = expected[i];
            boolean ok = Double.isInfinite(e) ? e == a[i] : Math.abs(e - a[i]) <= tol * Math.max(1, Math.abs(e));
            if (!ok) fail(what + " element " + i + ": expected " + e + ", got " + a[i]);
        }
    }

    private static double[] d(Tensor t) {
        float[] f = t.toFloatArray();
        double[] r = new double[f.length];
        for (int i = 0; i < f.length; i++) r[i] = f[i];
        return r;
    }

    // ------------------------------------------------------------------ softmax family and cross-entropy

    @Test
    void softmaxAndLogSoftmaxMatchDouble() {
        int rows = 6, n = 37;
        Tensor x = Tensor.randn(3, 6f, rows, n);
        float[] xd = x.data();
        for (int j = 0; j < n; j++) xd[n + j] += 1000f;   // row 1: a huge shift must not overflow
        double[] sm = new double[rows * n], lsm = new double[rows * n];
        for (int r = 0; r < rows; r++) {
            double m = Double.NEGATIVE_INFINITY, s = 0;
            for (int j = 0; j < n; j++) m = Math.max(m, xd[r * n + j]);
            for (int j = 0; j < n; j++) s += Math.exp(xd[r * n + j] - m);
            for (int j = 0; j < n; j++) {
                sm[r * n + j] = Math.exp(xd[r * n + j] - m) / s;
                lsm[r * n + j] = xd[r * n + j] - m - Math.log(s);
            }
        }
        close("softmax", sm, NnOps.softmax(x), 1e-6);
        // x - lse rounds at the scale of x: ulp(1000) = 6e-5 in row 1, so compare against 2 ulp of the input
        float[] got = NnOps.logSoftmax(x).toFloatArray();
        for (int i = 0; i < got.length; i++)
            assertEquals(lsm[i], got[i], 2 * Math.max(1e-6, Math.ulp(Math.abs(xd[i]))) + 1e-6 * Math.abs(lsm[i]), "logSoftmax element " + i);
    }

    @Test
    void fullyMaskedSoftmaxRowIsZeroNotNaN() {
        float ninf = Float.NEGATIVE_INFINITY;
        Tensor x = Tensor.of(new float[] {ninf, ninf, ninf, 0f, ninf, 1f}, 2, 3);
        float[] s = NnOps.softmax(x).toFloatArray();
        assertArrayEquals(new float[] {0, 0, 0}, Arrays.copyOf(s, 3));
        assertEquals(0f, s[4]);
        assertEquals(1.0, s[3] + s[5], 1e-6);
        float[] l = NnOps.logSoftmax(x).toFloatArray();
        for (int i = 0; i < 3; i++) assertEquals(ninf, l[i]);
    }

    @Test
    void crossEntropyMatchesDoubleAndItsGradientIsSoftmaxMinusOnehot() {
        int n = 9, v = 1003;   // V odd and well beyond a vector
        Tensor logits = Tensor.randn(11, 4f, n, v).requiresGrad(true);
        int[] targets = {5, -1, 1002, 0, 77, -1, 500, 3, 999};
        float[] x = logits.data();
        double total = 0;
        int count = 0;
        double[] grad = new double[n * v];
        double[] lse = new double[n];
        for (int r = 0; r < n; r++) {
            double m = Double.NEGATIVE_INFINITY, s = 0;
            for (int j = 0; j < v; j++) m = Math.max(m, x[r * v + j]);
            for (int j = 0; j < v; j++) s += Math.exp(x[r * v + j] - m);
            lse[r] = m + Math.log(s);
            if (targets[r] == -1) continue;
            total += lse[r] - x[r * v + targets[r]];
            count++;
        }
        for (int r = 0; r < n; r++) {
            if (targets[r] == -1) continue;
            for (int j = 0; j < v; j++) grad[r * v + j] = (Math.exp(x[r * v + j] - lse[r]) - (j == targets[r] ? 1 : 0)) / count;
        }
        try (Tape tape = Tape.record()) {
            Tensor loss = NnOps.crossEntropy(logits, targets, -1);
            assertEquals(0, loss.rank());
            assertEquals(total / count, loss.toFloatArray()[0], 1e-5);
            tape.backward(loss);
        }
        close("CE gradient", grad, logits.grad(), 1e-6);
    }

    @Test
    void crossEntropyAllIgnoredIsZeroWithZeroGradient() {
        Tensor logits = Tensor.randn(1, 1f, 3, 4).requiresGrad(true);
        try (Tape tape = Tape.record()) {
            Tensor loss = NnOps.crossEntropy(logits, new int[] {-100, -100, -100});
            assertEquals(0f, loss.toFloatArray()[0]);
            tape.backward(loss);
        }
        float[] g = logits.grad() == null ? new float[12] : logits.grad().toFloatArray();
        for (float e : g) assertEquals(0f, e);
    }

    @Test
    void crossEntropyRejectsBadTargetsNamingThem() {
        Tensor logits = Tensor.zeros(2, 5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NnOps.crossEntropy(logits, new int[] {1, 5}, -100));
        assertTrue(e.getMessage().contains("target 5 at row 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NnOps.crossEntropy(logits, new int[] {1}, -100));
        assertTrue(e.getMessage().contains("[2, 5]"), e.getMessage());
    }

    // ------------------------------------------------------------------ norms

    @Test
    void rmsNormMatchesDouble() {
        int rows = 5, n = 67;
        Tensor x = Tensor.randn(5, 2f, rows, n), w = Tensor.randn(6, 1f, n);
        for (Tensor wt : new Tensor[] {w, null}) {
            double[] ref = new double[rows * n];
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int j = 0; j < n; j++) ss += (double) x.data()[r * n + j] * x.data()[r * n + j];
                double rs = 1 / Math.sqrt(ss / n + 1e-6);
                for (int j = 0; j < n; j++) ref[r * n + j] = x.data()[r * n + j] * rs * (wt == null ? 1 : wt.data()[j]);
            }
            close("rmsNorm weight=" + (wt != null), ref, NnOps.rmsNorm(x, wt, 1e-6f), 2e-6);
        }
    }

    @Test
    void layerNormMatchesDouble() {
        int rows = 4, n = 45;
        Tensor x = Tensor.randn(7, 3f, rows, n), w = Tensor.randn(8, 1f, n), b = Tensor.randn(9, 1f, n);
        for (int i = 0; i < x.data().length; i++) x.data()[i] += 5f;   // a large mean: the two-pass variance must hold
        double[] ref = new double[rows * n];
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int j = 0; j < n; j++) mean += x.data()[r * n + j];
            mean /= n;
            for (int j = 0; j < n; j++) var += Math.pow(x.data()[r * n + j] - mean, 2);
            double rs = 1 / Math.sqrt(var / n + 1e-5);
            for (int j = 0; j < n; j++) ref[r * n + j] = (x.data()[r * n + j] - mean) * rs * w.data()[j] + b.data()[j];
        }
        close("layerNorm", ref, NnOps.layerNorm(x, w, b, 1e-5f), 3e-6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NnOps.layerNorm(x, Tensor.zeros(44), null, 1e-5f));
        assertTrue(e.getMessage().contains("layerNorm weight must be [45]"), e.getMessage());
    }

    // ------------------------------------------------------------------ activations

    /** erf by the all-positive series (double precision to ~1e-15 for |x| <= 6). */
    private static double erf(double x) {
        double a = Math.abs(x);
        if (a > 6) return Math.signum(x);
        double term = a, sum = a;
        for (int k = 1; k < 500 && term > 1e-18 * sum; k++) {
            term *= 2 * a * a / (2 * k + 1);
            sum += term;
        }
        return Math.signum(x) * 2 / Math.sqrt(Math.PI) * Math.exp(-a * a) * sum;
    }

    @Test
    void activationsMatchDouble() {
        int n = 1001;
        float[] xs = new float[n];
        for (int i = 0; i < n; i++) xs[i] = -10f + 20f * i / (n - 1);
        Tensor x = Tensor.of(xs, n), u = Tensor.randn(4, 1f, n);
        double[] ge = new double[n], gt = new double[n], si = new double[n], sw = new double[n];
        for (int i = 0; i < n; i++) {
            double v = xs[i];
            ge[i] = v * 0.5 * (1 + erf(v / Math.sqrt(2)));
            gt[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            si[i] = v / (1 + Math.exp(-v));
            sw[i] = si[i] * u.data()[i];
        }
        close("gelu erf", ge, NnOps.gelu(x, false), 5e-7);
        close("gelu tanh", gt, NnOps.gelu(x, true), 5e-7);
        close("silu", si, NnOps.silu(x), 5e-7);
        close("swiglu", sw, NnOps.swiglu(x, u), 5e-7);
        assertThrows(IllegalArgumentException.class, () -> NnOps.swiglu(x, Tensor.zeros(n - 1)));
    }

    // ------------------------------------------------------------------ RoPE

    @Test
    void ropeMatchesHfRotateHalfAndMetaComplexForms() {
        int B = 2, T = 5, H = 3;
        int[] positions = {0, 4, 9, 2, 31};
        SplittableRandom rng = new SplittableRandom(1);
        for (RopeTable.Layout layout : RopeTable.Layout.values())
            for (int[] dims : new int[][] {{64, 64}, {12, 12}, {10, 4}, {35, 20}}) {
                int dh = dims[0], rot = dims[1];
                double theta = 10000;
                RopeTable table = RopeTable.of(layout, dh, rot, 40, theta);
                Tensor x = Tensor.randn(rng.nextLong(), 1f, B, T, H, dh);
                double[] ref = new double[B * T * H * dh];
                float[] xd = x.data();
                for (int b = 0; b < B; b++)
                    for (int t = 0; t < T; t++)
                        for (int h = 0; h < H; h++) {
                            int o = ((b * T + t) * H + h) * dh;
                            for (int e = rot; e < dh; e++) ref[o + e] = xd[o + e];
                            for (int i = 0; i < rot / 2; i++) {
                                double ang = positions[t] * Math.pow(theta, -2.0 * i / rot), c = Math.cos(ang), s = Math.sin(ang);
                                if (layout == RopeTable.Layout.ROTATE_HALF) {
                                    // HF: x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1); cos/sin repeat over halves
                                    ref[o + i] = xd[o + i] * c + (-xd[o + rot / 2 + i]) * s;
                                    ref[o + rot / 2 + i] = xd[o + rot / 2 + i] * c + xd[o + i] * s;
                                } else {
                                    // Meta: view pairs as complex numbers and multiply by e^{i ang}
                                    double re = xd[o + 2 * i], im = xd[o + 2 * i + 1];
                                    ref[o + 2 * i] = re * c - im * s;
                                    ref[o + 2 * i + 1] = re * s + im * c;
                                }
                            }
                        }
                close("rope " + layout + " " + rot + "/" + dh, ref, NnOps.rope(x, table, positions), 2e-6);
            }
    }

    @Test
    void ropeRejectsBadPositionsAndShapes() {
        RopeTable table = RopeTable.of(RopeTable.Layout.ROTATE_HALF, 4, 8, 10000);
        Tensor x = Tensor.zeros(1, 2, 1, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NnOps.rope(x, table, new int[] {0, 8}));
        assertTrue(e.getMessage().contains("position 8 at index 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NnOps.rope(x, table, new int[] {0}));
        assertThrows(IllegalArgumentException.class, () -> NnOps.rope(Tensor.zeros(1, 2, 1, 6), table, new int[] {0, 1}));
    }

    // ------------------------------------------------------------------ attention

    /** softmax(q k^T * scale + mask) v per (b, h), scores materialised, in double; fully masked rows give 0. */
    private static double[] attentionRef(Tensor q, Tensor k, Tensor v, boolean causal, int off, Tensor mask, float scale) {
        int B = q.dim(0), T = q.dim(1), Hq = q.dim(2), dh = q.dim(3), S = k.dim(1), Hkv = k.dim(2);
        double[] out = new double[B * T * Hq * dh];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < Hq; h++) {
                int kh = h / (Hq / Hkv);
                for (int i = 0; i < T; i++) {
                    double[] s = new double[S];
                    double m = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < S; j++) {
                        double dot = 0;
                        for (int e = 0; e < dh; e++) dot += (double) q.get(b, i, h, e) * k.get(b, j, kh, e);
                        s[j] = dot * scale + (mask == null ? 0 : maskAt(mask, b, h, i, j));
                        if (causal && j > off + i) s[j] = Double.NEGATIVE_INFINITY;
                        m = Math.max(m, s[j]);
                    }
                    if (m == Double.NEGATIVE_INFINITY) continue;
                    double z = 0;
                    for (int j = 0; j < S; j++) z += Math.exp(s[j] - m);
                    for (int e = 0; e < dh; e++) {
                        double acc = 0;
                        for (int j = 0; j < S; j++) acc += Math.exp(s[j] - m) / z * v.get(b, j, kh, e);
                        out[((b * T + i) * Hq + h) * dh + e] = acc;
                    }
                }
            }
        return out;
    }

    private static float maskAt(Tensor mask, int... idx4) {
        int r = mask.rank();
        int[] idx = new int[r];
        for (int a = 0; a < r; a++) {
            int t = idx4[4 - r + a];
            idx[a] = mask.dim(a) == 1 ? 0 : t;
        }
        return mask.get(idx);
    }

    @Test
    void attentionMatchesExplicitSoftmaxReference() {
        SplittableRandom rng = new SplittableRandom(5);
        float ninf = Float.NEGATIVE_INFINITY;
        // {B, T, S, Hq, Hkv, Dh, causal, offset, maskKind}: maskKind 0 none, 1 [B,1,T,S] with -inf padding, 2 [T,S], 3 [Hq,1,S]
        int[][] cases = {
                {1, 1, 1, 1, 1, 1, 0, 0, 0},
                {2, 7, 7, 4, 2, 16, 1, 0, 0},
                {1, 37, 70, 2, 1, 24, 1, 33, 0},     // crosses query blocks and key tiles, KV-cache style offset
                {2, 5, 9, 3, 3, 67, 0, 0, 1},
                {1, 40, 130, 6, 2, 8, 0, 0, 2},
                {2, 3, 12, 4, 1, 5, 1, 9, 3},
                {1, 1, 200, 8, 2, 64, 1, 199, 0},    // single-token decode against a long cache
        };
        for (int[] c : cases) {
            int B = c[0], T = c[1], S = c[2], Hq = c[3], Hkv = c[4], dh = c[5], off = c[7], mk = c[8];
            boolean causal = c[6] == 1;
            Tensor q = Tensor.randn(rng.nextLong(), 1f, B, T, Hq, dh), k = Tensor.randn(rng.nextLong(), 1f, B, S, Hkv, dh),
                    v = Tensor.randn(rng.nextLong(), 1f, B, S, Hkv, dh);
            Tensor mask = switch (mk) {
                case 1 -> {
                    Tensor m = Tensor.zeros(B, 1, T, S);
                    for (int b = 0; b < B; b++) for (int i = 0; i < T; i++) for (int j = S - 1 - b; j < S; j++) m.set(ninf, b, 0, i, j);
                    yield m;
                }
                case 2 -> Tensor.randn(rng.nextLong(), 2f, T, S);
                case 3 -> Tensor.randn(rng.nextLong(), 2f, Hq, 1, S);
                default -> null;
            };
            float scale = (float) (1 / Math.sqrt(dh));
            String label = Arrays.toString(c);
            close("attention " + label, attentionRef(q, k, v, causal, off, mask, scale), NnOps.attention(q, k, v, causal, off, mask, scale), 2e-5);
        }
    }

    @Test
    void fullyMaskedAttentionRowsAreZero() {
        int B = 1, T = 3, S = 4, H = 2, dh = 5;
        Tensor q = Tensor.randn(1, 1f, B, T, H, dh), k = Tensor.randn(2, 1f, B, S, H, dh), v = Tensor.randn(3, 1f, B, S, H, dh).requiresGrad(true);
        Tensor mask = Tensor.zeros(T, S);
        for (int j = 0; j < S; j++) mask.set(Float.NEGATIVE_INFINITY, 1, j);   // query row 1 sees nothing
        try (Tape tape = Tape.record()) {
            Tensor out = NnOps.attention(q, k, v, false, 0, mask, 0.5f);
            for (int h = 0; h < H; h++) for (int e = 0; e < dh; e++) assertEquals(0f, out.get(0, 1, h, e));
            for (float x : out.toFloatArray()) assertTrue(Float.isFinite(x));
            tape.backward(out, Tensor.full(1f, out.shape()));
        }
        for (float g : v.grad().toFloatArray()) assertTrue(Float.isFinite(g));
    }

    @Test
    void attentionReadsStridedViewsLikeTheirDenseCopies() {
        int B = 2, T = 3, maxS = 16, S = 9, Hkv = 2, Hq = 4, dh = 8;
        Tensor cacheK = Tensor.randn(1, 1f, B, maxS, Hkv, dh), cacheV = Tensor.randn(2, 1f, B, maxS, Hkv, dh);
        Tensor k = cacheK.slice(1, 0, S), v = cacheV.slice(1, 0, S);              // batch-strided: read in place
        Tensor qBig = Tensor.randn(3, 1f, B, Hq, T, dh);
        Tensor q = qBig.transpose(1, 2);                                           // permuted: copied
        assertTrue(!k.isContiguous() && !q.isContiguous());
        Tensor strided = NnOps.attention(q, k, v, true, S - T, null, 0.3f);
        Tensor dense = NnOps.attention(q.copyToF32(), k.copyToF32(), v.copyToF32(), true, S - T, null, 0.3f);
        assertArrayEquals(dense.toFloatArray(), strided.toFloatArray());
    }

    @Test
    void attentionRejectsInconsistentShapes() {
        Tensor q = Tensor.zeros(1, 2, 3, 4), k = Tensor.zeros(1, 5, 2, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NnOps.attention(q, k, k, false));
        assertTrue(e.getMessage().contains("multiple of kv heads 2"), e.getMessage());
        Tensor q2 = Tensor.zeros(1, 6, 2, 4);
        e = assertThrows(IllegalArgumentException.class, () -> NnOps.attention(q2, k, k, true, 0, null, 1f));
        assertTrue(e.getMessage().contains("offset + T <= S"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NnOps.attention(Tensor.zeros(1, 2, 2, 4), k, k, false, 0, Tensor.zeros(3, 5), 1f));
        assertTrue(e.getMessage().contains("does not broadcast"), e.getMessage());
    }

    // ------------------------------------------------------------------ dropout

    @Test
    void dropoutIsSeededInvertedAndIdentityWhenOff() {
        Tensor x = Tensor.full(2f, 100_003);
        float p = 0.25f;
        float[] a = NnOps.dropout(x, p, 77, true).toFloatArray(), b = NnOps.dropout(x, p, 77, true).toFloatArray();
        float[] c = NnOps.dropout(x, p, 78, true).toFloatArray();
        assertArrayEquals(a, b, "same seed, same mask");
        assertNotEquals(Arrays.toString(a), Arrays.toString(c), "different seed, different mask");
        int dropped = 0;
        for (float e : a) {
            if (e == 0f) dropped++;
            else assertEquals(2f / (1 - p), e, 1e-6);
        }
        // binomial(100003, 0.25): sd ~137, so 6 sd is ~820
        assertEquals(p * a.length, dropped, 820);
        assertSame(x, NnOps.dropout(x, p, 1, false));
        assertSame(x, NnOps.dropout(x, 0f, 1, true));
        for (float e : NnOps.dropout(x, 1f, 1, true).toFloatArray()) assertEquals(0f, e);
        assertThrows(IllegalArgumentException.class, () -> NnOps.dropout(x, 1.5f, 1, true));
    }

    @Test
    void dropoutKeepsExactlyTheDrawnElements() {
        // Against the draw itself (NnMath.dropoutKeep of the element's index), over sizes that the pool splits into
        // chunks: kept elements are x * scale, dropped ones +0 even where x is inf or NaN; the gradient is dy * scale
        // where kept and +0 (untouched) elsewhere. Compared bit for bit.
        long seed = 0x123456789ABCDEFL;
        for (int n : new int[] {1, 17, 5_000, 70_001})
            for (float p : new float[] {0.05f, 0.3f, 0.999f}) {
                float[] xv = Tensor.randn(n, 3f, n).toFloatArray();
                xv[0] = Float.POSITIVE_INFINITY;
                xv[n / 2] = Float.NaN;
                Tensor x = Tensor.of(xv, n).requiresGrad(true), dy = Tensor.randn(n + 1, 2f, n);
                float[] y;
                try (Tape tape = Tape.record()) {
                    Tensor out = NnOps.dropout(x, p, seed, true);
                    y = out.toFloatArray();
                    tape.backward(out, dy);
                }
                float[] g = x.grad().toFloatArray(), dyv = dy.toFloatArray();
                float scale = 1f / (1f - p);
                int threshold = (int) Math.ceil(p * (double) (1 << 24));
                for (int i = 0; i < n; i++) {
                    boolean keep = io.peft4j.kernels.NnMath.dropoutKeep(seed, i, threshold);
                    assertEquals(Float.floatToRawIntBits(keep ? xv[i] * scale : 0f), Float.floatToRawIntBits(y[i]), "n " + n + " p " + p + ": y[" + i + "]");
                    assertEquals(Float.floatToRawIntBits(keep ? dyv[i] * scale : 0f), Float.floatToRawIntBits(g[i]), "n " + n + " p " + p + ": dx[" + i + "]");
                }
            }
    }

    // ------------------------------------------------------------------ input layouts and dtypes

    @Test
    void stridedLeafGetsItsGradientInLogicalOrder() {
        Tensor base = Tensor.randn(9, 1f, 5, 4);
        Tensor view = base.transpose(0, 1).requiresGrad(true);     // [4, 5], not contiguous
        Tensor copy = view.copyToF32().requiresGrad(true);
        Tensor seed = Tensor.randn(10, 1f, 4, 5);
        try (Tape tape = Tape.record()) {
            tape.backward(NnOps.softmax(view), seed);
        }
        try (Tape tape = Tape.record()) {
            tape.backward(NnOps.softmax(copy), seed);
        }
        assertArrayEquals(copy.grad().toFloatArray(), view.grad().toFloatArray());
    }

    @Test
    void bf16SegmentInputIsReadAsF32() {
        int rows = 3, n = 21;
        Tensor f32 = Tensor.randn(12, 1f, rows, n);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(2L * rows * n);
            ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            float[] rounded = new float[rows * n];
            for (int i = 0; i < rows * n; i++) {
                short bits = DType.floatToBf16(f32.data()[i]);
                seg.setAtIndex(le, i, bits);
                rounded[i] = DType.bf16ToFloat(bits);
            }
            Tensor bf = Tensor.ofSegment(seg, DType.BF16, rows, n);
            assertArrayEquals(NnOps.rmsNorm(Tensor.of(rounded, rows, n), null, 1e-5f).toFloatArray(), NnOps.rmsNorm(bf, null, 1e-5f).toFloatArray());
        }
    }
}
