package io.peft4j.adapters.init;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.linalg.Dense;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The defining math of NLoRA / SLoRA / IntTune (arXiv 2502.14482): the Nyström factors reproduce W exactly when W has
 * rank r, equal the explicit Nyström formula on a general W, and the three methods train the paper's parameter counts.
 * The invariants on a model (identity at init, merge, gradients, save/load, export) are in
 * {@code io.peft4j.adapters.WeightDrivenMethodsTest}.
 */
class NLoraTest {
    private static double[] randn(long seed, int rows, int cols) {
        return Dense.fromTensor(Tensor.randn(seed, 1f, rows, cols));
    }

    /** A matrix of rank exactly r that F32 holds exactly: the product of two integer factors (entries well below 2^24). */
    private static double[] exactRank(long seed, int rows, int cols, int r) {
        double[] g = randn(seed, rows, r), h = randn(seed + 1, r, cols);
        for (int i = 0; i < g.length; i++) g[i] = Math.rint(64 * g[i]);
        for (int i = 0; i < h.length; i++) h[i] = Math.rint(64 * h[i]);
        return Dense.matmul(g, rows, r, h, cols);
    }

    /** The tensor of a double matrix, rounded to F32 (the sketch reads F32 weights). */
    private static Tensor f32(double[] a, int rows, int cols) { return Dense.toTensor(a, rows, cols); }

    private static double relErr(double[] want, double[] got) {
        return Dense.frobeniusDiff(want, got) / Dense.frobenius(want);
    }

    /** Inverse of a non-singular n x n matrix by Gauss-Jordan with partial pivoting (independent of the code under test). */
    private static double[] inverse(double[] a, int n) {
        double[] m = a.clone(), inv = Dense.identity(n);
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int i = c + 1; i < n; i++) if (Math.abs(m[i * n + c]) > Math.abs(m[p * n + c])) p = i;
            for (int j = 0; j < n; j++) {
                double t = m[c * n + j]; m[c * n + j] = m[p * n + j]; m[p * n + j] = t;
                t = inv[c * n + j]; inv[c * n + j] = inv[p * n + j]; inv[p * n + j] = t;
            }
            double d = m[c * n + c];
            for (int j = 0; j < n; j++) { m[c * n + j] /= d; inv[c * n + j] /= d; }
            for (int i = 0; i < n; i++) {
                if (i == c) continue;
                double f = m[i * n + c];
                for (int j = 0; j < n; j++) { m[i * n + j] -= f * m[c * n + j]; inv[i * n + j] -= f * inv[c * n + j]; }
            }
        }
        return inv;
    }

    @ParameterizedTest
    @ValueSource(strings = {"first", "random", "gaussian", "gaussian-oversampled", "random-oversampled"})
    void aRankRMatrixIsReconstructedExactly(String kind) {
        int out = 14, in = 11, r = 3;
        double[] wf = exactRank(1, out, in, r);
        Tensor wt = f32(wf, out, in);
        SplittableRandom rng = new SplittableRandom(5);
        LowRankSketch.Sketch s = switch (kind) {
            case "first" -> LowRankSketch.Sketch.first(r, 0);
            case "random" -> LowRankSketch.Sketch.random(out, in, r, 0, rng);
            case "random-oversampled" -> LowRankSketch.Sketch.random(out, in, r, 4, rng);
            case "gaussian" -> LowRankSketch.Sketch.gaussian(out, in, r, 0, rng);
            default -> LowRankSketch.Sketch.gaussian(out, in, r, 3, rng);
        };
        LowRankSketch.Nystrom n = LowRankSketch.nystrom(wt, s, true);
        assertEquals(r, n.r());
        assertTrue(relErr(wf, n.product()) < 1e-9, kind + ": rank-r W must be reproduced, rel err " + relErr(wf, n.product()));
    }

    @Test
    void columnRowSketchIsColumnsTimesInverseIntersectionTimesRows() {
        int out = 16, in = 12, r = 4;
        double[] w = Dense.fromTensor(Tensor.randn(3, 1f, out, in));
        Tensor wt = f32(w, out, in);
        LowRankSketch.Nystrom n = LowRankSketch.nystrom(wt, LowRankSketch.Sketch.first(r, 0), true);
        double[] w11 = new double[r * r];
        for (int i = 0; i < r; i++) for (int j = 0; j < r; j++) w11[i * r + j] = w[i * in + j];
        double[] inv = inverse(w11, r);
        for (int o = 0; o < out; o++) for (int j = 0; j < r; j++) assertEquals(w[o * in + j], n.b()[o * r + j], 0, "B = W[:, :r]");
        for (int i = 0; i < r; i++) for (int c = 0; c < in; c++) assertEquals(w[i * in + c], n.a()[i * in + c], 0, "A = W[:r, :]");
        for (int i = 0; i < r * r; i++) assertEquals(inv[i], n.core()[i], 1e-9 * (1 + Math.abs(inv[i])), "M = W[:r, :r]^-1");
        // the sketch is exact on the sampled rows and columns, and only there
        double[] p = n.product();
        for (int o = 0; o < out; o++)
            for (int c = 0; c < in; c++)
                if (o < r || c < r) assertEquals(w[o * in + c], p[o * in + c], 1e-9, "Nyström interpolates row " + o + " col " + c);
        assertTrue(relErr(w, p) > 0.1, "a full-rank W is not reproduced by a rank-" + r + " sketch");
    }

    @Test
    void gaussianSketchWithOversamplingEqualsTheGeneralisedNystromFormula() {
        int out = 15, in = 13, r = 3, p = 4, l = r + p;
        double[] w = Dense.fromTensor(Tensor.randn(4, 1f, out, in));
        LowRankSketch.Sketch s = LowRankSketch.Sketch.gaussian(out, in, r, p, new SplittableRandom(8));
        LowRankSketch.Nystrom n = LowRankSketch.nystrom(f32(w, out, in), s, true);
        // explicit: W X (Y^T W X)^+ Y^T W, with K^+ = (K^T K)^-1 K^T for the full-column-rank K [l, r]
        double[] wx = Dense.matmul(w, out, in, s.x(), r);                 // [out, r]
        double[] ytw = Dense.matmulTN(s.y(), out, l, w, in);              // [l, in]
        double[] k = Dense.matmulTN(s.y(), out, l, wx, r);                // [l, r]
        double[] ktkInv = inverse(Dense.matmulTN(k, l, r, k, r), r);      // [r, r]
        double[] kPlus = Dense.matmulNT(ktkInv, r, r, k, l);              // [r, l]
        double[] want = Dense.matmul(Dense.matmul(wx, out, r, kPlus, l), out, l, ytw, in);
        assertTrue(relErr(want, n.product()) < 1e-9, "B M A == W X (Y^T W X)^+ Y^T W, rel err " + relErr(want, n.product()));
        for (int i = 0; i < wx.length; i++) assertEquals(wx[i], n.b()[i], 1e-12 * (1 + Math.abs(wx[i])), "B = W X");
        // the reduction keeps the core square: r x r, A [r, in]
        assertEquals(r * r, n.core().length);
        assertEquals(r * in, n.a().length);
    }

    @Test
    void submatrixCoreIsTheAuthorsUninvertedIntersection() {
        int out = 9, in = 7, r = 2;
        double[] w = Dense.fromTensor(Tensor.randn(6, 1f, out, in));
        LowRankSketch.Nystrom n = LowRankSketch.nystrom(f32(w, out, in), LowRankSketch.Sketch.first(r, 0), false);
        for (int i = 0; i < r; i++) for (int j = 0; j < r; j++) assertEquals(w[i * in + j], n.core()[i * r + j], 0);
        assertThrows(IllegalArgumentException.class, () -> LowRankSketch.nystrom(f32(w, out, in), LowRankSketch.Sketch.first(r, 1), false));
    }

    @Test
    void pseudoInverseDropsTheNullSpaceOfASingularCore() {
        // rank-1 2x2: the inverse does not exist, the pseudo-inverse does (A^+ = A^T / ||A||_F^2 for rank one)
        double[] a = {1, 2, 2, 4};
        double[] p = LowRankSketch.pinv(a, 2, 2);
        double[] want = {1 / 25.0, 2 / 25.0, 2 / 25.0, 4 / 25.0};
        for (int i = 0; i < 4; i++) assertEquals(want[i], p[i], 1e-12);
        double[] rect = Dense.fromTensor(Tensor.randn(9, 1f, 3, 5));
        double[] rp = LowRankSketch.pinv(rect, 3, 5);   // [5, 3]: A A^+ = I for a full-row-rank A
        double[] eye = Dense.matmul(rect, 3, 5, rp, 3);
        for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) assertEquals(i == j ? 1 : 0, eye[i * 3 + j], 1e-10);
    }

    // ------------------------------------------------------------------------------------------------ on a model

    private static final LoraConfig CONFIG = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj").build();

    private static LoraModel adapt(TinyModule m, String method, Map<String, String> opts) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", CONFIG, MethodConfig.of(method, opts), null, null);
        return lm;
    }

    private static long sum(TinyModule m, java.util.function.ToLongFunction<Linear> f) {
        long s = 0;
        for (Linear l : m.linears().values()) s += f.applyAsLong(l);
        return s;
    }

    @Test
    void trainableCountsAreThePapersFormulas() {
        int r = CONFIG.r();
        TinyModule m1 = TinyModule.standard(1);
        long slora = adapt(m1, "slora", Map.of()).trainableCount("default");
        assertEquals(sum(m1, l -> (long) r * (l.inFeatures() + l.outFeatures()) + (long) r * r), slora, "SLoRA: r(in + out) + r^2 per layer");

        TinyModule m2 = TinyModule.standard(1);
        assertEquals(slora, adapt(m2, "nlora", Map.of()).trainableCount("default"), "NLoRA trains what SLoRA trains");

        TinyModule m3 = TinyModule.standard(1);
        LoraModel it = adapt(m3, "inttune", Map.of());
        assertEquals((long) m3.linears().size() * r * r, it.trainableCount("default"), "IntTune: r^2 per layer");
        for (LoraLayer l : it.layers("default").values()) {
            assertFalse(l.loraA().requiresGrad(), "IntTune freezes A");
            assertFalse(l.loraB().requiresGrad(), "IntTune freezes B");
            assertTrue(l.mid().requiresGrad() && l.mid().rank() == 2 && l.mid().dim(0) == r && l.mid().dim(1) == r, "IntTune trains the r x r M");
        }
    }

    @Test
    void sloraStartsAtZeroWithKaimingAAndM() {
        TinyModule m = TinyModule.standard(2);
        for (Map.Entry<String, LoraLayer> e : adapt(m, "slora", Map.of()).layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            for (float v : l.loraB().toFloatArray()) assertEquals(0f, v, e.getKey() + ": B starts at zero");
            double boundA = 1 / Math.sqrt(l.base().inFeatures()), boundM = 1 / Math.sqrt(l.rank());
            float maxA = 0, maxM = 0;
            for (float v : l.loraA().toFloatArray()) maxA = Math.max(maxA, Math.abs(v));
            for (float v : l.mid().toFloatArray()) maxM = Math.max(maxM, Math.abs(v));
            assertTrue(maxA <= boundA && maxA > boundA / 4, e.getKey() + ": A ~ U(-1/sqrt(in), 1/sqrt(in)), max " + maxA);
            assertTrue(maxM <= boundM && maxM > 0, e.getKey() + ": M ~ U(-1/sqrt(r), 1/sqrt(r)), max " + maxM);
            assertTrue(l.mid().requiresGrad() && l.loraA().requiresGrad() && l.loraB().requiresGrad());
        }
    }

    @Test
    void nloraMovesARankRWeightEntirelyIntoTheAdapter() {
        int r = CONFIG.r();
        TinyModule m = new TinyModule();
        double[] wf = exactRank(21, 10, 9, r);
        m.with("model.layers.0.self_attn.q_proj", f32(wf, 10, 9));
        LoraModel lm = adapt(m, "nlora", Map.of());
        LoraLayer l = lm.layers("default").get("model.layers.0.self_attn.q_proj");
        double[] delta = Dense.fromTensor(l.deltaWeight());     // s B M A
        // the factors are F32: M's rounding (amplified by the conditioning of W[:r, :r]) bounds the match at ~1e-6
        assertTrue(relErr(wf, delta) < 1e-5, "s B M A == W for a rank-r W, rel err " + relErr(wf, delta));
        assertTrue(Dense.maxAbs(Dense.fromTensor(l.base().weight())) < 1e-5 * Dense.maxAbs(wf), "the residual base W - s B M A is ~0");
        // M carries 1/s: B M A itself is the sketch divided by the scaling
        assertEquals(CONFIG.scalingFor("q_proj"), l.scaling(), 0);
    }

    @Test
    void defaultInitIsTheOversampledColumnRowNystromOfW() {
        TinyModule m = TinyModule.standard(6);
        Map<String, double[]> weights = new java.util.LinkedHashMap<>();
        m.linears().forEach((k, v) -> weights.put(k, Dense.fromTensor(v.weight())));
        LoraModel lm = adapt(m, "nlora", Map.of());
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            int r = l.rank(), out = l.base().outFeatures(), in = l.base().inFeatures();
            int rows = r + Math.min((r + 1) / 2, out - r);   // oversample=auto: ceil(r/2) extra rows, as many as fit
            double[] w = weights.get(e.getKey());
            // explicit C K^+ R' with C = W[:, :r], K = W[:rows, :r], R' = W[:rows, :], K^+ = (K^T K)^-1 K^T
            double[] c = new double[out * r], k = new double[rows * r], rp = java.util.Arrays.copyOf(w, rows * in);
            for (int o = 0; o < out; o++) for (int j = 0; j < r; j++) c[o * r + j] = w[o * in + j];
            for (int i = 0; i < rows; i++) for (int j = 0; j < r; j++) k[i * r + j] = w[i * in + j];
            double[] kPlus = Dense.matmulNT(inverse(Dense.matmulTN(k, rows, r, k, r), r), r, r, k, rows);
            double[] want = Dense.matmul(Dense.matmul(c, out, r, kPlus, rows), out, rows, rp, in);
            double[] delta = Dense.fromTensor(l.deltaWeight()), base = Dense.fromTensor(l.base().weight());
            assertTrue(relErr(want, delta) < 1e-5, e.getKey() + ": s B M A is the Nyström sketch, rel err " + relErr(want, delta));
            for (int i = 0; i < w.length; i++) assertEquals(w[i], base[i] + delta[i], 1e-5 * (1 + Math.abs(w[i])), e.getKey() + ": residual + sketch == W");
        }
    }

    @Test
    void intTuneStartsFromExactlyNLorasFactors() {
        Map<String, String> opts = Map.of("sketch", "gaussian", "oversample", "2");
        LoraModel n = adapt(TinyModule.standard(3), "nlora", opts);
        LoraModel t = adapt(TinyModule.standard(3), "inttune", opts);
        for (String module : n.layers("default").keySet()) {
            LoraLayer a = n.layers("default").get(module), b = t.layers("default").get(module);
            assertArrayEquals(a.loraA().toFloatArray(), b.loraA().toFloatArray(), module);
            assertArrayEquals(a.loraB().toFloatArray(), b.loraB().toFloatArray(), module);
            assertArrayEquals(a.mid().toFloatArray(), b.mid().toFloatArray(), module);
        }
    }

    @Test
    void residualFalseKeepsTheBaseAndStartsAtWPlusTheSketch() {
        TinyModule m = TinyModule.standard(4);
        Map<String, Tensor> before = new java.util.LinkedHashMap<>();
        m.linears().forEach((k, v) -> before.put(k, v.weight()));
        LoraModel lm = adapt(m, "nlora", Map.of("residual", "false"));
        assertTrue(lm.baseOffsets("default").isEmpty());
        m.linears().forEach((k, v) -> assertSame(before.get(k), v.weight(), k + ": base untouched"));
        LoraLayer l = lm.layers("default").get("model.layers.0.self_attn.q_proj");
        assertTrue(Dense.frobenius(Dense.fromTensor(l.deltaWeight())) > 0.1, "the adapter starts non-zero");
    }

    @Test
    void badOptionsNameTheOptionAndTheLayer() {
        var e = assertThrows(IllegalArgumentException.class, () -> adapt(TinyModule.standard(5), "nlora", Map.of("sketch", "columns")));
        assertTrue(e.getMessage().contains("sketch") && e.getMessage().contains("columns"), e.getMessage());
        var c = assertThrows(IllegalArgumentException.class, () -> adapt(TinyModule.standard(5), "inttune", Map.of("core", "submatrix", "oversample", "2")));
        assertTrue(c.getMessage().contains("inttune") && c.getMessage().contains("oversample"), c.getMessage());
        // a rank the (4-row) v_proj cannot hold: named, and the layers rewritten before it are restored
        TinyModule m = TinyModule.standard(5);
        float[] q = m.linears().get("model.layers.0.self_attn.q_proj").weight().toFloatArray();
        LoraConfig tooBig = CONFIG.toBuilder().r(5).alpha(5).build();
        var f = assertThrows(IllegalArgumentException.class,
                () -> new LoraModel(m, 1).add("default", tooBig, MethodConfig.of("nlora"), null, null));
        assertTrue(f.getMessage().contains("v_proj") && f.getMessage().contains("r=5"), f.getMessage());
        assertArrayEquals(q, m.linears().get("model.layers.0.self_attn.q_proj").weight().toFloatArray());
    }
}
