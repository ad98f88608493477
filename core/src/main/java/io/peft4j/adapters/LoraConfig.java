package io.peft4j.adapters;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A LoRA adapter's configuration, key for key the {@code adapter_config.json} that Hugging Face PEFT writes for
 * {@code peft_type = "LORA"}. Built with {@link #builder()} or read with {@link #read(Path, Consumer)}; the whole record
 * is passed down to layers (never loose arguments).
 *
 * @param targetModules   module names: exact name or dotted suffix; or {@code null} when {@link #targetRegex} is set
 * @param targetRegex     a regex that must match the whole module name (PEFT's string form), or "all-linear"
 * @param initLoraWeights "true" (Kaiming-uniform A, zero B), "false" (random B too: not an identity), "gaussian",
 *                        "pissa", "pissa_niter_N", "olora"
 * @param bias            "none", "all" or "lora_only"
 */
public record LoraConfig(
        int r,
        double loraAlpha,
        double loraDropout,
        List<String> targetModules,
        String targetRegex,
        List<String> excludeModules,
        String excludeRegex,
        List<Integer> layersToTransform,
        List<String> layersPattern,
        Map<String, Integer> rankPattern,
        Map<String, Double> alphaPattern,
        List<String> modulesToSave,
        boolean fanInFanOut,
        String bias,
        boolean loraBias,
        boolean useRslora,
        boolean useDora,
        String initLoraWeights,
        String taskType,
        String baseModelNameOrPath,
        boolean inferenceMode) {

    public static final String ALL_LINEAR = "all-linear";

    public LoraConfig {
        if (r <= 0) throw new IllegalArgumentException("LoRA rank r must be positive, got " + r);
        if (loraDropout < 0 || loraDropout >= 1) throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + loraDropout);
        if ((targetModules == null) == (targetRegex == null))
            throw new IllegalArgumentException("exactly one of target_modules (list) or a target regex must be given");
        if (!Set.of("none", "all", "lora_only").contains(bias))
            throw new IllegalArgumentException("bias must be none, all or lora_only, got '" + bias + "'");
        if (!initLoraWeights.matches("true|false|gaussian|pissa|pissa_niter_\\d+|olora"))
            throw new IllegalArgumentException("init_lora_weights '" + initLoraWeights + "' is not supported (true, false, gaussian, pissa, pissa_niter_N, olora)");
        targetModules = targetModules == null ? null : List.copyOf(targetModules);
        excludeModules = excludeModules == null ? null : List.copyOf(excludeModules);
        layersToTransform = layersToTransform == null ? null : List.copyOf(layersToTransform);
        layersPattern = layersPattern == null ? null : List.copyOf(layersPattern);
        // insertion order matters: the first matching pattern key wins
        rankPattern = Collections.unmodifiableMap(rankPattern == null ? new LinkedHashMap<>() : new LinkedHashMap<>(rankPattern));
        alphaPattern = Collections.unmodifiableMap(alphaPattern == null ? new LinkedHashMap<>() : new LinkedHashMap<>(alphaPattern));
        modulesToSave = modulesToSave == null ? null : List.copyOf(modulesToSave);
    }

    /** The rank for a module: the first {@code rank_pattern} key that matches its name (PEFT's rule), else r. */
    public int rankFor(String moduleName) {
        String k = TargetMatcher.patternKey(rankPattern.keySet(), moduleName);
        return k != null ? rankPattern.get(k) : r;
    }

    /** The alpha for a module: the first {@code alpha_pattern} key that matches, else lora_alpha. */
    public double alphaFor(String moduleName) {
        String k = TargetMatcher.patternKey(alphaPattern.keySet(), moduleName);
        return k != null ? alphaPattern.get(k) : loraAlpha;
    }

    /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
    public double scalingFor(String moduleName) {
        int rank = rankFor(moduleName);
        double alpha = alphaFor(moduleName);
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    public static Builder builder() { return new Builder(); }

    public Builder toBuilder() { return new Builder(this); }

    // ------------------------------------------------------------------------------------------------ JSON

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** Keys PEFT writes for LoRA that peft4j reads or knowingly ignores (null/default values). */
    private static final Set<String> KNOWN_KEYS = Set.of(
            "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "corda_config", "eva_config",
            "exclude_modules", "fan_in_fan_out", "inference_mode", "init_lora_weights", "layer_replication",
            "layers_pattern", "layers_to_transform", "loftq_config", "lora_alpha", "lora_bias", "lora_dropout",
            "megatron_config", "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
            "target_modules", "task_type", "use_dora", "use_rslora", "trainable_token_indices", "target_parameters",
            "qalora_group_size", "use_qalora", "runtime_config", "peft_version", "ensure_weight_tying",
            "arrow_config", "alora_invocation_tokens");

    /** Keys whose non-default values change the computation in ways peft4j does not implement. */
    private static final Set<String> UNSUPPORTED_IF_SET = Set.of(
            "layer_replication", "megatron_config", "trainable_token_indices", "target_parameters", "alora_invocation_tokens",
            "arrow_config");

    /**
     * Reads an {@code adapter_config.json}. Unknown keys are tolerated with a warning (PEFT adds keys over time);
     * a missing required key, a wrong peft_type or a bad value is an error naming the file and the key.
     */
    public static LoraConfig read(Path file, Consumer<String> warn) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IOException(file + ": expected a JSON object");
        try {
            return fromJson((ObjectNode) root, warn, file.toString());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    static LoraConfig fromJson(ObjectNode o, Consumer<String> warn, String source) {
        for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KNOWN_KEYS.contains(k)) warn.accept(source + ": unknown key '" + k + "' ignored");
            else if (UNSUPPORTED_IF_SET.contains(k) && !isEmpty(o.get(k)))
                warn.accept(source + ": key '" + k + "' is set but not supported by peft4j; ignored");
        }
        String type = required(o, "peft_type").asText();
        if (!type.equals("LORA")) throw new IllegalArgumentException("peft_type is '" + type + "', expected 'LORA'");
        Builder b = builder();
        b.r(requiredInt(o, "r"));
        b.alpha(requiredNumber(o, "lora_alpha"));
        if (o.hasNonNull("lora_dropout")) b.dropout(number(o, "lora_dropout"));
        JsonNode t = required(o, "target_modules");
        if (t.isTextual()) b.targetRegex(t.asText());
        else if (t.isArray()) b.targets(strings(t, "target_modules"));
        else throw new IllegalArgumentException("target_modules must be a list of names or a regex string");
        JsonNode ex = o.get("exclude_modules");
        if (ex != null && !ex.isNull()) {
            if (ex.isTextual()) b.excludeRegex(ex.asText()); else b.exclude(strings(ex, "exclude_modules"));
        }
        JsonNode lt = o.get("layers_to_transform");
        if (lt != null && !lt.isNull()) {
            List<Integer> layers = new ArrayList<>();
            if (lt.isInt()) layers.add(lt.asInt());
            else for (JsonNode n : lt) { if (!n.isInt()) throw new IllegalArgumentException("layers_to_transform must hold integers"); layers.add(n.asInt()); }
            b.layersToTransform(layers);
        }
        JsonNode lp = o.get("layers_pattern");
        if (lp != null && !lp.isNull()) b.layersPattern(lp.isTextual() ? List.of(lp.asText()) : strings(lp, "layers_pattern"));
        JsonNode rp = o.get("rank_pattern");
        if (rp != null && rp.isObject()) rp.fields().forEachRemaining(e -> b.rankPattern.put(e.getKey(), e.getValue().asInt()));
        JsonNode ap = o.get("alpha_pattern");
        if (ap != null && ap.isObject()) ap.fields().forEachRemaining(e -> b.alphaPattern.put(e.getKey(), e.getValue().asDouble()));
        JsonNode ms = o.get("modules_to_save");
        if (ms != null && !ms.isNull()) b.modulesToSave(strings(ms, "modules_to_save"));
        b.fanInFanOut(o.path("fan_in_fan_out").asBoolean(false));
        b.bias(o.path("bias").asText("none"));
        b.loraBias(o.path("lora_bias").asBoolean(false));
        b.rslora(o.path("use_rslora").asBoolean(false));
        b.dora(o.path("use_dora").asBoolean(false));
        JsonNode init = o.get("init_lora_weights");
        if (init != null && !init.isNull()) b.init(init.isBoolean() ? Boolean.toString(init.asBoolean()) : init.asText());
        if (o.hasNonNull("task_type")) b.taskType(o.get("task_type").asText());
        if (o.hasNonNull("base_model_name_or_path")) b.baseModel(o.get("base_model_name_or_path").asText());
        b.inferenceMode(o.path("inference_mode").asBoolean(true));
        return b.build();
    }

    /** Writes every key PEFT writes for a LoRA config, with PEFT's defaults for the ones peft4j does not use. */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        ObjectNode alphas = o.putObject("alpha_pattern");
        alphaPattern.forEach(alphas::put);
        o.putNull("auto_mapping");
        if (baseModelNameOrPath != null) o.put("base_model_name_or_path", baseModelNameOrPath); else o.putNull("base_model_name_or_path");
        o.put("bias", bias);
        o.putNull("corda_config");
        o.putNull("eva_config");
        if (excludeRegex != null) o.put("exclude_modules", excludeRegex);
        else if (excludeModules != null) putStrings(o.putArray("exclude_modules"), excludeModules);
        else o.putNull("exclude_modules");
        o.put("fan_in_fan_out", fanInFanOut);
        o.put("inference_mode", inferenceMode);
        switch (initLoraWeights) {
            case "true" -> o.put("init_lora_weights", true);
            case "false" -> o.put("init_lora_weights", false);
            default -> o.put("init_lora_weights", initLoraWeights);
        }
        o.putNull("layer_replication");
        if (layersPattern != null) putStrings(o.putArray("layers_pattern"), layersPattern); else o.putNull("layers_pattern");
        if (layersToTransform != null) { ArrayNode a = o.putArray("layers_to_transform"); layersToTransform.forEach(a::add); }
        else o.putNull("layers_to_transform");
        o.putObject("loftq_config");
        if (loraAlpha == Math.rint(loraAlpha)) o.put("lora_alpha", (long) loraAlpha); else o.put("lora_alpha", loraAlpha);
        o.put("lora_bias", loraBias);
        o.put("lora_dropout", loraDropout);
        o.putNull("megatron_config");
        o.put("megatron_core", "megatron.core");
        if (modulesToSave != null) putStrings(o.putArray("modules_to_save"), modulesToSave); else o.putNull("modules_to_save");
        o.put("peft_type", "LORA");
        o.put("r", r);
        ObjectNode ranks = o.putObject("rank_pattern");
        rankPattern.forEach(ranks::put);
        o.putNull("revision");
        if (targetRegex != null) o.put("target_modules", targetRegex);
        else putStrings(o.putArray("target_modules"), targetModules);
        o.putNull("target_parameters");
        if (taskType != null) o.put("task_type", taskType); else o.putNull("task_type");
        o.putNull("trainable_token_indices");
        o.put("use_dora", useDora);
        o.put("use_qalora", false);
        o.put("qalora_group_size", 16);
        o.put("use_rslora", useRslora);
        return o;
    }

    /** The JSON text of {@link #toJson()}. */
    public String toJsonString() {
        try { return JSON.writeValueAsString(toJson()); } catch (IOException e) { throw new IllegalStateException(e); }
    }

    private static void putStrings(ArrayNode a, List<String> values) { values.forEach(a::add); }

    private static boolean isEmpty(JsonNode n) {
        return n == null || n.isNull() || (n.isContainerNode() && n.isEmpty()) || (n.isTextual() && n.asText().isEmpty());
    }

    private static JsonNode required(ObjectNode o, String key) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) throw new IllegalArgumentException("missing required key '" + key + "'");
        return n;
    }

    private static int requiredInt(ObjectNode o, String key) {
        JsonNode n = required(o, key);
        if (!n.canConvertToExactIntegral() && !n.isIntegralNumber()) throw new IllegalArgumentException("key '" + key + "' must be an integer, got " + n);
        return n.asInt();
    }

    private static double requiredNumber(ObjectNode o, String key) { return number(o, key); }

    private static double number(ObjectNode o, String key) {
        JsonNode n = required(o, key);
        if (!n.isNumber()) throw new IllegalArgumentException("key '" + key + "' must be a number, got " + n);
        return n.asDouble();
    }

    private static List<String> strings(JsonNode n, String key) {
        if (!n.isArray()) throw new IllegalArgumentException("key '" + key + "' must be a list of strings");
        List<String> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isTextual()) throw new IllegalArgumentException("key '" + key + "' must hold strings, got " + e);
            out.add(e.asText());
        }
        return out;
    }

    /** Builder with PEFT's defaults: r 8, alpha 8, dropout 0, bias none, init true. */
    public static final class Builder {
        private int r = 8;
        private double alpha = 8, dropout = 0;
        private List<String> targets, exclude, modulesToSave, layersPattern;
        private String targetRegex, excludeRegex;
        private List<Integer> layersToTransform;
        private final Map<String, Integer> rankPattern = new LinkedHashMap<>();
        private final Map<String, Double> alphaPattern = new LinkedHashMap<>();
        private boolean fanInFanOut, loraBias, rslora, dora, inferenceMode;
        private String bias = "none", init = "true", taskType = "CAUSAL_LM", baseModel;

        Builder() {}

        Builder(LoraConfig c) {
            r = c.r; alpha = c.loraAlpha; dropout = c.loraDropout; targets = c.targetModules; targetRegex = c.targetRegex;
            exclude = c.excludeModules; excludeRegex = c.excludeRegex; layersToTransform = c.layersToTransform;
            layersPattern = c.layersPattern; rankPattern.putAll(c.rankPattern); alphaPattern.putAll(c.alphaPattern);
            modulesToSave = c.modulesToSave; fanInFanOut = c.fanInFanOut; bias = c.bias; loraBias = c.loraBias;
            rslora = c.useRslora; dora = c.useDora; init = c.initLoraWeights; taskType = c.taskType;
            baseModel = c.baseModelNameOrPath; inferenceMode = c.inferenceMode;
        }

        public Builder r(int v) { r = v; return this; }
        public Builder alpha(double v) { alpha = v; return this; }
        public Builder dropout(double v) { dropout = v; return this; }
        public Builder targets(List<String> v) { targets = v; targetRegex = null; return this; }
        public Builder targets(String... v) { return targets(List.of(v)); }
        /** A regex over whole module names, or {@value #ALL_LINEAR}. */
        public Builder targetRegex(String v) { targetRegex = v; targets = null; return this; }
        public Builder exclude(List<String> v) { exclude = v; excludeRegex = null; return this; }
        public Builder excludeRegex(String v) { excludeRegex = v; exclude = null; return this; }
        public Builder layersToTransform(List<Integer> v) { layersToTransform = v; return this; }
        public Builder layersPattern(List<String> v) { layersPattern = v; return this; }
        public Builder rankPattern(String key, int rank) { rankPattern.put(key, rank); return this; }
        public Builder alphaPattern(String key, double a) { alphaPattern.put(key, a); return this; }
        public Builder modulesToSave(List<String> v) { modulesToSave = v; return this; }
        public Builder fanInFanOut(boolean v) { fanInFanOut = v; return this; }
        public Builder bias(String v) { bias = v; return this; }
        public Builder loraBias(boolean v) { loraBias = v; return this; }
        public Builder rslora(boolean v) { rslora = v; return this; }
        public Builder dora(boolean v) { dora = v; return this; }
        public Builder init(String v) { init = v; return this; }
        public Builder taskType(String v) { taskType = v; return this; }
        public Builder baseModel(String v) { baseModel = v; return this; }
        public Builder inferenceMode(boolean v) { inferenceMode = v; return this; }

        /** An independent builder with this one's settings. */
        public Builder toBuilderCopy() { return build().toBuilder(); }
        public Builder clearRankPattern() { rankPattern.clear(); alphaPattern.clear(); return this; }

        public LoraConfig build() {
            return new LoraConfig(r, alpha, dropout, targets, targetRegex, exclude, excludeRegex, layersToTransform,
                    layersPattern, rankPattern, alphaPattern, modulesToSave, fanInFanOut, bias, loraBias, rslora, dora,
                    init, taskType, baseModel, inferenceMode);
        }
    }
}
