package io.peft4j.models;

import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ModelConfigTest {
    static Map<String, Object> llama() {
        Map<String, Object> m = new HashMap<>();
        m.put("architectures", List.of("LlamaForCausalLM"));
        m.put("vocab_size", 100);
        m.put("hidden_size", 64);
        m.put("intermediate_size", 128);
        m.put("num_hidden_layers", 2);
        m.put("num_attention_heads", 4);
        return m;
    }

    @Test
    void llamaDefaultsFollowHf() {
        ModelConfig c = ModelConfig.fromMap(llama(), "test");
        assertEquals(4, c.numKvHeads);
        assertEquals(16, c.headDim);
        assertEquals(1e-6f, c.normEps);
        assertEquals(10000.0, c.ropeTheta);
        assertFalse(c.tieWordEmbeddings);
        assertEquals("silu", c.hiddenAct);
        assertNull(c.ropeScaling);
    }

    @Test
    void gpt2KeysFromTheRealConfig() throws Exception {
        ModelConfig c = ModelConfig.parse(Assets.require("tokenizers/gpt2/config.json"));
        assertEquals(Architecture.GPT2, c.architecture);
        assertEquals(768, c.hiddenSize);
        assertEquals(3072, c.intermediateSize);    // n_inner absent -> 4 * n_embd
        assertEquals(64, c.headDim);
        assertTrue(c.tieWordEmbeddings);
        assertTrue(c.tanhGelu());
        assertEquals(1024, c.maxPositions);
    }

    @Test
    void llama3RopeScalingMatchesHfFormula() {
        Map<String, Object> m = llama();
        m.put("rope_theta", 500000.0);
        m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                "original_max_position_embeddings", 8192));
        double[] inv = ModelConfig.fromMap(m, "test").ropeInvFreq();
        m.remove("rope_scaling");
        double[] base = ModelConfig.fromMap(m, "test").ropeInvFreq();
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / base[i];
            if (wavelen < 8192 / 4.0) assertEquals(base[i], inv[i], 1e-15, "high frequencies are kept");
            else if (wavelen > 8192 / 1.0) assertEquals(base[i] / 8, inv[i], 1e-15, "low frequencies are slowed by factor");
            else assertTrue(inv[i] < base[i] && inv[i] > base[i] / 8, "medium band interpolates");
        }
        assertEquals(base[0], inv[0]);
        assertEquals(base[inv.length - 1] / 8, inv[inv.length - 1], 1e-18);
    }

    @Test
    void linearRopeScalingDividesFrequencies() {
        Map<String, Object> m = llama();
        m.put("rope_scaling", Map.of("type", "linear", "factor", 4.0));
        double[] inv = ModelConfig.fromMap(m, "test").ropeInvFreq();
        assertEquals(1.0 / 4, inv[0], 1e-15);
    }

    @Test
    void architecturesFallBackToModelType() {
        Map<String, Object> m = llama();
        m.remove("architectures");
        m.put("model_type", "qwen2");
        ModelConfig c = ModelConfig.fromMap(m, "test");
        assertEquals(Architecture.QWEN2, c.architecture);
        assertTrue(c.attentionBias);
    }

    @Test
    void invalidValuesNameTheKey() {
        Map<String, Object> m = llama();
        m.put("rms_norm_eps", "tiny");
        Exception e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromMap(m, "cfg.json"));
        assertEquals("cfg.json: key 'rms_norm_eps' must be a number, got \"tiny\"", e.getMessage());
        m.put("rms_norm_eps", 1e-5);
        m.put("hidden_act", "relu6");
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromMap(m, "cfg.json"));
        assertTrue(e.getMessage().contains("'relu6'"), e.getMessage());
    }
}
