package io.peft4j.nn;

import io.peft4j.autograd.Tape;
import io.peft4j.tensor.Tensor;

/** Element-wise activations the op library does not provide, as tape-aware ops. */
public final class Activations {
    private Activations() {}

    /** tanh(x), differentiable (d tanh = 1 - tanh^2). Used by BERT's pooler. */
    public static Tensor tanh(Tensor x) {
        Tensor xc = x.contiguous();
        float[] in = xc.data();
        int off = xc.dataOffset();
        float[] out = new float[(int) xc.numel()];
        for (int i = 0; i < out.length; i++) out[i] = (float) Math.tanh(in[off + i]);
        Tensor y = Tensor.of(out, x.shape());
        return Tape.record(y, () -> {
            if (!x.requiresGrad() || y.grad() == null) return;
            float[] gy = y.grad().data();
            float[] gx = x.gradBuffer().data();
            for (int i = 0; i < out.length; i++) gx[i] += gy[i] * (1 - out[i] * out[i]);
        }, x);
    }
}
