package io.peft4j.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A model's hyper-parameters, parsed from a Hugging Face {@code config.json} (unknown keys are ignored). Keys are
 * read under each architecture's own spelling ({@code n_embd} for GPT-2, {@code hidden_size} elsewhere) and
 * defaulted as the HF config classes default them; a missing or invalid required key is one error naming the file
 * and the key.
 */
public final class ModelConfig {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Where the config came from (a path or a description), for error messages. */
    public final String source;
    public final Architecture architecture;
    public final String modelType;
    public final int vocabSize;
    public final int hiddenSize;
    public final int intermediateSize;
    public final int numLayers;
    public final int numHeads;
    public final int numKvHeads;
    public final int headDim;
    public final int maxPositions;
    /** rms_norm_eps, layer_norm_eps or layer_norm_epsilon, whichever the architecture uses. */
    public final float normEps;
    public final String hiddenAct;
    public final boolean tieWordEmbeddings;
    public final double ropeTheta;
    public final RopeScaling ropeScaling;       // null when absent or "default"
    public final boolean attentionBias;         // q/k/v (and for Llama also o) biases
    public final boolean mlpBias;
    public final Integer slidingWindow;         // Mistral / Qwen2; null when none
    public final int typeVocabSize;             // BERT token types
    public final int numLabels;                 // BERT sequence classification
    public final int bosTokenId;                // -1 when absent
    public final int[] eosTokenIds;             // possibly empty
    public final String torchDtype;             // null when absent
    /** The whole parsed JSON, for keys this class does not model. */
    public final JsonNode raw;

    /** rope_scaling: {@code type} is "linear" or "llama3". */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {}

    /** Reads and parses {@code config.json}. */
    public static ModelConfig parse(Path configJson) throws IOException {
        JsonNode n;
        try {
            n = JSON.readTree(configJson.toFile());
        } catch (IOException e) {
            throw new IOException(configJson + ": cannot read config: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) throw new IllegalArgumentException(configJson + ": config is not a JSON object");
        return new ModelConfig(n, configJson.toString());
    }

    /** Parses a config given as a map with HF config.json keys (e.g. from a llama2.c checkpoint). */
    public static ModelConfig fromMap(Map<String, ?> map, String source) {
        return new ModelConfig(JSON.valueToTree(map), source);
    }

    public static ModelConfig fromJson(JsonNode node, String source) { return new ModelConfig(node, source); }

    private ModelConfig(JsonNode n, String source) {
        this.source = source;
        this.raw = n;
        this.architecture = architectureOf(n, source);
        this.modelType = text(n, "model_type", architecture.modelType != null ? architecture.modelType : "bert");
        switch (architecture) {
            case GPT2 -> {
                hiddenSize = positive(n, "n_embd", null);
                numLayers = positive(n, "n_layer", null);
                numHeads = positive(n, "n_head", null);
                numKvHeads = numHeads;
                vocabSize = positive(n, "vocab_size", null);
                maxPositions = positive(n, "n_positions", 1024);
                intermediateSize = n.hasNonNull("n_inner") ? positive(n, "n_inner", null) : 4 * hiddenSize;
                headDim = divisible(hiddenSize, numHeads, "n_embd", "n_head");
                normEps = (float) number(n, "layer_norm_epsilon", 1e-5);
                hiddenAct = text(n, "activation_function", "gelu_new");
                tieWordEmbeddings = bool(n, "tie_word_embeddings", true);
                ropeTheta = 0;
                ropeScaling = null;
                attentionBias = true;
                mlpBias = true;
                slidingWindow = null;
                typeVocabSize = 0;
                numLabels = 0;
            }
            case BERT, BERT_SEQUENCE_CLASSIFICATION -> {
                hiddenSize = positive(n, "hidden_size", null);
                numLayers = positive(n, "num_hidden_layers", null);
                numHeads = positive(n, "num_attention_heads", null);
                numKvHeads = numHeads;
                vocabSize = positive(n, "vocab_size", null);
                intermediateSize = positive(n, "intermediate_size", null);
                maxPositions = positive(n, "max_position_embeddings", 512);
                headDim = divisible(hiddenSize, numHeads, "hidden_size", "num_attention_heads");
                normEps = (float) number(n, "layer_norm_eps", 1e-12);
                hiddenAct = text(n, "hidden_act", "gelu");
                tieWordEmbeddings = false;
                ropeTheta = 0;
                ropeScaling = null;
                attentionBias = true;
                mlpBias = true;
                slidingWindow = null;
                typeVocabSize = positive(n, "type_vocab_size", 2);
                String pet = text(n, "position_embedding_type", "absolute");
                if (!pet.equals("absolute"))
                    throw new IllegalArgumentException(source + ": position_embedding_type '" + pet + "' is not supported (only 'absolute')");
                if (n.hasNonNull("id2label") && n.get("id2label").isObject()) numLabels = n.get("id2label").size();
                else numLabels = positive(n, "num_labels", 2);
            }
            default -> {   // Llama family
                hiddenSize = positive(n, "hidden_size", null);
                numLayers = positive(n, "num_hidden_layers", null);
                numHeads = positive(n, "num_attention_heads", null);
                numKvHeads = positive(n, "num_key_value_heads", numHeads);
                if (numHeads % numKvHeads != 0)
                    throw new IllegalArgumentException(source + ": num_attention_heads " + numHeads + " is not a multiple of num_key_value_heads " + numKvHeads);
                vocabSize = positive(n, "vocab_size", null);
                intermediateSize = positive(n, "intermediate_size", null);
                maxPositions = positive(n, "max_position_embeddings", architecture == Architecture.QWEN2 ? 32768 : architecture == Architecture.MISTRAL ? 131072 : 2048);
                headDim = n.hasNonNull("head_dim") ? positive(n, "head_dim", null) : divisible(hiddenSize, numHeads, "hidden_size", "num_attention_heads");
                if (headDim % 2 != 0) throw new IllegalArgumentException(source + ": head_dim " + headDim + " must be even for RoPE");
                normEps = (float) number(n, "rms_norm_eps", 1e-6);
                hiddenAct = text(n, "hidden_act", "silu");
                tieWordEmbeddings = bool(n, "tie_word_embeddings", false);
                ropeTheta = number(n, "rope_theta", 10000.0);
                if (!(ropeTheta > 0)) throw new IllegalArgumentException(source + ": key 'rope_theta' must be positive, got " + ropeTheta);
                ropeScaling = ropeScaling(n, source);
                if (architecture == Architecture.QWEN2) {
                    attentionBias = true;       // Qwen2 always has q/k/v biases (and no o bias)
                    mlpBias = false;
                } else {
                    attentionBias = bool(n, "attention_bias", false);
                    mlpBias = bool(n, "mlp_bias", false);
                }
                Integer sw = null;
                if (n.hasNonNull("sliding_window") && (architecture == Architecture.MISTRAL || bool(n, "use_sliding_window", false)))
                    sw = positive(n, "sliding_window", null);
                slidingWindow = sw;
                typeVocabSize = 0;
                numLabels = 0;
            }
        }
        checkAct(hiddenAct, source);
        this.bosTokenId = n.hasNonNull("bos_token_id") && n.get("bos_token_id").isInt() ? n.get("bos_token_id").asInt() : -1;
        JsonNode eos = n.get("eos_token_id");
        if (eos == null || eos.isNull()) eosTokenIds = new int[0];
        else if (eos.isArray()) {
            eosTokenIds = new int[eos.size()];
            for (int i = 0; i < eosTokenIds.length; i++) eosTokenIds[i] = eos.get(i).asInt();
        } else eosTokenIds = new int[] {eos.asInt()};
        this.torchDtype = n.hasNonNull("torch_dtype") ? n.get("torch_dtype").asText() : null;
    }

    private static Architecture architectureOf(JsonNode n, String source) {
        JsonNode a = n.get("architectures");
        if (a != null && a.isArray() && !a.isEmpty()) return Architecture.fromHfName(a.get(0).asText(), source);
        if (a != null && !a.isNull() && !a.isArray())
            throw new IllegalArgumentException(source + ": key 'architectures' must be a list, got " + a);
        JsonNode mt = n.get("model_type");
        if (mt == null || !mt.isTextual())
            throw new IllegalArgumentException(source + ": missing key 'architectures' (and no 'model_type'); supported: " + Architecture.supportedNames());
        return Architecture.fromModelType(mt.asText(), source);
    }

    private static RopeScaling ropeScaling(JsonNode n, String source) {
        JsonNode rs = n.get("rope_scaling");
        if (rs == null || rs.isNull()) return null;
        if (!rs.isObject()) throw new IllegalArgumentException(source + ": key 'rope_scaling' must be an object, got " + rs);
        String type = rs.hasNonNull("rope_type") ? rs.get("rope_type").asText() : rs.hasNonNull("type") ? rs.get("type").asText() : null;
        if (type == null) throw new IllegalArgumentException(source + ": key 'rope_scaling' has neither 'rope_type' nor 'type'");
        String where = "rope_scaling";
        return switch (type) {
            case "default" -> null;
            case "linear" -> new RopeScaling("linear", positiveD(rs, "factor", where, source), 0, 0, 0);
            case "llama3" -> {
                double low = positiveD(rs, "low_freq_factor", where, source), high = positiveD(rs, "high_freq_factor", where, source);
                if (high <= low) throw new IllegalArgumentException(source + ": rope_scaling.high_freq_factor (" + high + ") must exceed low_freq_factor (" + low + ")");
                JsonNode om = rs.get("original_max_position_embeddings");
                if (om == null || !om.canConvertToInt() || om.asInt() <= 0)
                    throw new IllegalArgumentException(source + ": missing or invalid key 'rope_scaling.original_max_position_embeddings': " + om);
                yield new RopeScaling("llama3", positiveD(rs, "factor", where, source), low, high, om.asInt());
            }
            default -> throw new IllegalArgumentException(source + ": rope_scaling type '" + type + "' is not supported (supported: linear, llama3)");
        };
    }

    private static void checkAct(String act, String source) {
        switch (act) {
            case "silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> {}
            default -> throw new IllegalArgumentException(source + ": hidden activation '" + act + "' is not supported (silu, gelu, gelu_new, gelu_pytorch_tanh)");
        }
    }

    /** True if {@link #hiddenAct} is a tanh-approximated GELU. */
    public boolean tanhGelu() { return hiddenAct.equals("gelu_new") || hiddenAct.equals("gelu_pytorch_tanh") || hiddenAct.equals("gelu_fast"); }

    public boolean siluAct() { return hiddenAct.equals("silu") || hiddenAct.equals("swish"); }

    private int positive(JsonNode n, String key, Integer dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            if (dflt == null) throw new IllegalArgumentException(source + ": missing required key '" + key + "'");
            return dflt;
        }
        if (!v.canConvertToInt() || (v.isFloatingPointNumber() && v.asDouble() != Math.rint(v.asDouble())) || v.asInt() <= 0)
            throw new IllegalArgumentException(source + ": key '" + key + "' must be a positive integer, got " + v);
        return v.asInt();
    }

    private static double positiveD(JsonNode n, String key, String where, String source) {
        JsonNode v = n.get(key);
        if (v == null || !v.isNumber() || !(v.asDouble() > 0))
            throw new IllegalArgumentException(source + ": missing or invalid key '" + where + "." + key + "': " + v);
        return v.asDouble();
    }

    private double number(JsonNode n, String key, double dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw new IllegalArgumentException(source + ": key '" + key + "' must be a number, got " + v);
        return v.asDouble();
    }

    private boolean bool(JsonNode n, String key, boolean dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw new IllegalArgumentException(source + ": key '" + key + "' must be true or false, got " + v);
        return v.asBoolean();
    }

    private String text(JsonNode n, String key, String dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw new IllegalArgumentException(source + ": key '" + key + "' must be a string, got " + v);
        return v.asText();
    }

    private int divisible(int a, int b, String ka, String kb) {
        if (a % b != 0) throw new IllegalArgumentException(source + ": " + ka + " " + a + " is not divisible by " + kb + " " + b);
        return a / b;
    }

    /** RoPE inverse frequencies [headDim / 2] after rope_scaling, as HF's rope init functions compute them. */
    public double[] ropeInvFreq() {
        int half = headDim / 2;
        double[] inv = new double[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0 / Math.pow(ropeTheta, (2.0 * i) / headDim);
        if (ropeScaling == null) return inv;
        RopeScaling s = ropeScaling;
        if (s.type().equals("linear")) {
            for (int i = 0; i < half; i++) inv[i] /= s.factor();
            return inv;
        }
        // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated smoothly
        double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
        double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
        for (int i = 0; i < half; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor();
            else if (wavelen >= highWavelen) {
                double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
            }
        }
        return inv;
    }

    /** A one-line summary for logs and {@code inspect}. */
    public String summary() {
        StringBuilder b = new StringBuilder();
        b.append(architecture.hfName).append(": vocab ").append(vocabSize).append(", hidden ").append(hiddenSize)
                .append(", layers ").append(numLayers).append(", heads ").append(numHeads);
        if (numKvHeads != numHeads) b.append(" (kv ").append(numKvHeads).append(")");
        b.append(", head_dim ").append(headDim).append(", ffn ").append(intermediateSize)
                .append(", max_pos ").append(maxPositions).append(", act ").append(hiddenAct).append(", eps ").append(normEps);
        if (architecture.llamaFamily()) {
            b.append(", rope_theta ").append(ropeTheta);
            if (ropeScaling != null) b.append(", rope_scaling ").append(ropeScaling.type()).append(" x").append(ropeScaling.factor());
        }
        if (tieWordEmbeddings) b.append(", tied embeddings");
        if (slidingWindow != null) b.append(", sliding_window ").append(slidingWindow);
        if (architecture == Architecture.BERT_SEQUENCE_CLASSIFICATION) b.append(", labels ").append(numLabels);
        return b.toString();
    }

    /** A copy of the raw JSON as a mutable object, e.g. to write a config.json for a generated model. */
    public ObjectNode toJson() { return raw.deepCopy(); }
}
