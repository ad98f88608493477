package io.peft4j.adapters;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tiny two-layer "transformer-shaped" module for adapter tests: per layer q_proj (with bias), v_proj, o_proj and an
 * MLP up/down, then an lm_head. Names follow HF Llama so PEFT's target rules apply as on a real model.
 */
public class ToyModel implements Module {
    public final int d, ffn, vocab, layers;
    private final Map<String, Linear> linears = new LinkedHashMap<>();

    public ToyModel(long seed, int d, int ffn, int vocab, int layers) {
        this.d = d; this.ffn = ffn; this.vocab = vocab; this.layers = layers;
        long s = seed;
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            add(p + "self_attn.q_proj", Tensor.randn(++s, 0.3f, d, d), Tensor.randn(++s, 0.1f, d));
            add(p + "self_attn.v_proj", Tensor.randn(++s, 0.3f, d / 2, d), null);
            add(p + "self_attn.o_proj", Tensor.randn(++s, 0.3f, d, d / 2), null);
            add(p + "mlp.up_proj", Tensor.randn(++s, 0.3f, ffn, d), null);
            add(p + "mlp.down_proj", Tensor.randn(++s, 0.3f, d, ffn), null);
        }
        add("lm_head", Tensor.randn(++s, 0.3f, vocab, d), null);
    }

    private void add(String name, Tensor w, Tensor b) { linears.put(name, new Linear(name, w, b)); }

    /** x [rows, d] -> logits [rows, vocab]. */
    public Tensor forward(Tensor x) {
        Tensor h = x;
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            Tensor q = linears.get(p + "self_attn.q_proj").forward(h);
            Tensor v = linears.get(p + "self_attn.v_proj").forward(NnOps.silu(q));
            h = TensorOps.add(h, linears.get(p + "self_attn.o_proj").forward(v));
            Tensor u = NnOps.silu(linears.get(p + "mlp.up_proj").forward(h));
            h = TensorOps.add(h, linears.get(p + "mlp.down_proj").forward(u));
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
