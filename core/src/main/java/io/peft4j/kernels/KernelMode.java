package io.peft4j.kernels;

/**
 * Which kernel implementations run: the Vector API fast paths (default) or their scalar twins, chosen once at
 * start-up by {@code -Dpeft4j.kernels=scalar|vector}. Tests compare the two directly by constructing both.
 */
public enum KernelMode {
    VECTOR, SCALAR;

    private static final KernelMode CURRENT = parse(System.getProperty("peft4j.kernels", "vector"));

    public static KernelMode current() { return CURRENT; }

    public static boolean scalar() { return CURRENT == SCALAR; }

    static KernelMode parse(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "vector", "" -> VECTOR;
            case "scalar" -> SCALAR;
            default -> throw new IllegalArgumentException("-Dpeft4j.kernels must be 'vector' or 'scalar', got '" + s + "'");
        };
    }
}
