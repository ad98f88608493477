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
    /** Keys of the method family's extra tensors (not PEFT's: such adapters also carry {@value MethodConfig#FILE}). */
    static final String MID_KEY = ".lora_M.weight", GAIN_KEY = ".lora_gain",
            OFFSET_A_KEY = ".peft4j_base_offset_A", OFFSET_B_KEY = ".peft4j_base_offset_B";
    static final Set<String> OUTPUT_HEADS = Set.of("lm_head", "classifier", "score", "cls.predictions.decoder");

    private final Module model;
    private final AdapterRuntime runtime;
    private final Map<String, LoraConfig> configs = new LinkedHashMap<>();
    private final Map<String, Map<String, LoraLayer>> layers = new LinkedHashMap<>();   // adapter -> module -> layer
    private final Map<String, Map<String, Tensor>> extraTrainables = new LinkedHashMap<>(); // biases, modules_to_save
    private final Map<String, Map<String, LoraEmbeddingLayer>> embLayers = new LinkedHashMap<>(); // adapter -> module -> layer
    private final Map<String, Map<String, AdapterLayer>> otherLayers = new LinkedHashMap<>(); // adapter -> module -> non-LoRA-shaped layer
    private final Map<String, MethodConfig> methods = new LinkedHashMap<>();             // adapter -> method (absent: plain LoRA)
    private final Map<String, Map<String, Tensor[]>> offsets = new LinkedHashMap<>();    // adapter -> module -> {A0, B0', W before}
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
     * Injects a new adapter built by {@code method} (see {@link Methods}); plain "lora" is {@link #add(String, LoraConfig)}.
     * Data-driven methods run their calibration passes over {@code calibration} (may be null for the others),
     * printing progress to {@code log} (may be null).
     */
    public Map<String, LoraLayer> add(String adapter, LoraConfig config, MethodConfig method, Calibration calibration, java.io.PrintStream log) {
        if (method == null || method.method().equals("lora")) return add(adapter, config);
        if (configs.containsKey(adapter)) throw new IllegalArgumentException("adapter '" + adapter + "' already exists");
        if (!merged.isEmpty()) throw new IllegalStateException("unmerge adapters " + merged + " before adding another");
        if (config.useDora()) throw new IllegalArgumentException("method " + method.method() + " does not combine with DoRA");
        if (!config.initLoraWeights().equals("true"))
            throw new IllegalArgumentException("method " + method.method() + " sets its own initialisation; init_lora_weights must stay 'true', got '" + config.initLoraWeights() + "'");
        Map<String, Linear> linears = model.linears();
        List<String> names = TargetMatcher.select(config, linears.keySet(), OUTPUT_HEADS);
        if (names.isEmpty()) throw new IllegalArgumentException(noMatchMessage(config, linears.keySet()));
        Map<String, Linear> targets = new LinkedHashMap<>();
        for (String n : names) targets.put(n, linears.get(n));
        Map<String, Tensor[]> offs = new LinkedHashMap<>();
        boolean wasTraining = runtime.training();
        runtime.training(false);                       // calibration passes run without dropout
        AdapterMethod.Initialised init;
        try {
            init = Methods.get(method.method()).initialise(new MethodContext(adapter, model, config, method, targets, runtime,
                    new SplittableRandom(runtime.seed() ^ adapter.hashCode()), calibration, log, offs));
        } catch (RuntimeException e) {
            for (Map.Entry<String, Tensor[]> o : offs.entrySet()) targets.get(o.getKey()).setWeight(o.getValue()[2]);
            throw e;
        } finally {
            runtime.training(wasTraining);
        }
        methods.put(adapter, method);
        offsets.put(adapter, offs);
        embLayers.put(adapter, new LinkedHashMap<>());
        attachOthers(adapter, init.otherLayers());
        register(adapter, init.config(), init.layers());
        return init.layers();
    }

    /** The method that built an adapter ("lora" for plain LoRA). */
    public MethodConfig method(String adapter) {
        requireAdapter(adapter);
        return methods.getOrDefault(adapter, new MethodConfig("lora", Map.of()));
    }

    /** Base-weight offsets a method applied (module -> {A0 [r0, in], B0' [out, r0]}: W was rewritten to W - B0' A0). */
    public Map<String, Tensor[]> baseOffsets(String adapter) { requireAdapter(adapter); return offsets.getOrDefault(adapter, Map.of()); }

    /** Runs the adapter method's per-step schedule (e.g. LaMDA's freezing) before optimizer step {@code step}. */
    public void beforeStep(String adapter, int step) {
        MethodConfig m = methods.get(adapter);
        if (m != null) Methods.get(m.method()).beforeStep(step, layers.get(adapter), m);
    }

    /** Runs the adapter method's post-update step (e.g. SoRA's proximal step) after optimizer step {@code step}. */
    public void afterStep(String adapter, int step, double lr) {
        MethodConfig m = methods.get(adapter);
        if (m != null) Methods.get(m.method()).afterStep(step, lr, layers.get(adapter), m);
    }

    /** The adapter method's figures for this step's metrics row (empty for plain LoRA). */
    public Map<String, Double> report(String adapter) {
        requireAdapter(adapter);
        MethodConfig m = methods.get(adapter);
        return m == null ? Map.of() : Methods.get(m.method()).report(layers.get(adapter), m);
    }

    /** The adapter method's own state (per-module rank limits, ...), as saved with the adapter and in checkpoints. */
    public Map<String, String> methodState(String adapter) {
        requireAdapter(adapter);
        MethodConfig m = methods.get(adapter);
        return m == null ? Map.of() : Methods.get(m.method()).state(layers.get(adapter), m);
    }

    /** Re-applies a {@link #methodState} (a checkpoint resume: the values themselves come from {@link #restoreValues}). */
    public void restoreMethodState(String adapter, Map<String, String> state) {
        requireAdapter(adapter);
        MethodConfig m = methods.get(adapter);
        if (m != null) Methods.get(m.method()).restore(state, layers.get(adapter), m);
    }

    /** Runs the adapter method's gradient transform (e.g. ALLoRA) after the backward pass of step {@code step}, before clipping and the update. */
    public void beforeUpdate(String adapter, int step) {
        MethodConfig m = methods.get(adapter);
        if (m != null) Methods.get(m.method()).beforeUpdate(step, layers.get(adapter), m);
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

    private void attachOthers(String adapter, Map<String, AdapterLayer> others) {
        Map<String, AdapterLayer> copy = new LinkedHashMap<>(others);
        for (AdapterLayer l : copy.values()) {
            for (String suffix : l.tensors().keySet())
                if (suffix.equals("weight") || suffix.equals("bias") || suffix.contains("."))
                    throw new IllegalStateException(l.base().name() + ": adapter tensor suffix '" + suffix + "' must be dot-free and not weight/bias");
            l.base().addHook(l);
        }
        otherLayers.put(adapter, copy);
    }

    /** Non-LoRA-shaped layers of one adapter by module name (empty for LoRA-shaped methods). */
    public Map<String, AdapterLayer> otherLayers(String adapter) { requireAdapter(adapter); return otherLayers.getOrDefault(adapter, Map.of()); }

    /** The sum of the adapter's auxiliary losses from the last forward (routers' load balancing), or null. */
    public Tensor auxiliaryLoss(String adapter) {
        Tensor total = null;
        for (AdapterLayer l : otherLayers.getOrDefault(adapter, Map.of()).values()) {
            Tensor t = l.auxiliaryLoss();
            if (t != null) total = total == null ? t : io.peft4j.autograd.TensorOps.add(total, t);
        }
        return total;
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
        for (Map.Entry<String, Map<String, AdapterLayer>> e : otherLayers.entrySet()) {
            boolean on = !disabled && active.contains(e.getKey()) && !merged.contains(e.getKey());
            for (AdapterLayer l : e.getValue().values()) l.setEnabled(on);
        }
    }

    /** Removes an adapter's layers and config (it must not be merged). */
    public void delete(String adapter) {
        requireAdapter(adapter);
        if (merged.contains(adapter)) throw new IllegalStateException("adapter '" + adapter + "' is merged: unmerge first");
        for (LoraLayer l : layers.get(adapter).values()) l.base().removeHook(l);
        for (LoraEmbeddingLayer l : embLayers.remove(adapter).values()) l.base().removeHook(l);
        for (AdapterLayer l : otherLayers.getOrDefault(adapter, Map.of()).values()) l.base().removeHook(l);
        otherLayers.remove(adapter);
        Map<String, Tensor[]> offs = offsets.remove(adapter);
        if (offs != null) offs.forEach((m, o) -> model.linears().get(m).setWeight(o[2]));   // undo the base rewrite
        methods.remove(adapter);
        for (Linear lin : model.linears().values())
            for (LinearHook h : List.copyOf(lin.hooks()))
                if (h instanceof ModulesToSave m && m.adapter.equals(adapter)) lin.removeHook(h);
        layers.remove(adapter);
        configs.remove(adapter);
        extraTrainables.remove(adapter);
        active.remove(adapter);
        refreshEnabled();
    }

    /**
     * Trainable tensors of an adapter by PEFT parameter name (with the adapter name, as PEFT's named_parameters). A
     * tensor shared by several layers (S2-LoRA) is listed once, under the first name that reaches it, so that an
     * optimizer updates it once and counts do not double it.
     */
    public Map<String, Tensor> parameters(String adapter) {
        requireAdapter(adapter);
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Map.Entry<String, LoraLayer> e : layers.get(adapter).entrySet()) {
            String m = PREFIX + e.getKey();
            LoraLayer l = e.getValue();
            putTrainable(out, seen, m + ".lora_A." + adapter + ".weight", l.a);
            putTrainable(out, seen, m + ".lora_B." + adapter + ".weight", l.b);
            putTrainable(out, seen, m + ".lora_M." + adapter + ".weight", l.mid);
            putTrainable(out, seen, m + ".lora_gain." + adapter, l.gain);
            putTrainable(out, seen, m + ".lora_B." + adapter + ".bias", l.bBias);
            putTrainable(out, seen, m + ".lora_magnitude_vector." + adapter + ".weight", l.magnitude);
        }
        for (Map.Entry<String, AdapterLayer> e : otherLayers.getOrDefault(adapter, Map.of()).entrySet())
            for (Map.Entry<String, Tensor> t : e.getValue().tensors().entrySet())
                putTrainable(out, seen, PREFIX + e.getKey() + "." + t.getKey() + "." + adapter, t.getValue());
        for (Map.Entry<String, LoraEmbeddingLayer> e : embLayers.get(adapter).entrySet()) {
            out.put(PREFIX + e.getKey() + ".lora_embedding_A." + adapter, e.getValue().a);
            out.put(PREFIX + e.getKey() + ".lora_embedding_B." + adapter, e.getValue().b);
        }
        extraTrainables.get(adapter).forEach((k, v) -> out.put(PREFIX + k, v));
        return out;
    }

    private static void putTrainable(Map<String, Tensor> out, Set<Tensor> seen, String key, Tensor t) {
        if (t != null && t.requiresGrad() && seen.add(t)) out.put(key, t);
    }

    /** Embedding-adapter layers of one adapter by module name. */
    public Map<String, LoraEmbeddingLayer> embeddingLayers(String adapter) { requireAdapter(adapter); return embLayers.get(adapter); }

    /** Number of trainable scalars of an adapter (columns of B frozen by a schedule do not count). */
    public long trainableCount(String adapter) {
        long n = 0;
        for (Tensor t : parameters(adapter).values()) n += t.numel();
        for (LoraLayer l : layers.get(adapter).values()) n -= l.frozenBEntries();   // B columns a schedule froze
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
            for (AdapterLayer l : otherLayers.getOrDefault(a, Map.of()).values()) {
                if (!l.mergeable())
                    throw new IllegalStateException("adapter '" + a + "' (" + method(a).method() + ") routes per input: it cannot be merged into the weights");
                Linear lin = l.base();
                mergeStack.computeIfAbsent(lin, k -> new ArrayDeque<>()).push(new Tensor[] {lin.weight(), lin.bias()});
                Tensor w = lin.weight().copyToF32();
                float[] wd = w.data(), dd = l.deltaWeight().data();
                for (int i = 0; i < wd.length; i++) wd[i] += dd[i];
                lin.setWeight(w);
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
            Map<String, AdapterLayer> others = otherLayers.remove(a);
            if (others != null) for (AdapterLayer l : others.values()) l.base().removeHook(l);
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
            if (l.mid != null) tensors.put(m + MID_KEY, l.mid);
            if (l.gain != null) tensors.put(m + GAIN_KEY, l.gain);
            Tensor[] off = offsets.getOrDefault(adapter, Map.of()).get(e.getKey());
            if (off != null) {
                tensors.put(m + OFFSET_A_KEY, off[0]);
                tensors.put(m + OFFSET_B_KEY, off[1]);
            }
        }
        for (Map.Entry<String, AdapterLayer> e : otherLayers.getOrDefault(adapter, Map.of()).entrySet()) {
            String m = PREFIX + e.getKey();
            e.getValue().tensors().forEach((suffix, t) -> tensors.put(m + "." + suffix, t));
            Tensor[] off = offsets.getOrDefault(adapter, Map.of()).get(e.getKey());
            if (off != null) {
                tensors.put(m + OFFSET_A_KEY, off[0]);
                tensors.put(m + OFFSET_B_KEY, off[1]);
            }
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
        MethodConfig method = methods.get(adapter);
        if (method != null) method.write(dir, frozenFactors(adapter), methodState(adapter));
        else Files.deleteIfExists(dir.resolve(MethodConfig.FILE));
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
        return load(dir, adapter, warn, Map.of());
    }

    /**
     * As {@link #load(Path, String, Consumer)}, with some of a method adapter's saved options replaced (e.g. DyLoRA's
     * {@code eval_rank} to serve a smaller rank); an option the method does not have is an error naming its options.
     */
    public LoraConfig load(Path dir, String adapter, Consumer<String> warn, Map<String, String> methodOptions) throws IOException {
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
        Path methodFile = dir.resolve(MethodConfig.FILE);
        MethodConfig.Saved method = Files.exists(methodFile) ? MethodConfig.read(methodFile) : null;
        if (!methodOptions.isEmpty()) {
            if (method == null) throw new IllegalArgumentException(dir + " is a plain LoRA adapter: it has no method options to set " + methodOptions.keySet());
            Map<String, String> opts = new LinkedHashMap<>(method.config().options());
            opts.putAll(methodOptions);
            method = new MethodConfig.Saved(MethodConfig.of(method.config().method(), opts), method.frozenFactors(), method.state());
        }
        Map<String, Tensor[]> parts = new LinkedHashMap<>();           // module -> {A, B, Bbias, magnitude, M, gain, A0, B0'}
        Map<String, Tensor> extra = new LinkedHashMap<>();
        Map<String, Tensor[]> embParts = new LinkedHashMap<>();        // module -> {A, B}
        Map<String, Map<String, Tensor>> generic = new LinkedHashMap<>();   // module -> suffix -> tensor (AdapterLayer)
        String[] suffixes = {".lora_A.weight", ".lora_B.weight", ".lora_B.bias", ".lora_magnitude_vector", MID_KEY, GAIN_KEY,
                OFFSET_A_KEY, OFFSET_B_KEY, ".lora_magnitude_vector.weight"};
        try (SafetensorsFile f = Safetensors.open(weights)) {
            for (String key : f.names()) {
                if (!key.startsWith(PREFIX)) throw new IOException(weights + ": key '" + key + "' lacks PEFT's '" + PREFIX + "' prefix");
                String k = key.substring(PREFIX.length());
                int slot = -1;
                String module = null;
                for (int i = 0; i < suffixes.length && slot < 0; i++)
                    if (k.endsWith(suffixes[i])) { slot = i == 8 ? 3 : i; module = cut(k, suffixes[i]); }
                if (slot >= 4 && method == null)
                    throw new IOException(weights + ": key '" + key + "' belongs to a peft4j method adapter but " + methodFile + " is missing");
                if (slot < 0 && (k.endsWith(".lora_embedding_A") || k.endsWith(".lora_embedding_B"))) {
                    String embName = k.substring(0, k.lastIndexOf('.'));
                    if (!model.embeddings().containsKey(embName))
                        throw new IOException(weights + ": key '" + key + "' names embedding '" + embName + "', which this model does not have");
                    embParts.computeIfAbsent(embName, m -> new Tensor[2])[k.endsWith("_A") ? 0 : 1] = f.get(key).copyToF32();
                    continue;
                }
                int dot = k.lastIndexOf('.');
                if (slot < 0 && method != null && dot > 0 && linears.containsKey(k.substring(0, dot))
                        && !k.endsWith(".weight") && !k.endsWith(".bias")) {             // a method's own layer tensor
                    generic.computeIfAbsent(k.substring(0, dot), m -> new LinkedHashMap<>()).put(k.substring(dot + 1), f.get(key).copyToF32());
                    continue;
                }
                if (slot < 0) { extra.put(k, f.get(key).copyToF32()); continue; }
                if (!linears.containsKey(module))
                    throw new IOException(weights + ": key '" + key + "' names module '" + module
                            + "', which this model does not have (an adapter for another architecture?)");
                parts.computeIfAbsent(module, m -> new Tensor[8])[slot] = f.get(key).copyToF32();
            }
        }
        Map<String, LoraLayer> created = new LinkedHashMap<>();
        Map<String, Tensor[]> offs = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : parts.entrySet()) {
            String module = e.getKey();
            Tensor[] p = e.getValue();
            if (p[0] == null && p[1] == null && generic.containsKey(module)) {     // the base offset of a method's own layer
                applySavedOffset(module, linears.get(module), p[6], p[7], offs, weights);
                continue;
            }
            if (p[0] == null || p[1] == null) throw new IOException(weights + ": module '" + module + "' lacks lora_A or lora_B");
            if (method == null) {
                created.put(module, LoraInit.fromTensors(adapter, module, linears.get(module), config, runtime, p[0], p[1], p[2], p[3], weights));
                continue;
            }
            Linear lin = linears.get(module);
            int r = p[0].dim(0);
            if (p[4] != null && !(p[4].numel() == r || p[4].numel() == (long) r * r))
                throw new IOException(weights + ": " + module + MID_KEY + " has " + p[4].numel() + " values; rank " + r + " needs " + r + " or " + r * r);
            Tensor mid = p[4] == null ? null : (p[4].numel() == r && r != 1 ? p[4].reshape(r) : p[4].reshape(r, r)).requiresGrad(true).name(module + ".lora_M");
            Tensor gain = p[5] == null ? null : p[5].reshape(1).requiresGrad(true).name(module + ".lora_gain");
            LoraLayer layer = LoraInit.fromTensors(adapter, module, lin, config, runtime, p[0], p[1], mid, gain, p[2], p[3], weights);
            if (p[6] != null || p[7] != null) applySavedOffset(module, lin, p[6], p[7], offs, weights);
            for (String factor : method.frozenFactors()) layer.setTrainable(factor, false);
            created.put(module, layer);
        }
        if (method != null) {
            methods.put(adapter, method.config());
            offsets.put(adapter, offs);
            Methods.get(method.config().method()).restore(method.state(), created, method.config());
        }
        Map<String, LoraEmbeddingLayer> emb = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor[]> e : embParts.entrySet()) {
            Tensor[] p = e.getValue();
            if (p[0] == null || p[1] == null) throw new IOException(weights + ": embedding '" + e.getKey() + "' lacks lora_embedding_A or _B");
            emb.put(e.getKey(), LoraInit.embeddingFromTensors(adapter, e.getKey(), model.embeddings().get(e.getKey()), config, p[0], p[1], weights));
        }
        Map<String, AdapterLayer> others = new LinkedHashMap<>();
        if (!generic.isEmpty()) {
            Map<String, Linear> targets = new LinkedHashMap<>();
            for (String m : generic.keySet()) targets.put(m, linears.get(m));
            MethodContext ctx = new MethodContext(adapter, model, config, method.config(), targets, runtime,
                    new SplittableRandom(runtime.seed() ^ adapter.hashCode()), null, null, new LinkedHashMap<>());
            AdapterMethod am = Methods.get(method.config().method());
            for (Map.Entry<String, Map<String, Tensor>> e : generic.entrySet()) {
                try {
                    others.put(e.getKey(), am.restoreLayer(ctx, e.getKey(), e.getValue()));
                } catch (IllegalArgumentException | UnsupportedOperationException ex) {
                    throw new IOException(weights + ": module " + e.getKey() + ": " + ex.getMessage(), ex);
                }
            }
        }
        if (created.isEmpty() && emb.isEmpty() && others.isEmpty()) throw new IOException(weights + ": no LoRA tensors found");
        embLayers.put(adapter, emb);
        attachOthers(adapter, others);
        register(adapter, config, created);
        if (method != null) Methods.get(method.config().method()).afterLoad(created, method.config());
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

    /** The factors (A, B, M, gain) that no layer of the adapter trains. */
    List<String> frozenFactors(String adapter) {
        List<String> frozen = new ArrayList<>();
        String[] names = {"A", "B", "M", "gain"};
        for (int i = 0; i < names.length; i++) {
            boolean any = false, allFrozen = true;
            for (LoraLayer l : layers.get(adapter).values()) {
                Tensor t = new Tensor[] {l.a, l.b, l.mid, l.gain}[i];
                if (t == null) continue;
                any = true;
                if (t.requiresGrad()) allFrozen = false;
            }
            if (any && allFrozen) frozen.add(names[i]);
        }
        return frozen;
    }

    /**
     * The adapter as a plain PEFT LoRA for the unchanged base: each module's middle factor and gain folded into B, its
     * scaling into B too (alpha = r), and any base rewrite undone by PEFT's trick of appending the initial factors
     * with a minus sign ({@code [B, -B0'] [A; A0]}, rank r + r0). Returns the config and PEFT-named tensors.
     * Ranks beyond a layer's {@link LoraLayer#rankLimit() rank limit} are left out; ranks whose gate is exactly
     * zero too when the adapter's method {@link AdapterMethod#prunesZeroGates() prunes zero gates} (SoRA). A module
     * whose update is zero by construction (zero gain or middle factor, or zero A) is left out, and the exported
     * {@code target_modules} then names exactly the modules kept.
     */
    public PlainExport exportPlainLora(String adapter) {
        MethodConfig m = methods.get(adapter);
        return exportPlainLora(adapter, m != null && Methods.get(m.method()).prunesZeroGates());
    }

    /**
     * {@link #exportPlainLora(String)}, choosing whether ranks whose diagonal middle factor (gate) is exactly zero are
     * dropped: they contribute nothing, so the smaller export gives identical outputs (SoRA's pruning, usable with any
     * gated adapter).
     */
    public PlainExport exportPlainLora(String adapter, boolean pruneZeroGates) {
        LoraConfig c = requireAdapter(adapter);
        if (c.useDora()) throw new IllegalArgumentException("adapter '" + adapter + "' uses DoRA: it is not a plain LoRA");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, Integer> ranks = new LinkedHashMap<>();
        Map<String, Tensor[]> offs = offsets.getOrDefault(adapter, Map.of());
        List<String> exported = new ArrayList<>();
        for (Map.Entry<String, LoraLayer> e : layers.get(adapter).entrySet()) {
            String module = e.getKey();
            LoraLayer l = e.getValue();
            Tensor[] off = offs.get(module);
            // a module whose update is structurally zero (zero gain: DiffoRA's dropped modules; zero A: GS-LoRA's
            // zeroed groups) is left out: PEFT loads no layer for it, the outputs are the same
            if (off == null && l.bBias == null && updateIsZero(l)) continue;
            exported.add(module);
            Tensor eb = l.effectiveB();                     // [out, r]
            float[] ebd = eb.data();
            for (int i = 0; i < ebd.length; i++) ebd[i] *= l.scaling();
            Tensor a = l.a.copyToF32(), b = eb;
            int[] keep = contributingRanks(l, pruneZeroGates);
            if (keep.length < l.rank()) { a = rows(a, keep); b = columns(b, keep); }
            if (off != null) { Tensor[] ab = undoBaseRewrite(a, b, off); a = ab[0]; b = ab[1]; }
            ranks.put(module, a.dim(0));
            tensors.put(PREFIX + module + ".lora_A.weight", a);
            tensors.put(PREFIX + module + ".lora_B.weight", b);
            if (l.bBias != null) {
                float[] bb = l.bBias.toFloatArray();
                for (int i = 0; i < bb.length; i++) bb[i] *= l.scaling();
                tensors.put(PREFIX + module + ".lora_B.bias", Tensor.of(bb, bb.length));
            }
        }
        Map<String, AdapterLayer> others = otherLayers.getOrDefault(adapter, Map.of());
        for (Map.Entry<String, AdapterLayer> e : others.entrySet()) {
            Tensor[] f = e.getValue().mergeable() ? e.getValue().lowRankFactors() : null;
            if (f == null)
                throw new IllegalArgumentException("adapter '" + adapter + "' (" + method(adapter).method() + ") has no exact plain-LoRA form "
                        + "(module " + e.getKey() + "): keep it in its own format"
                        + (e.getValue().mergeable() ? ", or merge it into the base" : " (it routes per input, so it cannot be merged either)"));
            Tensor a = f[0].copyToF32(), b = f[1].copyToF32();
            Tensor[] off = offs.get(e.getKey());
            if (off != null) { Tensor[] ab = undoBaseRewrite(a, b, off); a = ab[0]; b = ab[1]; }
            exported.add(e.getKey());
            ranks.put(e.getKey(), a.dim(0));
            tensors.put(PREFIX + e.getKey() + ".lora_A.weight", a);
            tensors.put(PREFIX + e.getKey() + ".lora_B.weight", b);
        }
        for (Map.Entry<String, LoraEmbeddingLayer> e : embLayers.get(adapter).entrySet()) {
            tensors.put(PREFIX + e.getKey() + ".lora_embedding_A", e.getValue().a);
            tensors.put(PREFIX + e.getKey() + ".lora_embedding_B", e.getValue().b);
        }
        extraTrainables.get(adapter).forEach((k, v) -> tensors.put(PREFIX + k, v));
        // scaling is folded into B: alpha = rank everywhere (rank_pattern / alpha_pattern by exact module name when ranks differ)
        int common = ranks.values().stream().mapToInt(Integer::intValue).max().orElse(c.r());
        LoraConfig.Builder b = c.toBuilder().clearRankPattern().r(common).alpha(common).rslora(false).init("true");
        for (Map.Entry<String, Integer> e : ranks.entrySet())
            if (e.getValue() != common) b.rankPattern(e.getKey(), e.getValue()).alphaPattern(e.getKey(), e.getValue());
        if (exported.size() < layers.get(adapter).size() + others.size() || !others.isEmpty()) {
            if (exported.isEmpty() && embLayers.get(adapter).isEmpty())
                throw new IllegalStateException("adapter '" + adapter + "' contributes nothing: every module's update is exactly zero");
            b.targets(exported);                        // exactly the modules left, so PEFT creates no others
        }
        if (!embLayers.get(adapter).isEmpty())
            throw new IllegalArgumentException("adapter '" + adapter + "' has embedding LoRA layers: export it as saved instead");
        return new PlainExport(b.build(), tensors);
    }

    /** A plain PEFT LoRA: its config and its tensors under PEFT's saved key names. */
    public record PlainExport(LoraConfig config, Map<String, Tensor> tensors) {
        /** Writes adapter_config.json and adapter_model.safetensors into {@code dir} (atomically each). */
        public void save(Path dir) throws IOException {
            Files.createDirectories(dir);
            Safetensors.write(dir.resolve("adapter_model.safetensors"), tensors, Map.of("format", "pt"));
            Files.deleteIfExists(dir.resolve(MethodConfig.FILE));
            Path tmp = Files.createTempFile(dir, ".adapter_config", ".tmp");
            try {
                Files.writeString(tmp, config.toJsonString() + "\n", StandardCharsets.UTF_8);
                Files.move(tmp, dir.resolve("adapter_config.json"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** True if a layer's update is zero by construction: its effective middle factor g·M is zero, or A is. */
    static boolean updateIsZero(LoraLayer l) {
        boolean midZero = true;
        for (float v : l.effectiveMid().data()) if (v != 0f) { midZero = false; break; }
        if (midZero) return true;
        int in = l.a.dim(1);
        float[] ad = l.a.contiguous().toFloatArray();
        for (int i = 0; i < l.rankLimit() * in; i++) if (ad[i] != 0f) return false;
        return true;
    }

    /**
     * The ranks of a layer that can contribute: those below its rank limit and, when {@code pruneZeroGates}, whose
     * diagonal middle factor is not exactly zero. Never empty (a PEFT LoRA needs rank >= 1: an all-pruned layer keeps
     * rank 0, whose effective column of B is then zero).
     */
    static int[] contributingRanks(LoraLayer l, boolean pruneZeroGates) {
        float[] gate = pruneZeroGates && l.mid != null && l.mid.rank() == 1 ? l.mid.toFloatArray() : null;
        int[] keep = new int[l.rank()];
        int n = 0;
        for (int j = 0; j < l.rankLimit(); j++) if (gate == null || gate[j] != 0f) keep[n++] = j;
        return n == 0 ? new int[] {0} : java.util.Arrays.copyOf(keep, n);
    }

    /** Rows {@code idx} of an [r, in] matrix. */
    private static Tensor rows(Tensor t, int[] idx) {
        int cols = t.dim(1);
        float[] src = t.contiguous().toFloatArray(), d = new float[idx.length * cols];
        for (int i = 0; i < idx.length; i++) System.arraycopy(src, idx[i] * cols, d, i * cols, cols);
        return Tensor.of(d, idx.length, cols);
    }

    /** Columns {@code idx} of an [out, r] matrix. */
    private static Tensor columns(Tensor t, int[] idx) {
        int rowsN = t.dim(0), cols = t.dim(1);
        float[] src = t.contiguous().toFloatArray(), d = new float[rowsN * idx.length];
        for (int o = 0; o < rowsN; o++) for (int j = 0; j < idx.length; j++) d[o * idx.length + j] = src[o * cols + idx[j]];
        return Tensor.of(d, rowsN, idx.length);
    }

    /**
     * PEFT's trick for an adapter trained on a rewritten base {@code W - B0' A0}: on the original W the same model is
     * {@code [B, -B0'] [A; A0]}, a plain LoRA of rank r + r0. Returns {A [r + r0, in], B [out, r + r0]}.
     */
    private static Tensor[] undoBaseRewrite(Tensor a, Tensor b, Tensor[] offset) {
        Tensor negB0 = offset[1].copyToF32();
        float[] nd = negB0.data();
        for (int i = 0; i < nd.length; i++) nd[i] = -nd[i];
        return new Tensor[] {io.peft4j.autograd.TensorOps.concat(List.of(a, offset[0]), 0), io.peft4j.autograd.TensorOps.concat(List.of(b, negB0), 1)};
    }

    /** Re-applies a saved base rewrite {@code W - b0 a0} to {@code lin} after checking it fits, and records it. */
    private static void applySavedOffset(String module, Linear lin, Tensor a0, Tensor b0, Map<String, Tensor[]> offs, Path file) throws IOException {
        if (a0 == null || b0 == null) throw new IOException(file + ": " + module + " has only one of the two base-offset tensors");
        if (a0.rank() != 2 || b0.rank() != 2 || a0.dim(1) != lin.inFeatures() || b0.dim(0) != lin.outFeatures() || b0.dim(1) != a0.dim(0))
            throw new IOException(file + ": " + module + " base-offset tensors do not fit the layer");
        offs.put(module, new Tensor[] {a0, b0, lin.weight()});
        MethodContext.applyOffset(lin, a0, b0);
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
