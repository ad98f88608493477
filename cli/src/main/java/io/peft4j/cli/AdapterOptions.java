package io.peft4j.cli;

import io.peft4j.adapters.LoraModel;
import io.peft4j.nn.Module;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code --adapter DIR} (repeatable): PEFT LoRA adapters loaded onto the model and stacked (all active). */
public final class AdapterOptions {
    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter folder to apply (repeatable: adapters are stacked)")
    List<Path> adapters = new ArrayList<>();

    @Option(names = "--adapter-opt", paramLabel = "KEY=VALUE",
            description = "replace a saved option of a method adapter when loading it (repeatable), e.g. eval_rank=2 for DyLoRA")
    List<String> adapterOptions = new ArrayList<>();

    /** Loads every adapter (named adapter0, adapter1, ...) and activates them all; null when none was given. */
    LoraModel apply(Module model) {
        if (adapters.isEmpty()) return null;
        LoraModel lm = new LoraModel(model, 0);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < adapters.size(); i++) {
            String name = "adapter" + i;
            try {
                lm.load(adapters.get(i), name, w -> System.err.println("warning: " + w), overrides());
            } catch (IOException e) {
                throw new UncheckedIOException(e.getMessage(), e);
            }
            names.add(name);
        }
        lm.setActive(names.toArray(new String[0]));
        System.err.println("adapters: " + adapters + " (" + lm.targetedModules().size() + " modules)");
        return lm;
    }

    private java.util.Map<String, String> overrides() {
        java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
        for (String p : adapterOptions) {
            int eq = p.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--adapter-opt '" + p + "' is not KEY=VALUE");
            m.put(p.substring(0, eq).trim(), p.substring(eq + 1).trim());
        }
        return m;
    }
}
