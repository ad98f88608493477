package io.peft4j.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.peft4j.io.Safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Turns a llama2.c checkpoint into a Hugging Face model directory: {@code config.json}, {@code model.safetensors}
 * (rotate-half q/k rows, HF names) and, optionally, the llama2.c {@code tokenizer.bin} copied alongside so the
 * directory is self-contained.
 */
public final class Llama2cConverter {
    private Llama2cConverter() {}

    /** Writes the HF directory {@code outDir} (created if needed); {@code tokenizerBin} may be null. */
    public static void convert(Path checkpoint, Path tokenizerBin, Path outDir) throws IOException {
        if (tokenizerBin != null && !Files.isRegularFile(tokenizerBin))
            throw new IOException(tokenizerBin + ": tokenizer file not found");
        Files.createDirectories(outDir);
        try (Llama2cCheckpoint ckpt = Llama2cCheckpoint.open(checkpoint)) {
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", "pt"); // what HF loaders expect of a PyTorch-layout safetensors file
            meta.put("source", "llama2.c v" + ckpt.config().version() + " checkpoint " + checkpoint.getFileName() + ", converted by peft4j");
            Safetensors.write(outDir.resolve("model.safetensors"), ckpt.tensors(), meta);
            writeJsonAtomically(outDir.resolve("config.json"), ckpt.hfConfig());
        }
        if (tokenizerBin != null) {
            Path tmp = outDir.resolve("tokenizer.bin.tmp");
            Files.copy(tokenizerBin, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, outDir.resolve("tokenizer.bin"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    static void writeJsonAtomically(Path file, Map<String, Object> json) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, om.writeValueAsString(json) + "\n");
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
