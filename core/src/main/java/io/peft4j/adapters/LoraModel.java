package io.peft4j.adapters;

import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.Linear;
import io.peft4j.nn.LinearHook;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Named LoRA adapters on a model, as PEFT's {@code LoraModel}: add (inject by PEFT's target rules), set active,
 * disable, delete, merge / unmerge / merge-and-unload, save and load in PEFT's on-disk format.
 *
 * <p>Merging keeps the pre-merge weights so that unmerge restores the base bit for bit.
 */
public final class LoraModel {
    /** PEFT's prefix of every key in adapter_model.safetensors. */
    public static final String PREFIX = "base_model.model.";
    public static final String DEFAULT = "default";
    static final Set<String> OUTPUT_HEADS = Set.of("lm_head", "classifier", "score", "cls.predictions.decoder");

    private final Module model;
    private final AdapterRuntime runtime;
    private final Map<String, LoraConfig> configs = new LinkedHashMap<>();
    private final Map<String, Map<String, LoraLayer>> layers = new LinkedHashMap<>();   // adapter -> module -> layer
    private final Map<String, Map<String, Tensor>> extraTrainables = new LinkedHashMap<>(); // biases, modules_to_save
    private final Map<String, Map<String, LoraEmbeddingLayer>> embLayers = new LinkedHashMap<>(); // adapter -> module -> layer
    private final Map<Linear, Deque<Tensor[]>> mergeStack = new HashMap<>();             // pre-merge {weight, bias}
    private final Map<Embedding, Tensor> embMergeStack = new HashMap<>();                // pre-merge embedding weight
    private final List<String> merged = new ArrayList<>();
    private List<String> active = new ArrayList<>();
    private boolean disabled;

    public LoraModel(Module model, long seed) {
        this.model = model;
        this.runtime = new AdapterRuntime(seed);
    }

    public Module model() { return model; }
    public AdapterRuntime runtime() { return runtime; }
    public Set<String> adapters() { return configs.keySet(); }
    public LoraConfig config(String adapter) { return requireAdapter(adapter); }
    public List<String> activeAdapters() { return List.copyOf(active); }

    /** Layers of one adapter by module name. */
    public Map<String, LoraLayer> layers(String adapter) { requireAdapter(adapter); return layers.get(adapter); }

    /** Training mode turns dropout on. */
    public void train(boolean training) { runtime.training(training); }

    /**
     * Injects a new adapter initialised by {@code config.initLoraWeights()}; it becomes active (alongside none:
     * {@link #setActive} picks several). Throws if no module matches (listing the model's linear layers) or a rank
     * does not fit a layer.
     */
    public Map<String, LoraLayer> add(String adapter, LoraConfig config) {
        if (configs.containsKey(adapter)) throw new IllegalArgumentException("adapter '" + adapter + "' already exists");
        if (!merged.isEmpty()) throw new IllegalStateException("unmerge adapters " + merged + " before adding another");
        Map<String, Linear> linears = model.linears();
        Map<String, Embedding> embeddings = model.embeddings();
        List<String> targets = TargetMatcher.select(config, linears.keySet(), OUTPUT_HEADS);
        boolean allLinear = LoraConfig.ALL_LINEAR.equalsIgnoreCase(config.targetRegex());
        List<String> embTargets = allLinear ? List.of() : TargetMatcher.select(config, embeddings.keySet(), Set.of());
        if (targets.isEmpty() && embTargets.isEmpty()) {
            Set<String> names = new LinkedHashSet<>(linears.keySet());
            names.addAll(embeddings.keySet());
            throw new IllegalArgumentException(noMatchMessage(config, names));
        }
        SplittableRandom rng = new SplittableRandom(runtime.seed() ^ adapter.hashCode());
        Map<String, LoraLayer> created = new LinkedHashMap<>();
        for (String name : targets) {
            Linear lin = linears.get(name);
            created.put(name, LoraInit.create(adapter, name, lin, config, runtime, rng));
        }
        Map<String, LoraEmbeddingLayer> emb = new LinkedHashMap<>();
        for (String name : embTargets) emb.put(name, LoraInit.createEmbedding(adapter, name, embeddings.get(name), config, rng));
        embLayers.put(adapter, emb);
        register(adapter, config, created);
        return created;
    }

    /**
     * Adds an adapter with given factors {A [r, in], B [out, r]} per module (adapter combinations); it becomes
     * active. The config's target list must name exactly these modules.
     */
    public void addFromFactors(String adapter, LoraConfig config, Map<String, Tensor[]> factors) {
        if (configs.containsKey(adapter)) throw new IllegalArgumentException("adapter '" + adapter + "' already exists");
        Map<String, Linear> linears = model.linears();
        Map<String, LoraLayer> created = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : factors.entrySet()) {
            Tensor a = e.getValue()[0].requiresGrad(true), b = e.getValue()[1].requiresGrad(true);
            created.put(e.getKey(), new LoraLayer(adapter, linears.get(e.getKey()), runtime, a.dim(0),
                    (float) config.scalingFor(e.getKey()), (float) config.loraDropout(), a, b, null, null));
        }
        embLayers.put(adapter, new LinkedHashMap<>());
        register(adapter, config, created);
    }

    private void register(String adapter, LoraConfig config, Map<String, LoraLayer> created) {
        configs.put(adapter, config);
        layers.put(adapter, created);
        extraTrainables.put(adapter, new LinkedHashMap<>());
        for (LoraLayer l : created.values()) l.base().addHook(l);
        for (LoraEmbeddingLayer l : embLayers.computeIfAbsent(adapter, k -> new LinkedHashMap<>()).values()) l.base().addHook(l);
        setupBiasAndModulesToSave(adapter, config, created.keySet());
        setActive(adapter);
    }

    private void setupBiasAndModulesToSave(String adapter, LoraConfig config, Set<String> targeted) {
        Map<String, Tensor> extra = extraTrainables.get(adapter);
        Map<String, Linear> linears = model.linears();
        if (!config.bias().equals("none")) {
            for (Map.Entry<String, Linear> e : linears.entrySet()) {
                Linear lin = e.getValue();
                if (lin.bias() == null || (config.bias().equals("lora_only") && !targeted.contains(e.getKey()))) continue;
                Tensor trainable = lin.bias().requiresGrad() ? lin.bias() : lin.bias().copyToF32().requiresGrad(true);
                lin.setBias(trainable);
                extra.put(e.getKey() + ".bias", trainable);
            }
        }
        if (config.modulesToSave() != null) {
            for (String m : config.modulesToSave()) {
                boolean found = false;
                for (Map.Entry<String, Linear> e : linears.entrySet()) {
                    String name = e.getKey();
                    if (!(name.equals(m) || name.endsWith("." + m))) continue;
                    found = true;
                    ModulesToSave copy = new ModulesToSave(adapter, e.getValue());
                    e.getValue().addHook(copy);
                    extra.put(name + ".weight", copy.weight);
                    if (copy.bias != null) extra.put(name + ".bias", copy.bias);
                }
                if (!found) throw new IllegalArgumentException("modules_to_save: no linear module named '" + m + "' (model has " + linears.keySet() + ")");
            }
        }
    }

    /** A trainable full copy of a layer (PEFT's ModulesToSaveWrapper): replaces the base output while its adapter is active. */
    final class ModulesToSave implements LinearHook {
        final String adapter;
        final Tensor weight;   // [out, in]
        final Tensor bias;     // [out] or null

        ModulesToSave(String adapter, Linear lin) {
            this.adapter = adapter;
            this.weight = lin.weight().copyToF32().requiresGrad(true);
            this.bias = lin.bias() == null ? null : lin.bias().copyToF32().requiresGrad(true);
        }

        @Override
        public Tensor apply(Tensor x, Tensor baseOut) {
            if (disabled || !active.contains(adapter)) return baseOut;
            return io.peft4j.autograd.TensorOps.linear(x, weight, bias);
        }
    }

    static String noMatchMessage(LoraConfig c, Set<String> names) {
        String want = c.targetRegex() != null ? "regex '" + c.targetRegex() + "'" : "target_modules " + c.targetModules();
        List<String> shown = new ArrayList<>(names);
        String list = shown.size() > 40 ? shown.subList(0, 40) + " ... (" + shown.size() + " in all)" : shown.toString();
        return want + " matched no module; the model's linear modules are: " + list;
    }

    /** Makes exactly these adapters active (and enables adapters). */
    public void setActive(String... adapters) {
        for (String a : adapters) requireAdapter(a);
        active = new ArrayList<>(List.of(adapters));
        disabled = false;
        refreshEnabled();
    }

    /** Base model only (adapters kept). */
    public void disableAdapters() { disabled = true; refreshEnabled(); }

    public void enableAdapters() { disabled = false; refreshEnabled(); }

    private void refreshEnabled() {
        for (Map.Entry<String, Map<String, LoraLayer>> e : layers.entrySet()) {
            boolean on = !disabled && active.contains(e.getKey()) && !merged.contains(e.getKey());
            for (LoraLayer l : e.getValue().values()) l.enabled(on);
            for (LoraEmbeddingLayer l : embLayers.getOrDefault(e.getKey(), Map.of()).values()) l.enabled(on);
        }
    }

    /** Removes an adapter's layers and config (it must not be merged). */
    public void delete(String adapter) {
        requireAdapter(adapter);
        if (merged.contains(adapter)) throw new IllegalStateException("adapter '" + adapter + "' is merged: unmerge first");
        for (LoraLayer l : layers.get(adapter).values()) l.base().removeHook(l);
        for (LoraEmbeddingLayer l : embLayers.remove(adapter).values()) l.base().removeHook(l);
        for (Linear lin : model.linears().values())
            for (LinearHook h : List.copyOf(lin.hooks()))
                if (h instanceof ModulesToSave m && m.adapter.equals(adapter)) lin.removeHook(h);
        layers.remove(adapter);
        configs.remove(adapter);
        extraTrainables.remove(adapter);
        active.remove(adapter);
        refreshEnabled();
    }

    /** Trainable tensors of an adapter by PEFT parameter name (with the adapter name, as PEFT's named_parameters). */
    public Map<String, Tensor> parameters(String adapter) {
        requireAdapter(adapter);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLayer> e : layers.get(adapter).entrySet()) {
            String m = PREFIX + e.getKey();
            LoraLayer l = e.getValue();
            out.put(m + ".lora_A." + adapter + ".weight", l.a);
            out.put(m + ".lora_B." + adapter + ".weight", l.b);
            if (l.bBias != null) out.put(m + ".lora_B." + adapter + ".bias", l.bBias);
            if (l.magnitude != null) out.put(m + ".lora_magnitude_vector." + adapter + ".weight", l.magnitude);
        }
        for (Map.Entry<String, LoraEmbeddingLayer> e : embLayers.get(adapter).entrySet()) {
            out.put(PREFIX + e.getKey() + ".lora_embedding_A." + adapter, e.getValue().a);
            out.put(PREFIX + e.getKey() + ".lora_embedding_B." + adapter, e.getValue().b);
        }
        extraTrainables.get(adapter).forEach((k, v) -> out.put(PREFIX + k, v));
        return out;
    }

    /** Embedding-adapter layers of one adapter by module name. */
    public Map<String, LoraEmbeddingLayer> embeddingLayers(String adapter) { requireAdapter(adapter); return embLayers.get(adapter); }

    /** Number of trainable scalars of an adapter. */
    public long trainableCount(String adapter) {
        long n = 0;
        for (Tensor t : parameters(adapter).values()) n += t.numel();
        return n;
    }

    // ------------------------------------------------------------------------------------------------ merging

    /** Merges the given adapters (default: the active ones) into the base weights; their hooks stop contributing. */
    public void merge(String... adapters) {
        List<String> which = adapters.length == 0 ? List.copyOf(active) : List.of(adapters);
        for (String a : which) {
            requireAdapter(a);
            if (merged.contains(a)) continue;
            for (LoraLayer l : layers.get(a).values()) {
                Linear lin = l.base();
                mergeStack.computeIfAbsent(lin, k -> new ArrayDeque<>()).push(new Tensor[] {lin.weight(), lin.bias()});
                lin.setWeight(l.mergedWeight(lin.weight()));
                lin.setBias(l.mergedBias(lin.bias()));
            }
            for (LoraEmbeddingLayer l : embLayers.get(a).values()) {
                Embedding emb = l.base();
                for (Linear lin : model.linears().values())
                    if (lin.weight().storage() == emb.weight().storage())
                        throw new IllegalStateException(emb.name() + " is tied to " + lin.name() + ": merging an embedding adapter would change that layer too");
                embMergeStack.putIfAbsent(emb, emb.weight());
                emb.setWeight(l.mergedWeight(emb.weight()));
            }
            merged.add(a);
        }
        refreshEnabled();
    }

    /** Restores the base weights exactly as they were before the first merge. */
    public void unmerge() {
        for (Map.Entry<Linear, Deque<Tensor[]>> e : mergeStack.entrySet()) {
            Tensor[] original = e.getValue().peekLast();
            e.getKey().setWeight(original[0]);
            e.getKey().setBias(original[1]);
        }
        mergeStack.clear();
        embMergeStack.forEach(Embedding::setWeight);
        embMergeStack.clear();
        merged.clear();
        refreshEnabled();
    }

    public List<String> mergedAdapters() { return List.copyOf(merged); }

    /** Merges the active adapters and removes every adapter: the model is a plain model again, with merged weights. */
    public void mergeAndUnload() {
        merge();
        mergeStack.clear();
        embMergeStack.clear();
        merged.clear();
        for (String a : List.copyOf(configs.keySet())) {
            for (LoraLayer l : layers.get(a).values()) l.base().removeHook(l);
            for (LoraEmbeddingLayer l : embLayers.remove(a).values()) l.base().removeHook(l);
            layers.remove(a);
            configs.remove(a);
            extraTrainables.remove(a);
        }
        for (Linear lin : model.linears().values())
            for (LinearHook h : List.copyOf(lin.hooks())) if (h instanceof ModulesToSave) lin.removeHook(h);
        active.clear();
    }

    // ------------------------------------------------------------------------------------------------ PEFT files

    /** The folder an adapter lives in under a save root: the root for "default", else a subfolder of its name (as PEFT). */
    public static Path adapterDir(Path root, String adapter) { return DEFAULT.equals(adapter) ? root : root.resolve(adapter); }

    /** An adapter's tensors under the key names PEFT saves them with (no adapter-name infix). */
    public Map<String, Tensor> savedTensors(String adapter) {
        requireAdapter(adapter);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLayer> e : layers.get(adapter).entrySet()) {
            String m = PREFIX + e.getKey();
            LoraLayer l = e.getValue();
            tensors.put(m + ".lora_A.weight", l.a);
            tensors.put(m + ".lora_B.weight", l.b);
            if (l.bBias != null) tensors.put(m + ".lora_B.bias", l.bBias);
            if (l.magnitude != null) tensors.put(m + ".lora_magnitude_vector", l.magnitude);
        }
        for (Map.Entry<String, LoraEmbeddingLayer> e : embLayers.get(adapter).entrySet()) {
            tensors.put(PREFIX + e.getKey() + ".lora_embedding_A", e.getValue().a);
            tensors.put(PREFIX + e.getKey() + ".lora_embedding_B", e.getValue().b);
        }
        extraTrainables.get(adapter).forEach((k, v) -> tensors.put(PREFIX + k, v));
        return tensors;
    }

    /**
     * Overwrites an existing adapter's tensors with the values saved in {@code file} (a checkpoint of the same
     * adapter); every saved key must exist with the same size.
     */
    public void restoreValues(String adapter, Path file) throws IOException {
        Map<String, Tensor> target = savedTensors(adapter);
        try (SafetensorsFile f = Safetensors.open(file)) {
            if (!f.names().equals(target.keySet()))
                throw new IOException(file + ": holds " + f.names().size() + " tensors that do not match adapter '" + adapter + "' (" + target.size() + " tensors)");
            for (Map.Entry<String, Tensor> e : target.entrySet()) {
                Tensor src = f.get(e.getKey()), dst = e.getValue();
                if (src.numel() != dst.numel()) throw new IOException(file + ": '" + e.getKey() + "' has " + src.numel() + " values, expected " + dst.numel());
                System.arraycopy(src.toFloatArray(), 0, dst.data(), dst.dataOffset(), (int) dst.numel());
            }
        }
    }

    /** Writes {@code adapter_config.json} and {@code adapter_model.safetensors} with PEFT's key names, atomically. */
    public void save(Path root, String adapter) throws IOException {
        LoraConfig c = requireAdapter(adapter);
        Path dir = adapterDir(root, adapter);
        Files.createDirectories(dir);
        Map<String, Tensor> tensors = savedTensors(adapter);
        Safetensors.write(dir.resolve("adapter_model.safetensors"), tensors, Map.of("format", "pt"));
        Path cfg = dir.resolve("adapter_config.json");
        Path tmp = Files.createTempFile(dir, ".adapter_config", ".tmp");
        try {
            Files.writeString(tmp, c.toJsonString() + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, cfg, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Loads a PEFT LoRA adapter folder onto this model under {@code adapter}. Every tensor must name a module of
     * this model with matching shapes; otherwise the error names the key (an adapter for another architecture fails
     * here). Unknown config keys are reported to {@code warn}.
     */
    public LoraConfig load(Path dir, String adapter, Consumer<String> warn) throws IOException {
        Path cfgFile = dir.resolve("adapter_config.json");
        Path weights = dir.resolve("adapter_model.safetensors");
        if (!Files.exists(cfgFile)) throw new IOException(dir + ": no adapter_config.json (is this a PEFT adapter folder?)");
        if (!Files.exists(weights)) {
            if (Files.exists(dir.resolve("adapter_model.bin")))
                throw new IOException(dir + ": adapter_model.bin (pickle) is not supported; save the adapter with safe_serialization=True");
            throw new IOException(dir + ": no adapter_model.safetensors");
        }
        LoraConfig config = LoraConfig.read(cfgFile, warn);
        if (configs.containsKey(adapter)) throw new IllegalArgumentException("adapter '" + adapter + "' already exists");
        Map<String, Linear> linears = model.linears();
        Map<String, Tensor[]> parts = new LinkedHashMap<>();           // module -> {A, B, Bbias, magnitude}
        Map<String, Tensor> extra = new LinkedHashMap<>();
        Map<String, Tensor[]> embParts = new LinkedHashMap<>();        // module -> {A, B}
        try (SafetensorsFile f = Safetensors.open(weights)) {
            for (String key : f.names()) {
                if (!key.startsWith(PREFIX)) throw new IOException(weights + ": key '" + key + "' lacks PEFT's '" + PREFIX + "' prefix");
                String k = key.substring(PREFIX.length());
                int slot;
                String module;
                if (k.endsWith(".lora_A.weight")) { slot = 0; module = cut(k, ".lora_A.weight"); }
                else if (k.endsWith(".lora_B.weight")) { slot = 1; module = cut(k, ".lora_B.weight"); }
                else if (k.endsWith(".lora_B.bias")) { slot = 2; module = cut(k, ".lora_B.bias"); }
                else if (k.endsWith(".lora_magnitude_vector")) { slot = 3; module = cut(k, ".lora_magnitude_vector"); }
                else if (k.endsWith(".lora_magnitude_vector.weight")) { slot = 3; module = cut(k, ".lora_magnitude_vector.weight"); }
                else if (k.endsWith(".lora_embedding_A") || k.endsWith(".lora_embedding_B")) {
                    String embName = k.substring(0, k.lastIndexOf('.'));
                    if (!model.embeddings().containsKey(embName))
                        throw new IOException(weights + ": key '" + key + "' names embedding '" + embName + "', which this model does not have");
                    embParts.computeIfAbsent(embName, m -> new Tensor[2])[k.endsWith("_A") ? 0 : 1] = f.get(key).copyToF32();
                    continue;
                }
                else { extra.put(k, f.get(key).copyToF32()); continue; }
                if (!linears.containsKey(module))
                    throw new IOException(weights + ": key '" + key + "' names module '" + module
                            + "', which this model does not have (an adapter for another architecture?)");
                parts.computeIfAbsent(module, m -> new Tensor[4])[slot] = f.get(key).copyToF32();
            }
        }
        Map<String, LoraLayer> created = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : parts.entrySet()) {
            String module = e.getKey();
            Tensor[] p = e.getValue();
            if (p[0] == null || p[1] == null) throw new IOException(weights + ": module '" + module + "' lacks lora_A or lora_B");
            created.put(module, LoraInit.fromTensors(adapter, module, linears.get(module), config, runtime, p[0], p[1], p[2], p[3], weights));
        }
        Map<String, LoraEmbeddingLayer> emb = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : embParts.entrySet()) {
            Tensor[] p = e.getValue();
            if (p[0] == null || p[1] == null) throw new IOException(weights + ": embedding '" + e.getKey() + "' lacks lora_embedding_A or _B");
            emb.put(e.getKey(), LoraInit.embeddingFromTensors(adapter, e.getKey(), model.embeddings().get(e.getKey()), config, p[0], p[1], weights));
        }
        if (created.isEmpty() && emb.isEmpty()) throw new IOException(weights + ": no LoRA tensors found");
        embLayers.put(adapter, emb);
        register(adapter, config, created);
        // base-model tensors saved with the adapter (trainable biases, modules_to_save) overwrite the fresh copies
        Map<String, Tensor> extraHere = extraTrainables.get(adapter);
        for (Map.Entry<String, Tensor> e : extra.entrySet()) {
            Tensor target = extraHere.get(e.getKey());
            if (target == null) throw new IOException(weights + ": key '" + PREFIX + e.getKey() + "' is neither a LoRA tensor nor a bias / modules_to_save tensor of this config");
            if (target.numel() != e.getValue().numel()) throw new IOException(weights + ": key '" + PREFIX + e.getKey() + "' has the wrong shape");
            System.arraycopy(e.getValue().toFloatArray(), 0, target.data(), target.dataOffset(), (int) target.numel());
        }
        return config;
    }

    private static String cut(String s, String suffix) { return s.substring(0, s.length() - suffix.length()); }

    private LoraConfig requireAdapter(String adapter) {
        LoraConfig c = configs.get(adapter);
        if (c == null) throw new IllegalArgumentException("no adapter named '" + adapter + "' (have " + configs.keySet() + ")");
        return c;
    }

    /** Every module any adapter touches, for diagnostics. */
    public Set<String> targetedModules() {
        Set<String> s = new LinkedHashSet<>();
        layers.values().forEach(m -> s.addAll(m.keySet()));
        embLayers.values().forEach(m -> s.addAll(m.keySet()));
        return s;
    }
}
