package io.peft4j.io;

import io.peft4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/** An open, memory-mapped safetensors file. Tensors are views over the mapping (not copied). */
public interface SafetensorsFile extends AutoCloseable {
    Path path();
    /** Tensor names in header order. */
    Set<String> names();
    boolean contains(String name);
    /** A zero-copy tensor over the mapped bytes, in the file's dtype; error names the file if absent. */
    Tensor get(String name);
    Map<String, String> metadata();
    @Override void close();
}
