package io.peft4j.adapters.init;

import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A bag of named linear layers with given weights (no forward of its own): enough for {@link io.peft4j.adapters.LoraModel}
 * to attach method adapters, whose layers the tests then call one by one.
 */
final class TinyModule implements Module {
    private final Map<String, Linear> linears = new LinkedHashMap<>();

    /** Adds {@code name} with weight {@code w} [out, in] and no bias. */
    TinyModule with(String name, Tensor w) {
        linears.put(name, new Linear(name, w, null));
        return this;
    }

    /** Random layers named like HF Llama's q/v/down projections, in two blocks: shapes [8,8], [4,8], [8,12]. */
    static TinyModule standard(long seed) {
        TinyModule m = new TinyModule();
        for (int l = 0; l < 2; l++) {
            String p = "model.layers." + l + ".";
            m.with(p + "self_attn.q_proj", Tensor.randn(seed + 10L * l, 0.3f, 8, 8));
            m.with(p + "self_attn.v_proj", Tensor.randn(seed + 10L * l + 1, 0.3f, 4, 8));
            m.with(p + "mlp.down_proj", Tensor.randn(seed + 10L * l + 2, 0.3f, 8, 12));
        }
        return m;
    }

    @Override public Map<String, Linear> linears() { return linears; }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> p = new LinkedHashMap<>();
        linears.forEach((k, v) -> p.put(k + ".weight", v.weight()));
        return p;
    }
}
