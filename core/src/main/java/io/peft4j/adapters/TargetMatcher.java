package io.peft4j.adapters;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which modules an adapter attaches to, by PEFT's rules ({@code check_target_module_exists}):
 * <ul>
 *   <li>{@code exclude_modules} first: a regex that matches the whole name, or a name / dotted suffix in the list;</li>
 *   <li>{@code target_modules} as a regex must match the whole name; as a list, an exact name or a dotted suffix;</li>
 *   <li>{@code layers_to_transform} then keeps only modules whose layer index ({@code <pattern>.<N>.} in the name,
 *       with {@code layers_pattern} or any {@code something.N.}) is listed.</li>
 * </ul>
 * {@code all-linear} means every linear layer except the output head.
 */
public final class TargetMatcher {
    private TargetMatcher() {}

    /** Names among {@code candidates} that the config targets; {@code outputHeads} are dropped for "all-linear". */
    public static List<String> select(LoraConfig c, Collection<String> candidates, Set<String> outputHeads) {
        List<String> out = new ArrayList<>();
        for (String name : candidates) {
            if (LoraConfig.ALL_LINEAR.equalsIgnoreCase(c.targetRegex())) {
                if (outputHeads.contains(name) || excluded(c, name) || !layerAllowed(c, name)) continue;
                out.add(name);
            } else if (matches(c, name)) out.add(name);
        }
        return out;
    }

    /** PEFT's check for one module name (not handling "all-linear", which needs the model). */
    public static boolean matches(LoraConfig c, String key) {
        if (excluded(c, key)) return false;
        if (c.modulesToSave() != null)
            for (String m : c.modulesToSave())
                if (Pattern.compile("(^|.*\\.)" + m + "($|\\..*)").matcher(key).matches()) return false;
        boolean found;
        if (c.targetRegex() != null) {
            found = Pattern.compile(c.targetRegex()).matcher(key).matches();
            return found;   // PEFT applies layers_to_transform only to list targets
        }
        found = nameOrSuffix(c.targetModules(), key);
        return found && layerAllowed(c, key);
    }

    private static boolean excluded(LoraConfig c, String key) {
        if (c.excludeRegex() != null) return Pattern.compile(c.excludeRegex()).matcher(key).matches();
        return c.excludeModules() != null && nameOrSuffix(c.excludeModules(), key);
    }

    private static boolean nameOrSuffix(List<String> names, String key) {
        for (String t : names) if (key.equals(t) || key.endsWith("." + t)) return true;
        return false;
    }

    private static boolean layerAllowed(LoraConfig c, String key) {
        if (c.layersToTransform() == null) return true;
        Integer layer = null;
        if (c.layersPattern() == null || c.layersPattern().isEmpty()) {
            Matcher m = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\..*").matcher(key);
            if (m.matches()) layer = Integer.parseInt(m.group(1));
        } else {
            for (String p : c.layersPattern()) {
                Matcher m = Pattern.compile(".*\\." + p + "\\.(\\d+)\\..*").matcher(key);
                if (m.matches()) { layer = Integer.parseInt(m.group(1)); break; }
            }
        }
        return layer != null && c.layersToTransform().contains(layer);
    }

    /**
     * The first key of a {@code rank_pattern} / {@code alpha_pattern} that matches {@code name} as PEFT does
     * ({@code (.*\.)?(key)$}), or null when none does.
     */
    public static String patternKey(Collection<String> keys, String name) {
        for (String k : keys) if (Pattern.compile("(.*\\.)?(" + k + ")").matcher(name).matches()) return k;
        return null;
    }
}
