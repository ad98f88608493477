package io.peft4j.adapters;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.linalg.Svd;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * EVA on {@link ToyModel}: A rows are the top right-singular vectors of the activations the layers saw, ranks are
 * redistributed under the budget, calibration stops once the components are stable, and the adapter is an
 * ordinary LoRA for identity at init, merge, save / load (with its rank_pattern) and export.
 */
class EvaToyTest {
    private static final LoraConfig CONFIG = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj").build();
    /** tau = 1: no component ever counts as converged, so every module sees every batch. */
    private static final Map<String, String> ALL_BATCHES = Map.of("tau", "1", "rho", "4");

    private static ToyModel toy() { return new ToyModel(1, 12, 20, 11, 2); }

    private static Tensor input() { return Tensor.randn(7, 1f, 5, 12); }

    /** Counts the forward passes a method asks for. */
    static final class Counting implements Calibration {
        final Calibration inner;
        int calls;
        Counting(Calibration inner) { this.inner = inner; }
        @Override public int batches() { return inner.batches(); }
        @Override public Tensor loss(int i) { calls++; return inner.loss(i); }
        @Override public boolean[] realTokens(int i) { return inner.realTokens(i); }
    }

    /** {@code n} copies of batch 0: the activations never change, so the components are stable after two batches. */
    static Calibration repeated(Calibration inner, int n) {
        return new Calibration() {
            @Override public int batches() { return n; }
            @Override public Tensor loss(int i) { return inner.loss(0); }
        };
    }

    private static LoraModel eva(ToyModel m, LoraConfig config, Map<String, String> options, Calibration cal, PrintStream log) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", config, MethodConfig.of("eva", options), cal, log);
        return lm;
    }

    /** The input rows [N, in] each targeted module of a fresh toy sees over the first {@code n} batches. */
    private static Map<String, double[][]> collect(List<String> modules, int n) {
        ToyModel fresh = toy();
        Map<String, Linear> targets = new LinkedHashMap<>();
        for (String name : modules) targets.put(name, fresh.linears().get(name));
        Map<String, List<float[]>> rows = new LinkedHashMap<>();
        Calibrator.inputActivations(targets, new ToyCalibration(fresh, 4, 6, 11), n, (name, x) -> {
            float[] d = x.toFloatArray();
            int in = x.dim(1);
            for (int r = 0; r < x.dim(0); r++) {
                float[] row = new float[in];
                System.arraycopy(d, r * in, row, 0, in);
                rows.computeIfAbsent(name, k -> new ArrayList<>()).add(row);
            }
        }, null);
        Map<String, double[][]> out = new LinkedHashMap<>();
        rows.forEach((k, v) -> {
            double[][] a = new double[v.size()][];
            for (int i = 0; i < a.length; i++) { a[i] = new double[v.get(i).length]; for (int j = 0; j < a[i].length; j++) a[i][j] = v.get(i)[j]; }
            out.put(k, a);
        });
        return out;
    }

    private static double[] flat(double[][] x) {
        int n = x.length, d = x[0].length;
        double[] f = new double[n * d];
        for (int i = 0; i < n; i++) System.arraycopy(x[i], 0, f, i * d, d);
        return f;
    }

    /** |cos| between row i of A [r, in] and row i of V^T [k, in]. */
    private static double absCos(float[] a, double[] vt, int i, int in) {
        double d = 0, na = 0, nb = 0;
        for (int j = 0; j < in; j++) { d += a[i * in + j] * vt[i * in + j]; na += (double) a[i * in + j] * a[i * in + j]; nb += vt[i * in + j] * vt[i * in + j]; }
        return Math.abs(d) / Math.sqrt(na * nb);
    }

    @Test
    void aRowsAreTheTopRightSingularVectorsOfTheCollectedActivations() {
        ToyModel m = toy();
        Counting cal = new Counting(new ToyCalibration(m, 4, 6, 11));
        LoraModel lm = eva(m, CONFIG, ALL_BATCHES, cal, null);
        assertEquals(4, cal.calls, "tau = 1: every calibration batch is used");
        Map<String, LoraLayer> layers = lm.layers("default");
        Map<String, double[][]> acts = collect(new ArrayList<>(layers.keySet()), cal.calls);
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            double[][] x = acts.get(e.getKey());
            int in = x[0].length;
            double[] vt = Svd.thin(flat(x), x.length, in).vt();
            LoraLayer l = e.getValue();
            float[] a = l.loraA().toFloatArray();
            assertTrue(l.rank() >= 1, e.getKey());
            for (int i = 0; i < l.rank(); i++)
                assertEquals(1.0, absCos(a, vt, i, in), 1e-5, e.getKey() + ": A row " + i + " is right-singular vector " + i + " (up to sign)");
            for (int i = 0; i < l.rank(); i++) {
                double norm = 0;
                for (int j = 0; j < in; j++) norm += (double) a[i * in + j] * a[i * in + j];
                assertEquals(1, norm, 1e-5, e.getKey() + ": A row " + i + " has unit norm without whitening");
            }
            for (float b : l.loraB().toFloatArray()) assertEquals(0f, b, e.getKey() + ": B starts at zero");
        }
    }

    @Test
    void redistributedRanksSumToTheBudgetRespectTheCapAndFollowExplainedVariance() {
        ToyModel m = toy();
        Counting cal = new Counting(new ToyCalibration(m, 4, 6, 11));
        LoraModel lm = eva(m, CONFIG, Map.of("tau", "1"), cal, null);      // rho = 2 (default): cap 6
        LoraConfig fc = lm.config("default");
        Map<String, LoraLayer> layers = lm.layers("default");
        assertEquals(6, layers.size());
        int sum = 0;
        boolean varied = false;
        for (Map.Entry<String, LoraLayer> e : layers.entrySet()) {
            Linear lin = e.getValue().base();
            int r = e.getValue().rank();
            int cap = Math.min(6, Math.min(lin.inFeatures(), lin.outFeatures()));
            assertTrue(r >= 1 && r <= cap, e.getKey() + ": rank " + r + " outside [1, " + cap + "]");
            assertEquals(r, fc.rankFor(e.getKey()), e.getKey() + ": the final config's rank_pattern gives the layer's rank");
            assertEquals(r != 3, fc.rankPattern().containsKey(e.getKey()), e.getKey() + ": listed in rank_pattern iff its rank differs from r");
            varied |= r != 3;
            sum += r;
        }
        assertEquals(3 * 6, sum, "ranks sum to r x modules");
        assertTrue(varied, "the toy's modules have different spectra, so the ranks should move");

        // the choice is the largest explained-variance ratios: no left-out component explains more than a chosen one
        // (beyond each module's guaranteed first rank). With rho = 4 every layer's streaming SVD holds all of its
        // columns, so its ratios are exact and can be compared with a one-shot SVD of the collected activations.
        ToyModel m4 = toy();
        Counting cal4 = new Counting(new ToyCalibration(m4, 4, 6, 11));
        Map<String, LoraLayer> layers4 = eva(m4, CONFIG, ALL_BATCHES, cal4, null).layers("default");
        Map<String, double[][]> acts = collect(new ArrayList<>(layers4.keySet()), cal4.calls);
        double smallestTaken = Double.POSITIVE_INFINITY, largestLeft = 0;
        int sum4 = 0;
        for (Map.Entry<String, LoraLayer> e : layers4.entrySet()) {
            sum4 += e.getValue().rank();
            double[][] x = acts.get(e.getKey());
            double[] xs = flat(x);
            double total = 0;
            for (double v : xs) total += v * v;
            double[] s = Svd.thin(xs, x.length, x[0].length).s();
            Linear lin = e.getValue().base();
            int cap = Math.min(12, Math.min(lin.inFeatures(), lin.outFeatures()));
            assertTrue(e.getValue().rank() <= cap, e.getKey());
            for (int i = 1; i < cap; i++) {
                double ratio = i < s.length ? s[i] * s[i] / total : 0;
                if (i < e.getValue().rank()) smallestTaken = Math.min(smallestTaken, ratio);
                else largestLeft = Math.max(largestLeft, ratio);
            }
        }
        assertEquals(3 * 6, sum4);
        assertTrue(smallestTaken >= largestLeft * (1 - 1e-9), "smallest chosen ratio " + smallestTaken + " < largest left out " + largestLeft);
    }

    @Test
    void calibrationStopsOnceTheComponentsAreStable() {
        ToyModel m = toy();
        Counting same = new Counting(repeated(new ToyCalibration(m, 1, 6, 11), 10));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        eva(m, CONFIG, Map.of(), same, new PrintStream(out, true, StandardCharsets.UTF_8));
        assertEquals(2, same.calls, "identical batches: the second batch reproduces the components, so EVA stops there");
        String log = out.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("6/6 activation SVDs converged"), log);
        assertFalse(log.contains("not converged"), log);

        ToyModel m2 = toy();
        Counting varying = new Counting(new ToyCalibration(m2, 8, 6, 11));
        eva(m2, CONFIG, Map.of("tau", "1", "batches", "5"), varying, null);
        assertEquals(5, varying.calls, "unstable components: stops at the batches option");

        ToyModel m3 = toy();
        Counting few = new Counting(new ToyCalibration(m3, 3, 6, 11));
        ByteArrayOutputStream out3 = new ByteArrayOutputStream();
        eva(m3, CONFIG, Map.of("tau", "1"), few, new PrintStream(out3, true, StandardCharsets.UTF_8));
        assertEquals(3, few.calls, "and at the end of the calibration data");
        assertTrue(out3.toString(StandardCharsets.UTF_8).contains("not converged after 3 batch(es)"), out3.toString(StandardCharsets.UTF_8));
    }

    @Test
    void identityAtInitAndTrainableCountIsSumOfRankTimesInPlusOut() {
        ToyModel m = toy();
        float[] before = m.forward(input()).toFloatArray();
        LoraModel lm = eva(m, CONFIG, Map.of(), new ToyCalibration(m, 4, 6, 11), null);
        assertArrayEquals(before, m.forward(input()).toFloatArray(), "EVA starts with B = 0: outputs unchanged");
        assertTrue(lm.baseOffsets("default").isEmpty(), "EVA does not rewrite the base");
        long want = 0;
        for (LoraLayer l : lm.layers("default").values()) want += (long) l.rank() * (l.base().inFeatures() + l.base().outFeatures());
        assertEquals(want, lm.trainableCount("default"), "trainables = sum_i r_i (in_i + out_i)");
        assertEquals(2 * lm.layers("default").size(), lm.parameters("default").size(), "A and B train in every layer");
    }

    @Test
    void mergedEqualsUnmerged() {
        ToyModel m = toy();
        LoraModel lm = eva(m, CONFIG, Map.of(), new ToyCalibration(m, 4, 6, 11), null);
        MethodInvariantsTest.perturb(lm, "default", 5);
        float[] adapted = m.forward(input()).toFloatArray();
        lm.merge();
        MethodInvariantsTest.assertClose(adapted, m.forward(input()).toFloatArray(), 3e-5f, "merged");
        lm.unmerge();
        assertArrayEquals(adapted, m.forward(input()).toFloatArray(), "unmerged");
    }

    @Test
    void saveLoadKeepsTheRankPatternAndExportIsAPlainLora(@TempDir Path dir) throws IOException {
        ToyModel m = toy();
        LoraModel lm = eva(m, CONFIG, Map.of("whiten", "true"), new ToyCalibration(m, 4, 6, 11), null);
        MethodInvariantsTest.perturb(lm, "default", 9);
        float[] adapted = m.forward(input()).toFloatArray();
        LoraConfig fc = lm.config("default");
        assertFalse(fc.rankPattern().isEmpty(), "the toy's ranks are redistributed");
        lm.save(dir.resolve("eva"), "default");

        List<String> warnings = new ArrayList<>();
        LoraConfig saved = LoraConfig.read(dir.resolve("eva").resolve("adapter_config.json"), warnings::add);
        assertEquals(fc.rankPattern(), saved.rankPattern(), "rank_pattern written to adapter_config.json");
        assertEquals(fc.alphaPattern(), saved.alphaPattern(), "alpha_pattern written to adapter_config.json");

        ToyModel fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 99);
        lm2.load(dir.resolve("eva"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertArrayEquals(adapted, fresh.forward(input()).toFloatArray(), "reloaded adapter gives identical outputs");
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            assertEquals(e.getValue().rank(), lm2.layers("default").get(e.getKey()).rank(), e.getKey());
            assertEquals(e.getValue().scaling(), lm2.layers("default").get(e.getKey()).scaling(), e.getKey());
        }
        assertEquals("true", lm2.method("default").string("whiten"));

        lm.exportPlainLora("default").save(dir.resolve("plain"));
        ToyModel original = toy();
        LoraModel lm3 = new LoraModel(original, 5);
        lm3.load(dir.resolve("plain"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        MethodInvariantsTest.assertClose(adapted, original.forward(input()).toFloatArray(), 3e-5f, "exported plain LoRA");
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet())
            assertEquals(e.getValue().rank(), lm3.layers("default").get(e.getKey()).rank(), e.getKey() + ": exported rank");
    }

    @Test
    void scalingIsKeptAtAlphaOverRUnlessAdjustScalingIsOff() {
        ToyModel m = toy();
        LoraModel lm = eva(m, CONFIG, Map.of(), new ToyCalibration(m, 4, 6, 11), null);
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            assertEquals(2f, l.scaling(), 1e-6f, e.getKey() + ": alpha / r = 6 / 3 whatever its new rank");
            assertEquals(6.0 * l.rank() / 3, lm.config("default").alphaFor(e.getKey()), 1e-12, e.getKey() + ": alpha scaled with the rank");
        }
        ToyModel m2 = toy();
        LoraModel plain = eva(m2, CONFIG, Map.of("adjust_scaling", "false"), new ToyCalibration(m2, 4, 6, 11), null);
        assertTrue(plain.config("default").alphaPattern().isEmpty());
        for (LoraLayer l : plain.layers("default").values()) assertEquals(6f / l.rank(), l.scaling(), 1e-6f);
    }

    @Test
    void whitenedRowsGiveUnitSecondMomentOnTheCalibrationData() {
        ToyModel m = toy();
        Map<String, String> opts = new LinkedHashMap<>(ALL_BATCHES);
        opts.put("whiten", "true");
        LoraModel lm = eva(m, CONFIG, opts, new ToyCalibration(m, 4, 6, 11), null);
        Map<String, double[][]> acts = collect(new ArrayList<>(lm.layers("default").keySet()), 4);
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            double[][] x = acts.get(e.getKey());
            float[] a = e.getValue().loraA().toFloatArray();
            int in = x[0].length;
            for (int i = 0; i < e.getValue().rank(); i++) {
                double m2 = 0;
                for (double[] row : x) {
                    double p = 0;
                    for (int j = 0; j < in; j++) p += a[i * in + j] * row[j];
                    m2 += p * p;
                }
                assertEquals(1, m2 / x.length, 1e-4, e.getKey() + ": mean (a_" + i + " . x)^2");
            }
        }
    }

    @Test
    void centredActivationsGiveThePrincipalComponents() {
        ToyModel m = toy();
        Map<String, String> opts = new LinkedHashMap<>(ALL_BATCHES);
        opts.put("center", "true");
        LoraModel lm = eva(m, CONFIG, opts, new ToyCalibration(m, 4, 6, 11), null);
        Map<String, double[][]> acts = collect(new ArrayList<>(lm.layers("default").keySet()), 4);
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            double[][] x = acts.get(e.getKey());
            int n = x.length, in = x[0].length;
            double[] c = flat(x), mean = new double[in];
            for (int i = 0; i < n; i++) for (int j = 0; j < in; j++) mean[j] += c[i * in + j] / n;
            for (int i = 0; i < n; i++) for (int j = 0; j < in; j++) c[i * in + j] -= mean[j];
            double[] vt = Svd.thin(c, n, in).vt();
            float[] a = e.getValue().loraA().toFloatArray();
            for (int i = 0; i < e.getValue().rank(); i++)
                assertEquals(1.0, absCos(a, vt, i, in), 1e-5, e.getKey() + ": A row " + i + " is principal component " + i);
        }
    }

    /** Batches whose rows are flagged real or padding; padding rows hold huge values that would dominate an SVD. */
    static final class PaddedCalibration implements Calibration {
        final ToyModel model;
        final Tensor[] inputs;          // each [rows, d]
        final boolean[][] real;         // each [rows]
        final int[][] targets;          // each [rows]

        PaddedCalibration(ToyModel model, int batches, int rows, long seed) {
            this.model = model;
            inputs = new Tensor[batches];
            real = new boolean[batches][rows];
            targets = new int[batches][rows];
            SplittableRandom rng = new SplittableRandom(seed);
            for (int b = 0; b < batches; b++) {
                float[] x = Tensor.randn(seed + b, 1f, rows, model.d).toFloatArray();
                for (int r = 0; r < rows; r++) {
                    real[b][r] = r % 3 != 2;
                    if (!real[b][r]) for (int j = 0; j < model.d; j++) x[r * model.d + j] = 40f + j;
                    targets[b][r] = real[b][r] ? rng.nextInt(model.vocab) : -100;
                }
                inputs[b] = Tensor.of(x, rows, model.d);
            }
        }

        @Override public int batches() { return inputs.length; }
        @Override public Tensor loss(int i) { return NnOps.crossEntropy(model.forward(inputs[i]), targets[i], -100); }
        @Override public boolean[] realTokens(int i) { return real[i]; }
    }

    @Test
    void paddingRowsAreLeftOut() {
        ToyModel m = toy();
        PaddedCalibration cal = new PaddedCalibration(m, 3, 9, 21);
        LoraConfig q = LoraConfig.builder().r(3).alpha(6).targets("model.layers.0.self_attn.q_proj").build();
        LoraModel lm = eva(m, q, ALL_BATCHES, cal, null);
        int d = m.d, real = 0;
        List<Double> rows = new ArrayList<>();
        for (int b = 0; b < 3; b++) {
            float[] x = cal.inputs[b].toFloatArray();
            for (int r = 0; r < 9; r++) if (cal.real[b][r]) { real++; for (int j = 0; j < d; j++) rows.add((double) x[r * d + j]); }
        }
        double[] xs = new double[rows.size()];
        for (int i = 0; i < xs.length; i++) xs[i] = rows.get(i);
        double[] vt = Svd.thin(xs, real, d).vt();
        LoraLayer l = lm.layers("default").get("model.layers.0.self_attn.q_proj");
        assertEquals(3, l.rank(), "one module: the budget is its rank");
        float[] a = l.loraA().toFloatArray();
        for (int i = 0; i < 3; i++) assertEquals(1.0, absCos(a, vt, i, d), 1e-5, "A row " + i + " from the real rows only");
    }

    /** Two projections of the same input (as q/k/v) and an output layer: EVA runs one SVD for the pair. */
    static final class SharedInput implements Module {
        final Map<String, Linear> linears = new LinkedHashMap<>();
        SharedInput() {
            linears.put("attn.k_proj", new Linear("attn.k_proj", Tensor.randn(1, 0.3f, 8, 8), null));
            linears.put("attn.v_proj", new Linear("attn.v_proj", Tensor.randn(2, 0.3f, 8, 8), null));
            linears.put("attn.o_proj", new Linear("attn.o_proj", Tensor.randn(3, 0.3f, 8, 8), null));
        }
        Tensor forward(Tensor x) {
            Tensor h = TensorOps.add(linears.get("attn.k_proj").forward(x), NnOps.silu(linears.get("attn.v_proj").forward(x)));
            return linears.get("attn.o_proj").forward(h);
        }
        @Override public Map<String, Linear> linears() { return linears; }
        @Override public Map<String, Tensor> parameters() {
            Map<String, Tensor> p = new LinkedHashMap<>();
            linears.forEach((k, v) -> p.put(k + ".weight", v.weight()));
            return p;
        }
    }

    @Test
    void layersWithTheSameInputShareOneSvd() {
        SharedInput model = new SharedInput();
        Tensor[] xs = {Tensor.randn(5, 1f, 10, 8), Tensor.randn(6, 1f, 10, 8), Tensor.randn(7, 1f, 10, 8)};
        int[] targets = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1};
        Calibration cal = new Calibration() {
            @Override public int batches() { return xs.length; }
            @Override public Tensor loss(int i) { return NnOps.crossEntropy(model.forward(xs[i]), targets, -100); }
        };
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LoraModel lm = new LoraModel(model, 1);
        lm.add("default", LoraConfig.builder().r(2).alpha(2).targets("k_proj", "v_proj", "o_proj").build(),
                MethodConfig.of("eva", Map.of("tau", "1")), cal, new PrintStream(out, true, StandardCharsets.UTF_8));
        String log = out.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("/2 activation SVDs"), "k_proj and v_proj share one SVD: " + log);
        LoraLayer k = lm.layers("default").get("attn.k_proj"), v = lm.layers("default").get("attn.v_proj");
        float[] ka = k.loraA().toFloatArray(), va = v.loraA().toFloatArray();
        for (int i = 0; i < Math.min(k.rank(), v.rank()) * 8; i++) assertEquals(ka[i], va[i], "shared components");
        int sum = 0;
        for (LoraLayer l : lm.layers("default").values()) sum += l.rank();
        assertEquals(6, sum);
    }

    @Test
    void badOptionsAreNamed() {
        ToyModel m = toy();
        var e = assertThrows(IllegalArgumentException.class, () -> eva(m, CONFIG, Map.of("rho", "0.5"), new ToyCalibration(m, 2, 6, 1), null));
        assertTrue(e.getMessage().contains("rho"), e.getMessage());
        var t = assertThrows(IllegalArgumentException.class, () -> eva(m, CONFIG, Map.of("tau", "1.5"), new ToyCalibration(m, 2, 6, 1), null));
        assertTrue(t.getMessage().contains("tau"), t.getMessage());
        var c = assertThrows(IllegalArgumentException.class, () -> eva(m, CONFIG, Map.of(), null, null));
        assertTrue(c.getMessage().contains("calibration"), c.getMessage());
    }
}
