package io.peft4j.adapters.structure;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tiny row-wise model for the mixture tests (MoLA, SMoRA, MM-LoRA): per layer a q_proj (with bias), v_proj and
 * mlp.down_proj with Llama's module names, residual adds, then an lm_head. Every op acts on each row (token) alone,
 * so a token's output depends on its own input only: mixed batches can be compared row by row.
 */
final class MixtureToy implements Module {
    final int d, vocab, layers;
    private final Map<String, Linear> linears = new LinkedHashMap<>();

    MixtureToy(long seed, int d, int vocab, int layers) {
        this.d = d; this.vocab = vocab; this.layers = layers;
        long s = seed;
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            add(p + "self_attn.q_proj", Tensor.randn(++s, 0.4f, d, d), Tensor.randn(++s, 0.1f, d));
            add(p + "self_attn.v_proj", Tensor.randn(++s, 0.4f, d, d), null);
            add(p + "mlp.down_proj", Tensor.randn(++s, 0.4f, d, d), null);
        }
        add("lm_head", Tensor.randn(++s, 0.4f, vocab, d), null);
    }

    private void add(String name, Tensor w, Tensor b) { linears.put(name, new Linear(name, w, b)); }

    /** x [N, d] -> logits [N, vocab]. */
    Tensor forward(Tensor x) {
        Tensor h = x;
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            Tensor q = NnOps.silu(linears.get(p + "self_attn.q_proj").forward(h));
            h = TensorOps.add(h, linears.get(p + "self_attn.v_proj").forward(q));
            h = TensorOps.add(h, linears.get(p + "mlp.down_proj").forward(NnOps.silu(h)));
        }
        return linears.get("lm_head").forward(h);
    }

    @Override public Map<String, Linear> linears() { return linears; }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> p = new LinkedHashMap<>();
        linears.forEach((k, v) -> { p.put(k + ".weight", v.weight()); if (v.bias() != null) p.put(k + ".bias", v.bias()); });
        return p;
    }
}
