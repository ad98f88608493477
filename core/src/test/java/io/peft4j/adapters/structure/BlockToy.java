package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tiny residual model for the GS-LoRA / IncreLoRA / DiffoRA / S2-LoRA tests: blocks named like HF Llama layers, each
 * {@code h <- h + w_l · (down(silu(up(h))) + q(h))}, with a per-block weight {@code w_l}: a block of weight 0 is
 * unused, so its adapters receive exactly zero gradient. Trained on the mean squared error to a fixed target.
 */
final class BlockToy implements Module {
    final int d, ffn, blocks;
    final float[] use;                                         // [blocks] weight of each block's contribution
    private final Map<String, Linear> linears = new LinkedHashMap<>();
    final Tensor x;                                            // [rows, d] fixed input
    final Tensor target;                                       // [rows, d] fixed regression target

    BlockToy(long seed, int d, int ffn, int blocks, int rows) {
        this.d = d;
        this.ffn = ffn;
        this.blocks = blocks;
        this.use = new float[blocks];
        java.util.Arrays.fill(use, 1f);
        long s = seed;
        for (int l = 0; l < blocks; l++) {
            String p = "model.layers." + l + ".";
            add(p + "self_attn.q_proj", Tensor.randn(++s, 0.3f, d, d));
            add(p + "mlp.up_proj", Tensor.randn(++s, 0.3f, ffn, d));
            add(p + "mlp.down_proj", Tensor.randn(++s, 0.3f, d, ffn));
        }
        x = Tensor.randn(++s, 1f, rows, d);
        target = Tensor.randn(++s, 1f, rows, d);
    }

    private void add(String name, Tensor w) { linears.put(name, new Linear(name, w, null)); }

    Tensor forward(Tensor in) {
        Tensor h = in;
        for (int l = 0; l < blocks; l++) {
            String p = "model.layers." + l + ".";
            Tensor mlp = linears.get(p + "mlp.down_proj").forward(NnOps.silu(linears.get(p + "mlp.up_proj").forward(h)));
            Tensor t = TensorOps.add(mlp, linears.get(p + "self_attn.q_proj").forward(h));
            h = TensorOps.add(h, TensorOps.scale(t, use[l]));
        }
        return h;
    }

    /** Mean squared error of the model on its fixed input and target. */
    Tensor loss() {
        Tensor diff = TensorOps.sub(forward(x), target);
        return TensorOps.mean(TensorOps.mul(diff, diff), false);
    }

    @Override public Map<String, Linear> linears() { return linears; }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> p = new LinkedHashMap<>();
        linears.forEach((k, v) -> p.put(k + ".weight", v.weight()));
        return p;
    }

    /**
     * {@code steps} AdamW updates of the adapter "default" with the Trainer's order of method hooks (beforeStep,
     * backward, beforeUpdate, update, afterStep); returns the losses before each update.
     */
    static double[] train(LoraModel lm, BlockToy m, int steps, double lr) { return train(lm, m, 0, steps, lr); }

    /** As {@link #train(LoraModel, BlockToy, int, double)}, numbering the updates from {@code first} (a fresh AdamW). */
    static double[] train(LoraModel lm, BlockToy m, int first, int steps, double lr) {
        AdamW opt = AdamW.withDefaults(lm.parameters("default"), 0.0);
        double[] losses = new double[steps];
        for (int i = 0; i < steps; i++) {
            int s = first + i;
            lm.beforeStep("default", s);
            opt.zeroGrad();
            try (Tape tape = Tape.record()) {
                Tensor loss = m.loss();
                losses[i] = loss.getFlat(0);
                tape.backward(loss);
            }
            lm.beforeUpdate("default", s);
            opt.step(lr);
            lm.afterStep("default", s, lr);
        }
        return losses;
    }
}
