package io.peft4j.models;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The model forwards are built from differentiable ops: with a tape recording, gradients of the logits reach
 * weights that require them (finite-difference checked on tiny random F32 models), and frozen ones get none.
 */
class ModelGradientTest {
    static GradCheck check() {
        GradCheck g = GradCheck.defaults();
        g.maxChecksPerInput = 24;          // each check is two full forwards; a sample suffices
        return g;
    }

    static Map<String, Object> cfg(String arch) {
        Map<String, Object> m = new HashMap<>();
        m.put("architectures", List.of(arch));
        m.put("vocab_size", 23);
        m.put("hidden_size", 16);
        m.put("intermediate_size", 20);
        m.put("num_hidden_layers", 2);
        m.put("num_attention_heads", 4);
        m.put("num_key_value_heads", 2);
        m.put("max_position_embeddings", 16);
        return m;
    }

    static Tensor param(Model m, String name) {
        Tensor t = m.parameters().get(name);
        assertNotNull(t, "no parameter " + name + " in " + m.parameters().keySet());
        return t.requiresGrad(true);
    }

    @Test
    void llamaFamilyLogitsAreDifferentiable() {
        Map<String, Object> c = cfg("Qwen2ForCausalLM");                // q/k/v biases on top of the Llama path
        CausalLM m = RandomModels.causalLM(ModelConfig.fromMap(c, "qwen2-tiny"), DType.F32, 11);
        int[] ids = {3, 17, 5, 9, 22};
        Tensor q = param(m, "model.layers.0.self_attn.q_proj.weight");
        Tensor kb = param(m, "model.layers.1.self_attn.k_proj.bias");
        Tensor norm = param(m, "model.layers.1.post_attention_layernorm.weight");
        Tensor down = param(m, "model.layers.0.mlp.down_proj.weight");
        Tensor frozen = m.parameters().get("model.layers.1.mlp.up_proj.weight");
        check().check("qwen2 logits", in -> m.forward(ids, 1, ids.length, null), q, kb, norm, down);
        assertNull(frozen.grad(), "a frozen weight gets no gradient buffer");
    }

    @Test
    void gpt2LogitsAreDifferentiableThroughConv1dViews() {
        Map<String, Object> c = new HashMap<>(Map.of("architectures", List.of("GPT2LMHeadModel"), "vocab_size", 19, "n_embd", 12,
                "n_layer", 2, "n_head", 3, "n_positions", 12));
        CausalLM m = RandomModels.causalLM(ModelConfig.fromMap(c, "gpt2-tiny"), DType.F32, 12);
        int[] ids = {1, 18, 4, 4, 7, 0};
        Tensor ln = param(m, "transformer.h.1.ln_1.weight");
        Tensor bias = param(m, "transformer.h.0.attn.c_attn.bias");
        Tensor wpe = param(m, "transformer.wpe.weight");
        // a Conv1D weight is trained through the layer's [out, in] view, which the forward reads
        Tensor fc = m.linears().get("transformer.h.0.mlp.c_fc").weight().contiguous();
        m.linears().get("transformer.h.0.mlp.c_fc").setWeight(fc.requiresGrad(true));
        check().check("gpt2 logits", in -> m.forward(ids, 1, ids.length, null), ln, bias, wpe, fc);
    }

    @Test
    void bertClassifierLogitsAreDifferentiable() {
        Map<String, Object> c = new HashMap<>(cfg("BertForSequenceClassification"));
        c.remove("num_key_value_heads");
        c.put("num_labels", 3);
        BertModel m = (BertModel) RandomModels.build(ModelConfig.fromMap(c, "bert-tiny"), DType.F32, 13);
        int[] ids = {2, 7, 7, 15, 0};
        int[] types = {0, 0, 1, 1, 1}, mask = {1, 1, 1, 1, 0};
        Tensor query = param(m, "bert.encoder.layer.0.attention.self.query.weight");
        Tensor ln = param(m, "bert.encoder.layer.1.output.LayerNorm.bias");
        Tensor pool = param(m, "bert.pooler.dense.weight");
        Tensor tt = param(m, "bert.embeddings.token_type_embeddings.weight");
        check().check("bert logits", in -> m.forward(ids, types, mask, 1, ids.length).logits(), query, ln, pool, tt);
    }
}
