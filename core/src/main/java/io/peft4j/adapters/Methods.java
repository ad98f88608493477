package io.peft4j.adapters;

import io.peft4j.adapters.init.Eva;
import io.peft4j.adapters.init.IntTune;
import io.peft4j.adapters.init.Lamda;
import io.peft4j.adapters.init.LamdaPlusPlus;
import io.peft4j.adapters.init.LoLdu;
import io.peft4j.adapters.init.LoraGa;
import io.peft4j.adapters.init.LoraSb;
import io.peft4j.adapters.init.NLora;
import io.peft4j.adapters.init.SLora;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/** Every adapter method peft4j offers, by CLI name: one registration line per method. */
public final class Methods {
    private static final Map<String, AdapterMethod> ALL = new LinkedHashMap<>();

    static {
        register(new PlainLora());
        register(new LoraGa());
        register(new Eva());
        register(new SLora());
        register(new NLora());
        register(new IntTune());
        register(new LoLdu());
        register(new LoraSb());
        register(new Lamda());
        register(new LamdaPlusPlus());
        register(new io.peft4j.adapters.structure.FfaLora());
        register(new io.peft4j.adapters.structure.DyLora());
        register(new io.peft4j.adapters.structure.Sora());
        register(new io.peft4j.adapters.structure.Allora());
        register(new io.peft4j.adapters.structure.GsLora());
        register(new io.peft4j.adapters.structure.IncreLora());
        register(new io.peft4j.adapters.structure.DiffoRa());
        register(new io.peft4j.adapters.structure.S2Lora());
        register(new io.peft4j.adapters.structure.Mola());
        register(new io.peft4j.adapters.structure.Smora());
        register(new io.peft4j.adapters.structure.MmLora());
        register(new io.peft4j.adapters.structure.Nola());
        register(new io.peft4j.adapters.structure.DiffuseKronA());
    }

    private Methods() {}

    /** Adds a method (a user's own, or a test's); its name must be new. */
    public static synchronized void register(AdapterMethod m) {
        if (ALL.putIfAbsent(m.name(), m) != null) throw new IllegalStateException("two methods named " + m.name());
    }

    /** True if a method of this name is registered. */
    public static boolean exists(String name) { return ALL.containsKey(name); }

    /** The method named {@code name}; an error listing every method otherwise. */
    public static AdapterMethod get(String name) {
        AdapterMethod m = ALL.get(name);
        if (m == null) throw new IllegalArgumentException("unknown method '" + name + "' (methods: " + String.join(", ", ALL.keySet()) + ")");
        return m;
    }

    public static Collection<AdapterMethod> all() { return ALL.values(); }
}
