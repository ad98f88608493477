package io.peft4j.autograd;

import io.peft4j.tensor.Tensor;

/**
 * Differentiable neural-network operations: softmax family, fused cross-entropy, norms, activations, RoPE,
 * attention and dropout. Forward through the fused kernels; backward recorded on the active {@link Tape}.
 */
public final class NnOps {
    private NnOps() {}

    private static UnsupportedOperationException todo(String op) { return new UnsupportedOperationException("NnOps." + op + ": not yet implemented"); }

    /** Softmax over the last axis. */
    public static Tensor softmax(Tensor x) { throw todo("softmax"); }
    /** Log-softmax over the last axis. */
    public static Tensor logSoftmax(Tensor x) { throw todo("logSoftmax"); }
    /**
     * Mean cross-entropy of {@code logits} [N, V] against {@code targets} [N], skipping targets equal to
     * {@code ignoreIndex}; fused with log-softmax and chunked over the vocabulary. Returns a scalar [] tensor
     * (0 when every target is ignored).
     */
    public static Tensor crossEntropy(Tensor logits, int[] targets, int ignoreIndex) { throw todo("crossEntropy"); }

    /** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight; weight [d] or null. */
    public static Tensor rmsNorm(Tensor x, Tensor weight, float eps) { throw todo("rmsNorm"); }
    /** LayerNorm over the last axis; weight and bias [d] or null. */
    public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps) { throw todo("layerNorm"); }

    /** GELU: the tanh approximation when {@code tanhApprox}, else the exact erf form. */
    public static Tensor gelu(Tensor x, boolean tanhApprox) { throw todo("gelu"); }
    public static Tensor silu(Tensor x) { throw todo("silu"); }
    /** silu(gate) * up, fused. */
    public static Tensor swiglu(Tensor gate, Tensor up) { throw todo("swiglu"); }

    /** RoPE on x [B, T, H, Dh] at the given positions [T]. */
    public static Tensor rope(Tensor x, RopeTable table, int[] positions) { throw todo("rope"); }

    /**
     * Scaled-dot-product attention. q [B, T, Hq, Dh], k and v [B, S, Hkv, Dh] with Hq a multiple of Hkv (grouped
     * query heads share K/V by index, never by copy). When {@code causal}, query i (at absolute position
     * {@code queryOffset + i}) sees keys 0..queryOffset+i. {@code mask} is an optional additive mask
     * broadcastable to [B, Hq, T, S]. Returns [B, T, Hq, Dh].
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, boolean causal, int queryOffset, Tensor mask, float scale) { throw todo("attention"); }

    /** Inverted dropout with probability p, deterministic for {@code seed}; identity when !training or p == 0. */
    public static Tensor dropout(Tensor x, float p, long seed, boolean training) { throw todo("dropout"); }
}
