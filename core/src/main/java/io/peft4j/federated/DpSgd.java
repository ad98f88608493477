package io.peft4j.federated;

import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The privatising half of DP-SGD (Abadi et al. 2016) over a set of trainable tensors (for FFA-LoRA: only the B
 * factors). One step: for every example of the (Poisson-sampled) batch the caller runs a forward/backward pass of that
 * example alone and calls {@link #addExample()}, which clips the example's whole gradient (all tensors together) to L2
 * norm at most C and adds it to a running sum; {@link #finish} then adds N(0, sigma^2 C^2) to every coordinate of the
 * sum, divides by the expected batch size, and writes the result into the tensors' gradient buffers, ready for the
 * optimizer. Micro-batches of one example are the simple, exact way to get per-example gradients (no vectorised
 * per-sample machinery); the cost is one pass per example, fine for small models.
 *
 * <p>The noise comes from a {@link SplittableRandom} seeded by the caller, so a run is reproducible bit for bit.
 */
public final class DpSgd {
    private final List<Tensor> params;       // the trainable tensors, in a fixed order
    private final List<float[]> sum;         // [numel] per tensor: sum of clipped per-example gradients
    private final double clip, sigma;
    private double lastNorm, lastClippedNorm;
    private int examples;

    public DpSgd(Map<String, Tensor> params, double clip, double sigma) {
        if (!(clip > 0)) throw new IllegalArgumentException("clip norm must be > 0, got " + clip);
        if (!(sigma >= 0)) throw new IllegalArgumentException("noise multiplier must be >= 0, got " + sigma);
        this.params = new ArrayList<>(params.values());
        this.sum = new ArrayList<>();
        for (Tensor p : this.params) sum.add(new float[(int) p.numel()]);
        this.clip = clip;
        this.sigma = sigma;
    }

    public double clip() { return clip; }
    public double sigma() { return sigma; }

    /** Clears the running sum: call before the first example of a step. */
    public void begin() {
        for (float[] s : sum) java.util.Arrays.fill(s, 0f);
        examples = 0;
    }

    /**
     * Adds the gradient now in the tensors' buffers (one example's) to the sum, scaled by min(1, C / norm), and zeroes
     * the buffers for the next example. Returns the example's gradient norm before clipping.
     */
    public double addExample() {
        double sq = 0;
        for (Tensor p : params) {
            if (p.grad() == null) continue;
            for (float g : p.grad().data()) sq += (double) g * g;
        }
        double norm = Math.sqrt(sq);
        // the factor PyTorch's Opacus uses, C / (norm + 1e-6) capped at 1: the clipped norm never exceeds C
        double factor = Math.min(1.0, clip / (norm + 1e-6));
        double clippedSq = 0;
        for (int t = 0; t < params.size(); t++) {
            Tensor p = params.get(t);
            if (p.grad() == null) continue;
            float[] g = p.grad().data(), s = sum.get(t);
            for (int i = 0; i < s.length; i++) {
                float c = (float) (g[i] * factor);
                clippedSq += (double) c * c;
                s[i] += c;
            }
            p.zeroGrad();
        }
        lastNorm = norm;
        lastClippedNorm = Math.sqrt(clippedSq);
        examples++;
        return norm;
    }

    /** The pre-clipping and post-clipping gradient norms of the last example added (tests, diagnostics). */
    public double lastNorm() { return lastNorm; }
    public double lastClippedNorm() { return lastClippedNorm; }

    /** Examples added since {@link #begin()}. */
    public int examples() { return examples; }

    /**
     * Adds the Gaussian noise (std sigma·C per coordinate) to the sum, divides by {@code expectedBatch} (q·n under
     * Poisson sampling: dividing by the realised size would leak it), and writes the result into the gradient buffers.
     */
    public void finish(double expectedBatch, SplittableRandom rng) {
        if (!(expectedBatch > 0)) throw new IllegalArgumentException("expected batch size must be > 0, got " + expectedBatch);
        double std = sigma * clip;
        for (int t = 0; t < params.size(); t++) {
            Tensor p = params.get(t);
            float[] s = sum.get(t), g = p.gradBuffer().data();
            for (int i = 0; i < s.length; i++) g[i] = (float) ((s[i] + std * rng.nextGaussian()) / expectedBatch);
        }
    }
}
