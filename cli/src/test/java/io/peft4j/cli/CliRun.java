package io.peft4j.cli;

import org.junit.jupiter.api.Assumptions;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Runs the CLI in-process with stdout and stderr captured. */
record CliRun(int code, String out, String err) {
    static CliRun of(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new CliRun(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** A shared asset, or the test is skipped. */
    static Path asset(String rel) {
        String prop = System.getProperty("peft4j.shared");
        Path p = (prop != null ? Path.of(prop) : Path.of("../../shared")).resolve("assets").resolve(rel);
        Assumptions.assumeTrue(Files.exists(p), "shared asset absent, test skipped: " + p.toAbsolutePath());
        return p;
    }

    /** The first {@code chars} characters of tiny Shakespeare, written to dir/shakespeare.txt (or the test is skipped). */
    static Path shakespeare(Path dir, int chars) throws java.io.IOException {
        Path data = dir.resolve("shakespeare.txt");
        Files.writeString(data, Files.readString(asset("datasets/tinyshakespeare/input.txt")).substring(0, chars));
        return data;
    }

    /** A golden model fixture of the core module. */
    static Path fixture(String name) {
        Path p = Path.of("../core/src/test/resources/golden/models").resolve(name);
        Assumptions.assumeTrue(Files.isDirectory(p), "core fixture absent: " + p.toAbsolutePath());
        return p;
    }
}
