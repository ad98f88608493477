package io.peft4j.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cConverterTest {
    @Test
    void convertedDirectoryEqualsTheReferenceHfDirectory(@TempDir Path dir) throws IOException {
        Path bin = Assets.require("models/stories260K/stories260K.bin");
        Path tok = Assets.require("models/stories260K/tok512.bin");
        Path hf = Assets.require("models/stories260K-hf");
        Path out = dir.resolve("hf");
        Llama2cConverter.convert(bin, tok, out);

        assertArrayEquals(Files.readAllBytes(tok), Files.readAllBytes(out.resolve("tokenizer.bin")));
        try (var files = Files.list(out)) {
            assertEquals(3, files.count(), "no temporary files left behind");
        }
        ObjectMapper om = new ObjectMapper();
        Map<?, ?> ref = om.readValue(hf.resolve("config.json").toFile(), Map.class);
        Map<?, ?> mine = om.readValue(out.resolve("config.json").toFile(), Map.class);
        assertEquals(ref.keySet(), mine.keySet());
        for (Object k : ref.keySet()) {
            if (ref.get(k) instanceof Number a && mine.get(k) instanceof Number b) assertEquals(a.doubleValue(), b.doubleValue(), 0, "" + k);
            else assertEquals(ref.get(k), mine.get(k), "" + k);
        }
        try (SafetensorsFile a = Safetensors.open(hf.resolve("model.safetensors"));
             SafetensorsFile b = Safetensors.open(out.resolve("model.safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String name : a.names()) Llama2cCheckpointTest.assertBitwiseEqual(a.get(name), b.get(name), name);
        }
    }

    @Test
    void missingTokenizerFailsBeforeWriting(@TempDir Path dir) {
        Path bin = Assets.require("models/stories260K/stories260K.bin");
        IOException e = assertThrows(IOException.class, () -> Llama2cConverter.convert(bin, dir.resolve("nope.bin"), dir.resolve("o")));
        assertTrue(e.getMessage().contains("nope.bin"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("o")));
    }
}
