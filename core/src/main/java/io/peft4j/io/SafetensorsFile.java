package io.peft4j.io;

import io.peft4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * An open, memory-mapped safetensors file, from {@link Safetensors#open}. Tensors are views over the mapping (not
 * copied) and stay valid until {@link #close()}; reading one afterwards throws {@link IllegalStateException}. Safe to
 * read from several threads.
 */
public interface SafetensorsFile extends AutoCloseable {
    Path path();
    /** Tensor names in header order. */
    Set<String> names();
    boolean contains(String name);
    /**
     * A zero-copy tensor over the mapped bytes, in the file's dtype (BF16 stays BF16), named {@code name}; a fresh
     * view on each call. Throws {@link IllegalArgumentException} naming the file if absent.
     */
    Tensor get(String name);
    /** The {@code __metadata__} string map (empty if the file has none). */
    Map<String, String> metadata();
    /** Unmaps the file; idempotent. */
    @Override void close();
}
