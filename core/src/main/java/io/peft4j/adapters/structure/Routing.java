package io.peft4j.adapters.structure;

import io.peft4j.autograd.Tape;
import io.peft4j.kernels.Gemm;
import io.peft4j.tensor.Tensor;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The recorded ops shared by the routed adapters (MoLA, SMoRA, MM-LoRA). All three are one LoRA of total rank R whose
 * ranks are switched per token: {@code y + ((x A^T) ⊙ G) B^T}, with G [N, R] the per-token gate of every rank (0 = the
 * rank is off for that token). A mixture of E experts of rank r is the rank-(E·r) LoRA of the stacked factors with
 * each expert's gate repeated over its r ranks (SMoRA's "unified framework" observation), so one fused op serves
 * all three; only the gates differ: a top-k softmax router (MoLA), a top-k sigmoid router with a balancing bias
 * (SMoRA), a fixed 0/1 modality mask (MM-LoRA).
 *
 * <p>Computing every expert for every token costs E·r columns where a sparse dispatch would cost k·r; with LoRA ranks
 * that is still far below the base GEMM, and it keeps the op two dense GEMMs forward and four backward.
 */
final class Routing {
    private Routing() {}

    /** Layer-index patterns of PEFT's COMMON_LAYERS_PATTERN: {@code layers.N.}, {@code h.N.}, {@code block(s).N.}, {@code layer.N.}. */
    private static final Pattern LAYER = Pattern.compile("(?:^|.*\\.)(?:layers|layer|h|blocks|block)\\.(\\d+)\\..*");

    /** The decoder-layer index in a module name ({@code model.layers.7.self_attn.q_proj} -> 7), or -1. */
    static int layerIndex(String module) {
        Matcher m = LAYER.matcher(module);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /**
     * {@code y + ((xd A^T) ⊙ G) B^T} as one recorded op.
     *
     * @param y     the output so far [..., out]
     * @param xd    the (dropped-out) input [..., in]
     * @param a     stacked down-projections [R, in]
     * @param b     stacked up-projections [out, R]
     * @param gates per-token, per-rank gates [N, R] (scaling folded in); when it requires gradients its gradient
     *              {@code dG = (dY B) ⊙ (xd A^T)} is accumulated (the router's path)
     */
    static Tensor gatedLora(Tensor y, Tensor xd, Tensor a, Tensor b, Tensor gates) {
        int in = a.dim(1), out = b.dim(0), r = a.dim(0);
        Tensor x2 = xd.contiguous().reshape(-1, in);                  // [N, in]
        int n = x2.dim(0);
        if (gates.dim(0) != n || gates.dim(1) != r)
            throw new IllegalArgumentException("gated LoRA: gates " + gates.describe() + " do not fit " + n + " rows and rank " + r);
        Tensor h = Tensor.zeros(n, r);                               // [N, R] = xd A^T
        Gemm.matmul(x2, a.transpose(0, 1), h, false);
        float[] hd = h.data(), gd = gates.contiguous().data();
        int go = gates.contiguous().dataOffset();
        Tensor u = Tensor.zeros(n, r);                               // [N, R] = h ⊙ G
        float[] ud = u.data();
        for (int i = 0; i < ud.length; i++) ud[i] = hd[i] * gd[go + i];
        Tensor res = y.copyToF32().reshape(n, out);                  // [N, out]
        Gemm.matmul(u, b.transpose(0, 1), res, true);
        Tensor result = res.reshape(y.shape());
        return Tape.record(result, () -> {
            Tensor g = result.grad();
            if (g == null) return;
            Tensor g2 = Tensor.of(g.data(), n, out);                 // [N, out]
            if (y.requiresGrad()) {
                float[] yg = y.gradBuffer().data(), gg = g.data();
                for (int i = 0; i < gg.length; i++) yg[i] += gg[i];
            }
            if (b.requiresGrad()) Gemm.matmul(g2.transpose(0, 1), u, b.gradBuffer(), true);     // dB += dY^T u
            boolean needH = a.requiresGrad() || xd.requiresGrad();
            if (!needH && !gates.requiresGrad()) return;
            Tensor du = Tensor.zeros(n, r);                          // [N, R] = dY B
            Gemm.matmul(g2, b, du, false);
            float[] dud = du.data();
            if (gates.requiresGrad()) {
                float[] dg = gates.gradBuffer().data();
                for (int i = 0; i < dud.length; i++) dg[i] += dud[i] * hd[i];
            }
            if (!needH) return;
            for (int i = 0; i < dud.length; i++) dud[i] *= gd[go + i];                       // now dL/dh
            if (a.requiresGrad()) Gemm.matmul(du.transpose(0, 1), x2, a.gradBuffer(), true);  // dA += dh^T x
            if (xd.requiresGrad()) Gemm.matmul(du, a, Tensor.of(xd.gradBuffer().data(), n, in), true);
        }, y, xd, a, b, gates);
    }

    /** The outcome of a top-k routing: the gates and which experts each token chose. */
    record Routed(Tensor gates, float[] weights, boolean[] selected, int[] counts) {}   // gates [N, E·block]; weights, selected [N·E]; counts [E]

    /**
     * MoLA's router (the authors' code): {@code p = softmax(z)} over the E experts, the top-k kept and renormalised
     * ({@code p_i / Σ_top-k p_j}, i.e. a softmax over the chosen logits), the others exactly zero; each expert's gate
     * repeated over its {@code block} ranks and multiplied by {@code scale}. Ties go to the lower expert index.
     * Backward (within a fixed selection): {@code dz_i = g_i (dg_i - Σ_K g_j dg_j)} for chosen i, 0 otherwise.
     *
     * @param logits router outputs [N, E]
     */
    static Routed topKSoftmax(Tensor logits, int k, int block, float scale) {
        int n = logits.dim(0), e = logits.dim(1);
        float[] z = logits.contiguous().toFloatArray();
        boolean[] sel = select(z, n, e, k);
        float[] g = new float[n * e];                               // [N, E] renormalised gates
        for (int t = 0; t < n; t++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < e; i++) if (sel[t * e + i]) max = Math.max(max, z[t * e + i]);
            double s = 0;
            for (int i = 0; i < e; i++) if (sel[t * e + i]) s += Math.exp(z[t * e + i] - max);
            for (int i = 0; i < e; i++) if (sel[t * e + i]) g[t * e + i] = (float) (Math.exp(z[t * e + i] - max) / s);
        }
        Tensor gates = expand(g, n, e, block, scale);
        Tape.record(gates, () -> {
            Tensor dG = gates.grad();
            if (dG == null) return;
            float[] dgExp = dG.data(), dz = logits.gradBuffer().data();
            for (int t = 0; t < n; t++) {
                double dot = 0;
                double[] dg = new double[e];
                for (int i = 0; i < e; i++) {
                    if (!sel[t * e + i]) continue;
                    double sum = 0;
                    for (int j = 0; j < block; j++) sum += dgExp[(t * e + i) * block + j];
                    dg[i] = sum * scale;
                    dot += g[t * e + i] * dg[i];
                }
                for (int i = 0; i < e; i++) if (sel[t * e + i]) dz[t * e + i] += (float) (g[t * e + i] * (dg[i] - dot));
            }
        }, logits);
        return new Routed(gates, g, sel, counts(sel, n, e));
    }

    /**
     * SMoRA's router (the authors' code): scores {@code t = sigmoid(z) + bias}, the top-k by t kept, gates
     * {@code k · t_i / Σ_top-k t_j} (so the k active gates sum to k), multiplied by {@code scale}; the bias (not
     * trained: moved by the balancing rule) is a constant here. Backward within a fixed selection:
     * {@code dz_i = (k/T)(dG_i - Σ_K (t_j/T) dG_j) · σ_i (1 - σ_i)}, T = Σ_K t_j.
     *
     * @param logits router outputs [N, E]
     * @param bias   the balancing bias [E]
     */
    static Routed topKSigmoid(Tensor logits, float[] bias, int k, float scale) {
        int n = logits.dim(0), e = logits.dim(1);
        float[] z = logits.contiguous().toFloatArray();
        float[] sig = new float[n * e], t = new float[n * e];       // [N, E]
        for (int i = 0; i < sig.length; i++) {
            sig[i] = sigmoid(z[i]);
            t[i] = sig[i] + bias[i % e];
        }
        boolean[] sel = select(t, n, e, k);
        float[] g = new float[n * e];                               // [N, E] = k t_i / T on the chosen experts
        double[] total = new double[n];                             // [N] T per token
        for (int row = 0; row < n; row++) {
            double s = 0;
            for (int i = 0; i < e; i++) if (sel[row * e + i]) s += t[row * e + i];
            total[row] = s;
            for (int i = 0; i < e; i++) if (sel[row * e + i]) g[row * e + i] = (float) (k * t[row * e + i] / s);
        }
        Tensor gates = expand(g, n, e, 1, scale);
        Tape.record(gates, () -> {
            Tensor dG = gates.grad();
            if (dG == null) return;
            float[] dg = dG.data(), dz = logits.gradBuffer().data();
            for (int row = 0; row < n; row++) {
                double tt = total[row], dot = 0;
                for (int i = 0; i < e; i++) if (sel[row * e + i]) dot += t[row * e + i] / tt * dg[row * e + i] * scale;
                for (int i = 0; i < e; i++) {
                    int p = row * e + i;
                    if (!sel[p]) continue;
                    double dt = k / tt * (dg[p] * scale - dot);
                    dz[p] += (float) (dt * sig[p] * (1 - sig[p]));
                }
            }
        }, logits);
        return new Routed(gates, g, sel, counts(sel, n, e));
    }

    /**
     * The Switch-Transformer load-balancing loss as the MoLA authors' code computes it, {@code weight · E · Σ_i f_i P_i}:
     * {@code f_i} the share of the N·k (token, slot) assignments that went to expert i (a constant: the selection is
     * not differentiable), {@code P_i} the mean over tokens of the router probability of expert i. It equals
     * {@code weight} when routing is uniform. The probabilities are {@code softmax(z)} (MoLA) or, for a sigmoid
     * router, the normalised scores {@code σ(z_i) / Σ_j σ(z_j)} (DeepSeek-V3's form). Returns a recorded scalar [1].
     *
     * @param logits router outputs [N, E]
     * @param counts assignments per expert [E] (summing to N·k)
     */
    static Tensor balanceLoss(Tensor logits, int[] counts, int k, boolean sigmoid, float weight) {
        int n = logits.dim(0), e = logits.dim(1);
        float[] z = logits.contiguous().toFloatArray();
        float[] p = new float[n * e];                               // [N, E] router probabilities
        float[] q = sigmoid ? new float[n * e] : null;              // [N, E] sigmoid scores
        double[] sums = new double[n];                              // [N] Σ_j σ(z_j) (sigmoid router)
        for (int t = 0; t < n; t++) {
            int o = t * e;
            if (sigmoid) {
                double s = 0;
                for (int i = 0; i < e; i++) { q[o + i] = sigmoid(z[o + i]); s += q[o + i]; }
                sums[t] = s;
                for (int i = 0; i < e; i++) p[o + i] = (float) (q[o + i] / s);
            } else {
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < e; i++) max = Math.max(max, z[o + i]);
                double s = 0;
                for (int i = 0; i < e; i++) s += Math.exp(z[o + i] - max);
                for (int i = 0; i < e; i++) p[o + i] = (float) (Math.exp(z[o + i] - max) / s);
            }
        }
        double[] coef = new double[e];                              // [E] dL/dP_i / N = weight E f_i / N
        double loss = 0;
        for (int i = 0; i < e; i++) {
            double f = counts[i] / ((double) n * k), meanP = 0;
            for (int t = 0; t < n; t++) meanP += p[t * e + i];
            meanP /= n;
            loss += f * meanP;
            coef[i] = weight * e * f / n;
        }
        Tensor out = Tensor.of(new float[] {(float) (weight * e * loss)}, 1);
        return Tape.record(out, () -> {
            Tensor go = out.grad();
            if (go == null) return;
            double up = go.getFlat(0);
            float[] dz = logits.gradBuffer().data();
            for (int t = 0; t < n; t++) {
                int o = t * e;
                double dot = 0;                                     // Σ_j p_j dp_j with dp_j = coef_j
                for (int i = 0; i < e; i++) dot += p[o + i] * coef[i];
                for (int i = 0; i < e; i++) {
                    if (sigmoid) {
                        double dq = (coef[i] - dot) / sums[t];
                        dz[o + i] += (float) (up * dq * q[o + i] * (1 - q[o + i]));
                    } else {
                        dz[o + i] += (float) (up * p[o + i] * (coef[i] - dot));
                    }
                }
            }
        }, logits);
    }

    /** The top-k experts of each row of an [n, e] score block (ties: lower index first). */
    static boolean[] select(float[] s, int n, int e, int k) {
        boolean[] sel = new boolean[n * e];
        for (int t = 0; t < n; t++) {
            for (int c = 0; c < k; c++) {
                int best = -1;
                float bv = 0;
                for (int i = 0; i < e; i++) {
                    int p = t * e + i;
                    if (sel[p]) continue;
                    // NaN scores lose to everything, so a NaN router still picks exactly k experts
                    if (best < 0 || s[p] > bv || (Float.isNaN(bv) && !Float.isNaN(s[p]))) { best = i; bv = s[p]; }
                }
                sel[t * e + best] = true;
            }
        }
        return sel;
    }

    private static int[] counts(boolean[] sel, int n, int e) {
        int[] c = new int[e];
        for (int t = 0; t < n; t++) for (int i = 0; i < e; i++) if (sel[t * e + i]) c[i]++;
        return c;
    }

    /** [n, e] gates -> [n, e·block], each repeated over its block of ranks and scaled. */
    private static Tensor expand(float[] g, int n, int e, int block, float scale) {
        float[] d = new float[n * e * block];
        for (int t = 0; t < n; t++)
            for (int i = 0; i < e; i++) {
                float v = g[t * e + i] * scale;
                if (v != 0f) java.util.Arrays.fill(d, (t * e + i) * block, (t * e + i + 1) * block, v);
            }
        return Tensor.of(d, n, e * block);
    }

    static float sigmoid(float v) { return (float) (1 / (1 + Math.exp(-v))); }

    /** Stacked factors' update with every rank's gate at {@code gate[j]}: {@code Σ_j gate_j b[:, j] a[j, :]}, [out, in]. */
    static Tensor gatedDelta(Tensor a, Tensor b, float[] gate) {
        int r = a.dim(0), out = b.dim(0);
        Tensor bs = b.copyToF32();
        float[] bd = bs.data();
        for (int o = 0; o < out; o++) for (int j = 0; j < r; j++) bd[o * r + j] *= gate[j];
        Tensor d = Tensor.zeros(out, a.dim(1));
        Gemm.matmul(bs, a, d, false);
        return d;
    }
}
