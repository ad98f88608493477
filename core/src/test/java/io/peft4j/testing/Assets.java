package io.peft4j.testing;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the shared third-party assets ({@code ../shared/assets}, or {@code -Dpeft4j.shared=DIR}). Tests that
 * need them call {@link #require}: when absent, the test is skipped with a message naming the missing path.
 */
public final class Assets {
    private Assets() {}

    public static Path sharedDir() {
        String prop = System.getProperty("peft4j.shared");
        if (prop != null && Files.isDirectory(Path.of(prop))) return Path.of(prop);
        Path p = Path.of("").toAbsolutePath();
        for (int i = 0; i < 4 && p != null; i++, p = p.getParent()) {
            Path s = p.resolveSibling("shared");
            if (Files.isDirectory(s.resolve("assets"))) return s;
        }
        return Path.of("../shared");
    }

    /** {@code assets/<relative>}, or the test is skipped saying the asset is absent. */
    public static Path require(String relative) {
        Path p = sharedDir().resolve("assets").resolve(relative);
        Assumptions.assumeTrue(Files.exists(p), "shared asset absent, test skipped: " + p.toAbsolutePath());
        return p;
    }
}
