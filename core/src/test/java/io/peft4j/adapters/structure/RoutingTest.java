package io.peft4j.adapters.structure;

import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The shared ops of the routed adapters, checked alone: values against hand-computed cases, gradients by finite differences. */
class RoutingTest {
    private static final float LN3 = (float) Math.log(3);

    @Test
    void gatedLoraMatchesItsFormulaAndGradients() {
        int n = 4, in = 5, out = 3, r = 6;
        Tensor y = Tensor.randn(1, 1f, n, out).requiresGrad(true);
        Tensor x = Tensor.randn(2, 1f, n, in).requiresGrad(true);
        Tensor a = Tensor.randn(3, 0.5f, r, in).requiresGrad(true);
        Tensor b = Tensor.randn(4, 0.5f, out, r).requiresGrad(true);
        Tensor g = Tensor.randn(5, 1f, n, r).requiresGrad(true);
        float[] got = Routing.gatedLora(y, x, a, b, g).toFloatArray();
        for (int t = 0; t < n; t++)
            for (int o = 0; o < out; o++) {
                double want = y.get(t, o);
                for (int j = 0; j < r; j++) {
                    double h = 0;
                    for (int i = 0; i < in; i++) h += (double) a.get(j, i) * x.get(t, i);
                    want += b.get(o, j) * g.get(t, j) * h;
                }
                assertEquals(want, got[t * out + o], 1e-5, "row " + t + " col " + o);
            }
        GradCheck.defaults().check("gated LoRA", in2 -> Routing.gatedLora(y, x, a, b, g), y, x, a, b, g);
    }

    /** Logits 0.5 apart or more: a ±h perturbation cannot change which experts are chosen. */
    private static Tensor separatedLogits(int n, int e, long seed) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed);
        float[] z = new float[n * e];
        for (int t = 0; t < n; t++) {
            int[] perm = new int[e];
            for (int i = 0; i < e; i++) perm[i] = i;
            for (int i = e - 1; i > 0; i--) { int j = rng.nextInt(i + 1); int s = perm[i]; perm[i] = perm[j]; perm[j] = s; }
            for (int i = 0; i < e; i++) z[t * e + perm[i]] = 0.5f * i - 1f + (float) rng.nextDouble() * 0.1f;
        }
        return Tensor.of(z, n, e).requiresGrad(true);
    }

    @Test
    void topKSoftmaxKeepsKExpertsRenormalisedAndItsGradientIsExact() {
        Tensor z = separatedLogits(5, 4, 1);
        Routing.Routed r = Routing.topKSoftmax(z, 2, 3, 0.5f);
        float[] zd = z.toFloatArray(), w = r.weights(), gates = r.gates().toFloatArray();
        for (int t = 0; t < 5; t++) {
            double sum = 0;
            int on = 0;
            double[] p = new double[4];
            double norm = 0;
            for (int i = 0; i < 4; i++) norm += Math.exp(zd[t * 4 + i]);
            for (int i = 0; i < 4; i++) p[i] = Math.exp(zd[t * 4 + i]) / norm;
            int first = 0, second = -1;
            for (int i = 1; i < 4; i++) if (p[i] > p[first]) first = i;
            for (int i = 0; i < 4; i++) if (i != first && (second < 0 || p[i] > p[second])) second = i;
            for (int i = 0; i < 4; i++) {
                if (w[t * 4 + i] != 0f) on++;
                sum += w[t * 4 + i];
                double want = i == first || i == second ? p[i] / (p[first] + p[second]) : 0;
                assertEquals(want, w[t * 4 + i], 1e-6, "token " + t + " expert " + i);
                if (want == 0) assertEquals(0f, w[t * 4 + i], "an expert off the top-k has weight exactly 0");
                for (int j = 0; j < 3; j++) assertEquals(0.5f * w[t * 4 + i], gates[t * 12 + i * 3 + j], 1e-7, "gate repeated over the expert's ranks");
            }
            assertEquals(2, on);
            assertEquals(1.0, sum, 1e-6);
        }
        GradCheck.defaults().check("top-k softmax", in -> Routing.topKSoftmax(z, 2, 3, 0.5f).gates(), z);
    }

    @Test
    void topKSigmoidGatesSumToKAndItsGradientIsExact() {
        Tensor z = separatedLogits(5, 6, 2);
        float[] bias = {0.01f, -0.02f, 0f, 0.03f, 0f, -0.01f};
        Routing.Routed r = Routing.topKSigmoid(z, bias, 3, 2f);
        float[] zd = z.toFloatArray(), w = r.weights();
        for (int t = 0; t < 5; t++) {
            double[] s = new double[6];
            for (int i = 0; i < 6; i++) s[i] = 1 / (1 + Math.exp(-zd[t * 6 + i])) + bias[i];
            Integer[] order = {0, 1, 2, 3, 4, 5};
            final int row = t;
            java.util.Arrays.sort(order, (p, q) -> Double.compare(s[q], s[p]));
            double total = s[order[0]] + s[order[1]] + s[order[2]], sum = 0;
            for (int c = 0; c < 6; c++) {
                int i = order[c];
                double want = c < 3 ? 3 * s[i] / total : 0;
                assertEquals(want, w[row * 6 + i], 1e-6);
                if (c >= 3) assertEquals(0f, w[row * 6 + i]);
                sum += w[row * 6 + i];
            }
            assertEquals(3.0, sum, 1e-5, "the k gates sum to k");
        }
        int[] counted = new int[6];
        for (int i = 0; i < w.length; i++) if (w[i] != 0f) counted[i % 6]++;
        assertArrayEquals(counted, r.counts(), "activations per rank");
        assertEquals(15, java.util.Arrays.stream(r.counts()).sum(), "N k activations");
        GradCheck.defaults().check("top-k sigmoid", in -> Routing.topKSigmoid(z, bias, 3, 2f).gates(), z);
    }

    @Test
    void balanceLossEqualsItsHandCheckedValue() {
        // softmax router, k = 1: both tokens p = (3/4, 1/4) -> both pick expert 0: f = (1, 0), P = (3/4, 1/4)
        // L = w E Σ f_i P_i = 0.1 * 2 * 0.75 = 0.15
        Tensor z = Tensor.of(new float[] {LN3, 0, LN3, 0}, 2, 2).requiresGrad(true);
        assertEquals(0.15, Routing.balanceLoss(z, new int[] {2, 0}, 1, false, 0.1f).getFlat(0), 1e-6);
        // sigmoid router: token 1 σ = (3/4, 1/4) -> p = (0.75, 0.25); token 2 σ = (3/4, 1/2) -> p = (0.6, 0.4);
        // both pick expert 0: f = (1, 0), P_0 = (0.75 + 0.6) / 2 = 0.675; L = 0.1 * 2 * 0.675 = 0.135
        Tensor s = Tensor.of(new float[] {LN3, -LN3, LN3, 0}, 2, 2).requiresGrad(true);
        boolean[] sel = Routing.select(new float[] {0.75f, 0.25f, 0.75f, 0.5f}, 2, 2, 1);
        assertArrayEquals(new boolean[] {true, false, true, false}, sel);
        assertEquals(0.135, Routing.balanceLoss(s, new int[] {2, 0}, 1, true, 0.1f).getFlat(0), 1e-6);
        // uniform routing gives exactly the weight
        Tensor u = Tensor.of(new float[] {0, 0, 0, 0}, 2, 2).requiresGrad(true);
        assertEquals(0.1, Routing.balanceLoss(u, new int[] {1, 1}, 1, false, 0.1f).getFlat(0), 1e-7);
    }

    @Test
    void balanceLossGradientsMatchFiniteDifferences() {
        Tensor z = Tensor.randn(9, 1f, 6, 5).requiresGrad(true);
        int[] counts = {4, 0, 3, 2, 3};    // N k = 12 for k = 2
        GradCheck.defaults().check("softmax balance", in -> Routing.balanceLoss(z, counts, 2, false, 0.3f), z);
        GradCheck.defaults().check("sigmoid balance", in -> Routing.balanceLoss(z, counts, 2, true, 0.3f), z);
    }

    @Test
    void layerIndexIsReadFromPeftLayerPatterns() {
        assertEquals(7, Routing.layerIndex("model.layers.7.self_attn.q_proj"));
        assertEquals(11, Routing.layerIndex("transformer.h.11.attn.c_attn"));
        assertEquals(3, Routing.layerIndex("encoder.layer.3.attention.self.query"));
        assertEquals(-1, Routing.layerIndex("lm_head"));
    }
}
