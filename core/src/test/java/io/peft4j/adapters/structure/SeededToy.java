package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;

import java.util.Map;

/** Fixtures of the NOLA and DiffuseKronA tests: the tiny random Llama, fixed token batches, a short AdamW loop. */
final class SeededToy {
    private SeededToy() {}

    /** The tiny random Llama: d 64, 4 layers, q/o [64, 64], v [32, 64], down [64, 176], vocab 512. */
    static CausalLM tiny() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    /** Token ids of 2 sequences x 9 positions. */
    static int[] ids() {
        int[] ids = new int[18];
        for (int i = 0; i < ids.length; i++) ids[i] = 3 + (i * 37) % 200;
        return ids;
    }

    static float[] logits(CausalLM m) { return m.forward(ids(), 2, 9, null).toFloatArray(); }

    /** Next-token targets of {@link #ids()} along a fixed successor chain (learnable). */
    static int[] chainTargets(int[] ids) {
        int[] t = new int[ids.length];
        for (int i = 0; i < ids.length; i++) t[i] = 3 + (ids[i] * 7 + 1) % 60;
        return t;
    }

    static float loss(CausalLM m) {
        int[] ids = ids();
        return NnOps.crossEntropy(m.forward(ids, 2, 9, null), chainTargets(ids), -100).getFlat(0);
    }

    /** {@code steps} AdamW steps on the adapter's trainable tensors; returns the loss before each step. */
    static float[] train(CausalLM m, LoraModel lm, int steps, double lr) {
        Map<String, Tensor> params = lm.parameters("default");
        AdamW opt = AdamW.withDefaults(params, 0);
        int[] ids = ids(), targets = chainTargets(ids);
        float[] losses = new float[steps];
        for (int s = 0; s < steps; s++) {
            opt.zeroGrad();
            try (Tape tape = Tape.record()) {
                Tensor loss = NnOps.crossEntropy(m.forward(ids, 2, 9, null), targets, -100);
                losses[s] = loss.getFlat(0);
                tape.backward(loss);
            }
            opt.step(lr);
        }
        return losses;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
