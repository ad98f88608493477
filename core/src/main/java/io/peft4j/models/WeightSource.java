package io.peft4j.models;

import io.peft4j.io.ModelWeights;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Named weight tensors a model is built from, in HF names and layouts: an HF directory's safetensors, a llama2.c
 * checkpoint, or tensors held in memory (random benchmark models, tests).
 */
public interface WeightSource extends AutoCloseable {
    /** A path or label for error messages. */
    String location();

    Set<String> names();

    /** The tensor, or null if absent. */
    Tensor getOrNull(String name);

    /** Bytes of the files behind these weights (0 for in-memory weights). */
    long bytesOnDisk();

    @Override void close();

    /** The tensors of an opened HF model directory. */
    static WeightSource of(ModelWeights w) {
        return new WeightSource() {
            public String location() { return w.source().toString(); }
            public Set<String> names() { return w.names(); }
            public Tensor getOrNull(String name) { return w.contains(name) ? w.get(name) : null; }
            public long bytesOnDisk() {
                long b = 0;
                for (SafetensorsFile f : w.files()) {
                    try { b += Files.size(f.path()); } catch (IOException e) { throw new UncheckedIOException(e); }
                }
                return b;
            }
            public void close() { w.close(); }
        };
    }

    /** Tensors held in memory under {@code label}. */
    static WeightSource ofMap(Map<String, Tensor> tensors, String label) {
        Map<String, Tensor> copy = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        return new WeightSource() {
            public String location() { return label; }
            public Set<String> names() { return copy.keySet(); }
            public Tensor getOrNull(String name) { return copy.get(name); }
            public long bytesOnDisk() { return 0; }
            public void close() {}
        };
    }
}
