package io.peft4j.models;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Random-weight models with no files behind them: benchmarks ({@code bench generate --config 100m}) and tests.
 * BF16 weights live off-heap in a segment, the way memory-mapped checkpoints do, so the kernels take the same path.
 */
public final class RandomModels {
    private RandomModels() {}

    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Named configs: {@code tiny} (a few hundred K parameters) and {@code 100m} (Llama, d 768, 12 layers, GQA 12/4, ffn 2048, vocab 32000). */
    public static ModelConfig namedConfig(String name) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", java.util.List.of("LlamaForCausalLM"));
        m.put("model_type", "llama");
        switch (name) {
            case "tiny" -> {
                m.put("vocab_size", 512);
                m.put("hidden_size", 64);
                m.put("intermediate_size", 176);
                m.put("num_hidden_layers", 4);
                m.put("num_attention_heads", 8);
                m.put("num_key_value_heads", 4);
                m.put("max_position_embeddings", 1024);
            }
            case "100m" -> {
                m.put("vocab_size", 32000);
                m.put("hidden_size", 768);
                m.put("intermediate_size", 2048);
                m.put("num_hidden_layers", 12);
                m.put("num_attention_heads", 12);
                m.put("num_key_value_heads", 4);
                m.put("max_position_embeddings", 2048);
            }
            default -> throw new IllegalArgumentException("unknown named config '" + name + "' (known: tiny, 100m)");
        }
        m.put("rms_norm_eps", 1e-5);
        m.put("rope_theta", 10000.0);
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", false);
        m.put("bos_token_id", 1);
        m.put("eos_token_id", 2);
        return ModelConfig.fromMap(m, "random:" + name);
    }

    /** A model of {@code config}'s architecture with random weights of {@code dtype} (F32, BF16 or F16). */
    public static Model build(ModelConfig config, DType dtype, long seed) {
        return Models.build(config, WeightSource.ofMap(weights(config, dtype, seed), "random " + config.architecture.hfName + " (seed " + seed + ")"));
    }

    public static CausalLM causalLM(ModelConfig config, DType dtype, long seed) {
        if (!config.architecture.causalLM) throw new IllegalArgumentException(config.architecture.hfName + " is not a causal LM");
        return (CausalLM) build(config, dtype, seed);
    }

    /** Random tensors under the HF names {@code config}'s architecture loads; matrices ~ U(-a, a) with std 0.02 (0.2 for embeddings of tiny models). */
    public static Map<String, Tensor> weights(ModelConfig c, DType dtype, long seed) {
        Gen g = new Gen(seed, dtype);
        Map<String, Tensor> m = new LinkedHashMap<>();
        int d = c.hiddenSize, f = c.intermediateSize;
        switch (c.architecture) {
            case LLAMA, MISTRAL, QWEN2 -> {
                int hq = c.numHeads * c.headDim, hkv = c.numKvHeads * c.headDim;
                boolean qkvBias = c.attentionBias, oBias = c.attentionBias && c.architecture != Architecture.QWEN2;
                m.put("model.embed_tokens.weight", g.matrix(0.5f, c.vocabSize, d));
                for (int i = 0; i < c.numLayers; i++) {
                    String p = "model.layers." + i + ".";
                    m.put(p + "input_layernorm.weight", g.norm(d));
                    linear(m, g, p + "self_attn.q_proj", hq, d, qkvBias);
                    linear(m, g, p + "self_attn.k_proj", hkv, d, qkvBias);
                    linear(m, g, p + "self_attn.v_proj", hkv, d, qkvBias);
                    linear(m, g, p + "self_attn.o_proj", d, hq, oBias);
                    m.put(p + "post_attention_layernorm.weight", g.norm(d));
                    linear(m, g, p + "mlp.gate_proj", f, d, c.mlpBias);
                    linear(m, g, p + "mlp.up_proj", f, d, c.mlpBias);
                    linear(m, g, p + "mlp.down_proj", d, f, c.mlpBias);
                }
                m.put("model.norm.weight", g.norm(d));
                if (!c.tieWordEmbeddings) m.put("lm_head.weight", g.matrix(0.05f, c.vocabSize, d));
            }
            case GPT2 -> {
                m.put("transformer.wte.weight", g.matrix(0.5f, c.vocabSize, d));
                m.put("transformer.wpe.weight", g.matrix(0.1f, c.maxPositions, d));
                for (int i = 0; i < c.numLayers; i++) {
                    String p = "transformer.h." + i + ".";
                    layerNorm(m, g, p + "ln_1", d);
                    conv1d(m, g, p + "attn.c_attn", d, 3 * d);
                    conv1d(m, g, p + "attn.c_proj", d, d);
                    layerNorm(m, g, p + "ln_2", d);
                    conv1d(m, g, p + "mlp.c_fc", d, f);
                    conv1d(m, g, p + "mlp.c_proj", f, d);
                }
                layerNorm(m, g, "transformer.ln_f", d);
                if (!c.tieWordEmbeddings) m.put("lm_head.weight", g.matrix(0.05f, c.vocabSize, d));
            }
            case BERT, BERT_SEQUENCE_CLASSIFICATION -> {
                String b = c.architecture == Architecture.BERT ? "" : "bert.";
                m.put(b + "embeddings.word_embeddings.weight", g.matrix(0.5f, c.vocabSize, d));
                m.put(b + "embeddings.position_embeddings.weight", g.matrix(0.1f, c.maxPositions, d));
                m.put(b + "embeddings.token_type_embeddings.weight", g.matrix(0.1f, c.typeVocabSize, d));
                layerNorm(m, g, b + "embeddings.LayerNorm", d);
                for (int i = 0; i < c.numLayers; i++) {
                    String p = b + "encoder.layer." + i + ".";
                    linear(m, g, p + "attention.self.query", d, d, true);
                    linear(m, g, p + "attention.self.key", d, d, true);
                    linear(m, g, p + "attention.self.value", d, d, true);
                    linear(m, g, p + "attention.output.dense", d, d, true);
                    layerNorm(m, g, p + "attention.output.LayerNorm", d);
                    linear(m, g, p + "intermediate.dense", f, d, true);
                    linear(m, g, p + "output.dense", d, f, true);
                    layerNorm(m, g, p + "output.LayerNorm", d);
                }
                linear(m, g, b + "pooler.dense", d, d, true);
                if (!b.isEmpty()) linear(m, g, "classifier", c.numLabels, d, true);
            }
        }
        return m;
    }

    private static void linear(Map<String, Tensor> m, Gen g, String name, int out, int in, boolean bias) {
        m.put(name + ".weight", g.matrix((float) (1.0 / Math.sqrt(in)), out, in));
        if (bias) m.put(name + ".bias", g.vector(0.05f, 0f, out));
    }

    private static void conv1d(Map<String, Tensor> m, Gen g, String name, int in, int out) {
        m.put(name + ".weight", g.matrix((float) (1.0 / Math.sqrt(in)), in, out));
        m.put(name + ".bias", g.vector(0.05f, 0f, out));
    }

    private static void layerNorm(Map<String, Tensor> m, Gen g, String name, int d) {
        m.put(name + ".weight", g.norm(d));
        m.put(name + ".bias", g.vector(0.05f, 0f, d));
    }

    /** Uniform numbers from a seeded xorshift stream; matrices in the requested dtype, vectors in F32. */
    private static final class Gen {
        long s;
        final DType dtype;

        Gen(long seed, DType dtype) {
            this.s = seed * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
            if (s == 0) s = 1;
            this.dtype = dtype;
        }

        /** Uniform in [-1, 1). */
        float next() {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            return ((s >>> 40) / (float) (1 << 24)) * 2f - 1f;
        }

        Tensor matrix(float std, int rows, int cols) {
            float a = std * (float) Math.sqrt(3);        // U(-a, a) has standard deviation a / sqrt(3)
            long n = (long) rows * cols;
            if (dtype == DType.F32) {
                float[] x = new float[Math.toIntExact(n)];
                for (int i = 0; i < x.length; i++) x[i] = a * next();
                return Tensor.of(x, rows, cols);
            }
            if (dtype != DType.BF16 && dtype != DType.F16) throw new IllegalArgumentException("random weights need F32, BF16 or F16, got " + dtype);
            MemorySegment seg = Arena.ofAuto().allocate(n * 2, 64);
            for (long i = 0; i < n; i++) {
                float v = a * next();
                seg.set(I16_LE, 2 * i, dtype == DType.BF16 ? DType.floatToBf16(v) : DType.floatToF16(v));
            }
            return Tensor.ofSegment(seg, dtype, rows, cols);
        }

        Tensor vector(float std, float mean, int n) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = mean + std * next();
            return Tensor.of(x, n);
        }

        Tensor norm(int n) { return vector(0.1f, 1f, n); }
    }
}
