package io.peft4j.cli;

import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ConvertCommandTest {
    /** The shared assets folder (same lookup as core's Assets helper, which is test-scoped to core). */
    static Path asset(String rel) {
        String prop = System.getProperty("peft4j.shared");
        Path p = (prop != null ? Path.of(prop) : Path.of("../../shared")).resolve("assets").resolve(rel);
        Assumptions.assumeTrue(Files.exists(p), "shared asset absent, test skipped: " + p.toAbsolutePath());
        return p;
    }

    @Test
    void convertsStories260KToTheReferenceHfDirectory(@TempDir Path dir) throws IOException {
        Path bin = asset("models/stories260K/stories260K.bin");
        Path tok = asset("models/stories260K/tok512.bin");
        Path hf = asset("models/stories260K-hf");
        Path out = dir.resolve("out");
        assertEquals(0, Main.run("convert", "--model", bin.toString(), "--tokenizer", tok.toString(), "--out", out.toString()));
        assertArrayEquals(Files.readAllBytes(tok), Files.readAllBytes(out.resolve("tokenizer.bin")));
        assertTrue(Files.readString(out.resolve("config.json")).contains("\n  \"hidden_size\" : 64"), "pretty JSON");
        try (SafetensorsFile mine = Safetensors.open(out.resolve("model.safetensors"));
             SafetensorsFile ref = Safetensors.open(hf.resolve("model.safetensors"))) {
            assertEquals(ref.names(), mine.names());
            for (String name : ref.names()) {
                Tensor a = ref.get(name), b = mine.get(name);
                assertArrayEquals(a.shape(), b.shape(), name);
                float[] x = a.toFloatArray(), y = b.toFloatArray();
                for (int i = 0; i < x.length; i++)
                    assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(y[i]), () -> name + " differs");
            }
        }
    }

    @Test
    void missingInputIsOneErrorLineNamingTheFile(@TempDir Path dir) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream old = System.err;
        System.setErr(new PrintStream(err, true));
        int code;
        try {
            code = Main.run("convert", "--model", dir.resolve("absent.bin").toString(), "--out", dir.resolve("o").toString());
        } finally {
            System.setErr(old);
        }
        assertEquals(1, code);
        String msg = err.toString().strip();
        assertTrue(msg.startsWith("error: ") && msg.contains("absent.bin") && !msg.contains("\n"), msg);
    }
}
