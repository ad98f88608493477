package io.peft4j.adapters;

import io.peft4j.models.CausalLM;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The real PEFT adapters in ../shared/assets/adapters (trained and saved by Hugging Face PEFT) load onto random-weight
 * models of their architectures at full size, change the logits, and merge exactly.
 */
class RealPeftAdaptersTest {
    static ModelConfig gpt2Small() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("GPT2LMHeadModel"));
        m.put("model_type", "gpt2");
        m.put("vocab_size", 50257);
        m.put("n_embd", 768);
        m.put("n_layer", 12);
        m.put("n_head", 12);
        m.put("n_positions", 1024);
        m.put("activation_function", "gelu_new");
        m.put("layer_norm_epsilon", 1e-5);
        return ModelConfig.fromMap(m, "random GPT-2 small");
    }

    static ModelConfig qwen25Half() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("Qwen2ForCausalLM"));
        m.put("model_type", "qwen2");
        m.put("vocab_size", 151936);
        m.put("hidden_size", 896);
        m.put("intermediate_size", 4864);
        m.put("num_hidden_layers", 24);
        m.put("num_attention_heads", 14);
        m.put("num_key_value_heads", 2);
        m.put("max_position_embeddings", 32768);
        m.put("rms_norm_eps", 1e-6);
        m.put("rope_theta", 1000000.0);
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", true);
        return ModelConfig.fromMap(m, "random Qwen2.5-0.5B");
    }

    private static void check(Path adapter, CausalLM model, int expectedModules) throws Exception {
        int[] ids = {15, 2047, 318, 257, 1332};
        float[] base = model.forward(ids).toFloatArray();
        LoraModel lm = new LoraModel(model, 0);
        List<String> warnings = new ArrayList<>();
        LoraConfig cfg = lm.load(adapter, "default", warnings::add);
        assertEquals(expectedModules, lm.layers("default").size());
        float[] adapted = model.forward(ids).toFloatArray();
        double change = 0;
        for (int i = 0; i < base.length; i++) {
            assertTrue(Float.isFinite(adapted[i]));
            change = Math.max(change, Math.abs(adapted[i] - base[i]));
        }
        assertTrue(change > 1e-4, "a trained adapter must change the logits (max change " + change + ")");
        lm.merge();
        float[] merged = model.forward(ids).toFloatArray();
        for (int i = 0; i < base.length; i++) assertEquals(adapted[i], merged[i], 1e-3 * (1 + Math.abs(adapted[i])));
        assertTrue(cfg.r() == 8 && !cfg.useDora());
    }

    @Test
    void gpt2AdapterWithFanInFanOutLoadsOntoGpt2Small() throws Exception {
        Path adapter = Assets.require("adapters/gpt2-lora-r8");
        try (CausalLM model = RandomModels.causalLM(gpt2Small(), DType.BF16, 1)) {
            check(adapter, model, 36);   // c_attn, attn.c_proj and mlp.c_proj of 12 blocks
        }
    }

    @Test
    void qwenAdapterLoadsOntoQwen25Half() throws Exception {
        Path adapter = Assets.require("adapters/qwen2.5-0.5b-lora-r8");
        try (CausalLM model = RandomModels.causalLM(qwen25Half(), DType.BF16, 2)) {
            check(adapter, model, 48);   // q_proj and v_proj of 24 layers
        }
    }
}
