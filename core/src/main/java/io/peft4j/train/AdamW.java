package io.peft4j.train;

import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter) with PyTorch's semantics: decoupled weight decay {@code p -= lr * wd * p}, then
 * {@code p -= lr * m_hat / (sqrt(v_hat) + eps)} with bias-corrected moments. Parameters are dense heap F32 tensors
 * that require gradients; a parameter whose gradient was never written is skipped (as PyTorch skips grad=None).
 */
public final class AdamW {
    private final Map<String, Tensor> params;          // name -> parameter
    private final Map<String, float[]> m = new LinkedHashMap<>();   // name -> first moment [numel]
    private final Map<String, float[]> v = new LinkedHashMap<>();   // name -> second moment [numel]
    private final double beta1, beta2, eps, weightDecay;
    private long step;

    public AdamW(Map<String, Tensor> params, double beta1, double beta2, double eps, double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            if (!p.isDense() || !p.requiresGrad())
                throw new IllegalArgumentException("parameter " + e.getKey() + " must be a dense F32 tensor that requires gradients, is " + p.describe());
            m.put(e.getKey(), new float[(int) p.numel()]);
            v.put(e.getKey(), new float[(int) p.numel()]);
        }
    }

    /** PyTorch's defaults: betas (0.9, 0.999), eps 1e-8. */
    public static AdamW withDefaults(Map<String, Tensor> params, double weightDecay) {
        return new AdamW(params, 0.9, 0.999, 1e-8, weightDecay);
    }

    public long stepCount() { return step; }

    public Map<String, Tensor> parameters() { return params; }

    /** One update at learning rate {@code lr}. */
    public void step(double lr) {
        step++;
        double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
        double stepSize = lr / bc1;
        float decay = (float) (1 - lr * weightDecay);
        float b1 = (float) beta1, b2 = (float) beta2;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            if (p.grad() == null || !p.requiresGrad()) continue;     // frozen since (a method's schedule): no update
            float[] pd = p.data(), g = p.grad().data();
            int po = p.dataOffset(), n = (int) p.numel();
            float[] mm = m.get(e.getKey()), vv = v.get(e.getKey());
            for (int i = 0; i < n; i++) {
                float gi = g[i];
                mm[i] = b1 * mm[i] + (1 - b1) * gi;
                vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
                double denom = Math.sqrt(vv[i] / bc2) + eps;
                pd[po + i] = (float) (pd[po + i] * decay - stepSize * mm[i] / denom);
            }
        }
    }

    /** Zeroes every parameter's gradient buffer (keeps the buffers). */
    public void zeroGrad() { for (Tensor p : params.values()) p.zeroGrad(); }

    /** Moments as tensors keyed {@code <name>.exp_avg} / {@code <name>.exp_avg_sq}, for checkpoints. */
    public Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>();
        for (String k : params.keySet()) {
            s.put(k + ".exp_avg", Tensor.of(m.get(k).clone(), m.get(k).length));
            s.put(k + ".exp_avg_sq", Tensor.of(v.get(k).clone(), v.get(k).length));
        }
        return s;
    }

    /** Restores {@link #state()} and the step count; every key must be present with the right size. */
    public void load(Map<String, Tensor> state, long step) {
        for (String k : params.keySet()) {
            copyInto(state, k + ".exp_avg", m.get(k));
            copyInto(state, k + ".exp_avg_sq", v.get(k));
        }
        this.step = step;
    }

    private static void copyInto(Map<String, Tensor> state, String key, float[] dst) {
        Tensor t = state.get(key);
        if (t == null) throw new IllegalArgumentException("optimizer state lacks '" + key + "'");
        if (t.numel() != dst.length) throw new IllegalArgumentException("optimizer state '" + key + "' has " + t.numel() + " values, expected " + dst.length);
        System.arraycopy(t.toFloatArray(), 0, dst, 0, dst.length);
    }

    /** Global L2 norm of all gradients (double accumulation). */
    public double gradNorm() {
        double s = 0;
        for (Tensor p : params.values()) {
            if (p.grad() == null || !p.requiresGrad()) continue;
            for (float g : p.grad().data()) s += (double) g * g;
        }
        return Math.sqrt(s);
    }

    /**
     * Scales gradients so their global norm is at most {@code maxNorm} (PyTorch's clip_grad_norm_: coefficient
     * maxNorm / (norm + 1e-6), capped at 1). Returns the norm before clipping.
     */
    public double clipGradNorm(double maxNorm) {
        double norm = gradNorm();
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1) {
            float c = (float) coef;
            for (Tensor p : params.values()) {
                if (p.grad() == null) continue;
                float[] g = p.grad().data();
                for (int i = 0; i < g.length; i++) g[i] *= c;
            }
        }
        return norm;
    }
}
