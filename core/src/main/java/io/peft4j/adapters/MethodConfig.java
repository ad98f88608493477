package io.peft4j.adapters;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which adapter method built an adapter and with which hyper-parameters: saved as {@value #FILE} beside the PEFT
 * files. Values are kept as strings, exactly as given, and read through typed getters that fall back to the method's
 * declared defaults; an unknown key is an error that lists the method's options.
 *
 * @param method  a name from {@link Methods} ("lora-ga", "eva", ...)
 * @param options hyper-parameters by key, defaults filled in
 */
public record MethodConfig(String method, Map<String, String> options) {
    public static final String FILE = "peft4j_method.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public MethodConfig {
        options = Collections.unmodifiableMap(new LinkedHashMap<>(options));
    }

    /** The method's defaults overridden by {@code given}; unknown keys are an error naming the method's options. */
    public static MethodConfig of(String method, Map<String, String> given) {
        AdapterMethod m = Methods.get(method);
        Map<String, String> all = new LinkedHashMap<>();
        for (MethodOption o : m.options()) all.put(o.key(), o.defaultValue());
        for (Map.Entry<String, String> e : given.entrySet()) {
            if (!all.containsKey(e.getKey())) {
                Set<String> known = new TreeSet<>(all.keySet());
                throw new IllegalArgumentException("method " + method + " has no option '" + e.getKey() + "'"
                        + (known.isEmpty() ? " (it takes none)" : " (options: " + String.join(", ", known) + ")"));
            }
            all.put(e.getKey(), e.getValue());
        }
        return new MethodConfig(m.name(), all);
    }

    public static MethodConfig of(String method) { return of(method, Map.of()); }

    /** Parses {@code key=value} pairs (the CLI's repeated {@code --opt}). */
    public static MethodConfig parse(String method, List<String> pairs) {
        Map<String, String> given = new LinkedHashMap<>();
        for (String p : pairs) {
            int eq = p.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--opt '" + p + "' is not key=value");
            given.put(p.substring(0, eq).trim(), p.substring(eq + 1).trim());
        }
        return of(method, given);
    }

    public String string(String key) {
        String v = options.get(key);
        if (v == null) throw new IllegalArgumentException("method " + method + ": no option '" + key + "'");
        return v;
    }

    public int integer(String key) {
        try { return Integer.parseInt(string(key)); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("method " + method + ": option " + key + " must be an integer, got '" + string(key) + "'"); }
    }

    public double number(String key) {
        try { return Double.parseDouble(string(key)); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("method " + method + ": option " + key + " must be a number, got '" + string(key) + "'"); }
    }

    public boolean flag(String key) {
        String v = string(key);
        if (v.equalsIgnoreCase("true")) return true;
        if (v.equalsIgnoreCase("false")) return false;
        throw new IllegalArgumentException("method " + method + ": option " + key + " must be true or false, got '" + v + "'");
    }

    /** Writes {@value #FILE} (method, options and the factors frozen when saved) atomically. */
    public void write(Path dir, List<String> frozenFactors) throws IOException { write(dir, frozenFactors, Map.of()); }

    /** As {@link #write(Path, List)}, plus the method's own state ({@link AdapterMethod#state}) when not empty. */
    public void write(Path dir, List<String> frozenFactors, Map<String, String> state) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("method", method);
        ObjectNode opts = o.putObject("options");
        options.forEach(opts::put);
        ArrayNode fz = o.putArray("frozen_factors");
        frozenFactors.forEach(fz::add);
        if (!state.isEmpty()) {
            ObjectNode st = o.putObject("state");
            state.forEach(st::put);
        }
        Path tmp = Files.createTempFile(dir, ".peft4j_method", ".tmp");
        try {
            Files.writeString(tmp, JSON.writeValueAsString(o) + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, dir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** A saved method config, the factors that were frozen and the method's own state (empty when none was saved). */
    public record Saved(MethodConfig config, List<String> frozenFactors, Map<String, String> state) {
        public Saved(MethodConfig config, List<String> frozenFactors) { this(config, frozenFactors, Map.of()); }
    }

    public static Saved read(Path file) throws IOException {
        JsonNode root;
        try { root = JSON.readTree(file.toFile()); }
        catch (IOException e) { throw new IOException(file + ": not valid JSON: " + e.getMessage(), e); }
        if (root == null || !root.isObject() || !root.hasNonNull("method")) throw new IOException(file + ": expected an object with a 'method' key");
        Map<String, String> opts = new LinkedHashMap<>();
        JsonNode on = root.path("options");
        for (Iterator<Map.Entry<String, JsonNode>> it = on.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            opts.put(e.getKey(), e.getValue().asText());
        }
        List<String> frozen = new java.util.ArrayList<>();
        for (JsonNode n : root.path("frozen_factors")) frozen.add(n.asText());
        Map<String, String> state = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path("state").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            state.put(e.getKey(), e.getValue().asText());
        }
        try {
            return new Saved(of(root.get("method").asText(), opts), frozen, Collections.unmodifiableMap(state));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }
}
