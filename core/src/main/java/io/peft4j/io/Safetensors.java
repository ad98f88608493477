package io.peft4j.io;

import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** The safetensors format: an 8-byte little-endian header length, a JSON header, then raw little-endian data. */
public final class Safetensors {
    private Safetensors() {}

    /** Memory-maps {@code file} and validates its header (offsets, dtypes, sizes); errors name the file and key. */
    public static SafetensorsFile open(Path file) throws IOException {
        throw new UnsupportedOperationException("Safetensors.open: not yet implemented");
    }

    /**
     * Writes {@code tensors} in iteration order with optional string {@code metadata} (may be null), atomically:
     * to a temporary file in the same folder, then moved into place, so an interrupted save leaves nothing half-written.
     * Each tensor is written in its own dtype.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        throw new UnsupportedOperationException("Safetensors.write: not yet implemented");
    }
}
