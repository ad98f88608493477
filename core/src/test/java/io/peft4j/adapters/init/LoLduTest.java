package io.peft4j.adapters.init;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Lu;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The defining math of LoLDU (arXiv 2410.13618): the leading r factors of the pivoted {@code P W = L D U} (computed
 * left-looking, r steps) equal those of the full LU, reconstruct W exactly at full rank, leave only the Schur
 * complement at lower rank, and the method trains r + 1 parameters per layer.
 */
class LoLduTest {
    private static double[] w(long seed, int out, int in) { return Dense.fromTensor(Tensor.randn(seed, 1f, out, in)); }

    @ParameterizedTest
    @CsvSource({"9, 7", "7, 9", "8, 8"})
    void fullRankLduIsExactlyPWEqualsLDU(int out, int in) {
        double[] w = w(out * 31L + in, out, in);
        int k = Math.min(out, in);
        LowRankSketch.TopLdu t = LowRankSketch.topLdu(Dense.toTensor(w, out, in), k);
        double[] p = t.product();
        for (int i = 0; i < w.length; i++) assertEquals(w[i], p[i], 1e-10, "P^T L D U == W at " + i);
        // the same factors as the full right-looking LU (linalg.Lu), with L's rows in W's order
        Lu.Ldu full = Lu.of(w, out, in).ldu();
        for (int i = 0; i < k; i++) {
            assertEquals(full.perm()[i], t.pivots()[i], "pivot row " + i);
            assertEquals(full.d()[i], t.d()[i], 1e-10 * (1 + Math.abs(full.d()[i])), "D[" + i + "]");
        }
        for (int i = 0; i < out; i++)
            for (int j = 0; j < k; j++)
                assertEquals(full.l()[i * k + j], t.l()[full.perm()[i] * k + j], 1e-10, "L[" + i + "," + j + "]");
        for (int i = 0; i < k * in; i++) assertEquals(full.u()[i], t.u()[i], 1e-9 * (1 + Math.abs(full.u()[i])), "U at " + i);
    }

    @Test
    void leadingFactorsLeaveOnlyTheSchurComplement() {
        int out = 12, in = 10, r = 3;
        double[] w = w(77, out, in);
        LowRankSketch.TopLdu t = LowRankSketch.topLdu(Dense.toTensor(w, out, in), r);
        Lu.Ldu full = Lu.of(w, out, in).ldu();
        int k = full.k();
        for (int i = 0; i < r; i++) assertEquals(full.perm()[i], t.pivots()[i]);
        for (int i = 0; i < out; i++)
            for (int j = 0; j < r; j++) assertEquals(full.l()[i * k + j], t.l()[full.perm()[i] * r + j], 1e-10, "L[:, :r]");
        for (int i = 0; i < r; i++) {
            assertEquals(full.d()[i], t.d()[i], 1e-10 * (1 + Math.abs(full.d()[i])));
            for (int c = 0; c < in; c++) assertEquals(full.u()[i * in + c], t.u()[i * in + c], 1e-10 * (1 + Math.abs(full.u()[i * in + c])));
        }
        double[] res = w.clone(), p = t.product();
        for (int i = 0; i < res.length; i++) res[i] -= p[i];
        boolean[] pivotRow = new boolean[out];
        for (int i : t.pivots()) pivotRow[i] = true;
        double elsewhere = 0;
        for (int o = 0; o < out; o++)
            for (int c = 0; c < in; c++) {
                if (pivotRow[o] || c < r) assertEquals(0, res[o * in + c], 1e-10, "residual on pivot row / leading column (" + o + "," + c + ")");
                else elsewhere = Math.max(elsewhere, Math.abs(res[o * in + c]));
            }
        assertTrue(elsewhere > 0.1, "the Schur complement is left over: " + elsewhere);
        // structure: unit lower in pivot order with |L| <= 1 (partial pivoting), unit upper U
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) assertEquals(i == j ? 1 : (j > i ? 0 : t.l()[t.pivots()[i] * r + j]), t.l()[t.pivots()[i] * r + j], 0);
        for (double v : t.l()) assertTrue(Math.abs(v) <= 1 + 1e-12);
        for (int i = 0; i < r; i++) {
            assertEquals(1, t.u()[i * in + i], 0);
            for (int c = 0; c < i; c++) assertEquals(0, t.u()[i * in + c], 0);
        }
    }

    @Test
    void zeroPivotKeepsTheEliminationProduct() {
        // column 0 is zero: no pivot exists at step 0; the product must still equal the elimination's (rank-r part)
        double[] w = {0, 1, 2, 0, 3, 5, 0, 4, 1, 0, 2, 2};   // [4, 3]
        LowRankSketch.TopLdu t = LowRankSketch.topLdu(Dense.toTensor(w, 4, 3), 3);
        double[] p = t.product();
        for (int i = 0; i < w.length; i++) assertEquals(w[i], p[i], 1e-12, "at " + i);
    }

    // ------------------------------------------------------------------------------------------------ on a model

    private static final LoraConfig CONFIG = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj")
            .rankPattern("down_proj", 2).build();

    private static LoraModel adapt(TinyModule m, Map<String, String> opts) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", CONFIG, MethodConfig.of("loldu", opts), null, null);
        return lm;
    }

    @Test
    void trainsRPlusOnePerLayerAndStartsAtSigmaLDU() {
        TinyModule m = TinyModule.standard(1);
        Map<String, double[]> weights = new java.util.LinkedHashMap<>();
        m.linears().forEach((k, v) -> weights.put(k, Dense.fromTensor(v.weight())));
        LoraModel lm = adapt(m, Map.of());
        long want = 0;
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            String module = e.getKey();
            LoraLayer l = e.getValue();
            int r = CONFIG.rankFor(module);
            want += r + 1;
            assertEquals(r, l.rank());
            assertFalse(l.loraA().requiresGrad() || l.loraB().requiresGrad(), module + ": L and U are frozen");
            assertTrue(l.mid().requiresGrad() && l.mid().rank() == 1 && l.mid().dim(0) == r, module + ": the diagonal z [r] trains");
            assertTrue(l.gain().requiresGrad(), module + ": the scale trains");
            assertEquals(1f, l.scaling(), 0, module + ": LoRA's fixed scaling is 1, σ carries the scale");
            assertEquals(lm.config("default").scalingFor(module), 1.0, 0);
            assertEquals((float) CONFIG.scalingFor(module), l.gain().getFlat(0), 0, module + ": σ starts at alpha / r");
            double[] w = weights.get(module);
            int out = l.base().outFeatures(), in = l.base().inFeatures();
            LowRankSketch.TopLdu t = LowRankSketch.topLdu(Dense.toTensor(w, out, in), r);
            float[] z = l.mid().toFloatArray();
            for (int j = 0; j < r; j++) assertEquals((float) t.d()[j], z[j], 0, module + ": z starts at D[:r]");
            // the adapter at init is σ L_r D_r U_r, and the base holds the rest
            double[] delta = Dense.fromTensor(l.deltaWeight()), lduPart = t.product(), base = Dense.fromTensor(l.base().weight());
            double sigma = CONFIG.scalingFor(module);
            for (int i = 0; i < delta.length; i++) {
                assertEquals(sigma * lduPart[i], delta[i], 1e-4 * (1 + Math.abs(delta[i])), module + " delta at " + i);
                assertEquals(w[i], base[i] + delta[i], 1e-5 * (1 + Math.abs(w[i])), module + " base + delta == W at " + i);
            }
        }
        assertEquals(want, lm.trainableCount("default"), "LoLDU: r + 1 per layer");

        LoraModel frozenScale = adapt(TinyModule.standard(1), Map.of("train_scale", "false"));
        assertEquals(want - lm.layers("default").size(), frozenScale.trainableCount("default"), "train_scale=false: r per layer");
    }

    @Test
    void zeroDiagonalLeavesTheBaseUntouched() {
        TinyModule m = TinyModule.standard(2);
        Map<String, Tensor> before = new java.util.LinkedHashMap<>();
        m.linears().forEach((k, v) -> before.put(k, v.weight()));
        LoraModel lm = adapt(m, Map.of("diag_init", "zeros"));
        assertTrue(lm.baseOffsets("default").isEmpty());
        m.linears().forEach((k, v) -> assertSame(before.get(k), v.weight(), k));
        for (LoraLayer l : lm.layers("default").values()) for (float v : l.mid().toFloatArray()) assertEquals(0f, v);
    }

    @Test
    void diagonalVariantsFollowTheMeanOfD() {
        TinyModule m = TinyModule.standard(3);
        Map<String, double[]> weights = new java.util.LinkedHashMap<>();
        m.linears().forEach((k, v) -> weights.put(k, Dense.fromTensor(v.weight())));
        LoraModel c = adapt(m, Map.of("diag_init", "constant"));
        LoraModel u = adapt(TinyModule.standard(3), Map.of("diag_init", "uniform"));
        for (String module : c.layers("default").keySet()) {
            LoraLayer l = c.layers("default").get(module);
            int r = l.rank();
            double[] d = LowRankSketch.topLdu(Dense.toTensor(weights.get(module), l.base().outFeatures(), l.base().inFeatures()), r).d();
            double mean = 0;
            for (double v : d) mean += v / r;
            for (float v : l.mid().toFloatArray()) assertEquals((float) mean, v, 1e-6, module + ": constant = mean of D[:r]");
            for (float v : u.layers("default").get(module).mid().toFloatArray())
                assertTrue(Math.abs(v) <= Math.abs(mean) / 2 + 1e-7, module + ": uniform within |mean|/2");
        }
        var e = assertThrows(IllegalArgumentException.class, () -> adapt(TinyModule.standard(3), Map.of("diag_init", "svd")));
        assertTrue(e.getMessage().contains("diag_init") && e.getMessage().contains("svd"), e.getMessage());
    }
}
