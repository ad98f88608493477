package io.peft4j.io;

import io.peft4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A validated, memory-mapped safetensors file. The mapping lives in a shared arena, so its tensors can be read from
 * any thread (the kernels' worker pool); {@link #close()} unmaps it, after which reading a tensor obtained earlier
 * fails with an {@link IllegalStateException} rather than touching freed memory.
 */
final class MappedSafetensorsFile implements SafetensorsFile {
    private final Path path;
    private final Arena arena;
    private final MemorySegment data;                              // the data region, after the header
    private final Map<String, Safetensors.Entry> entries;          // header order
    private final Map<String, String> metadata;
    private volatile boolean closed;

    MappedSafetensorsFile(Path path, Arena arena, MemorySegment data, LinkedHashMap<String, Safetensors.Entry> entries,
                          Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.entries = Collections.unmodifiableMap(entries);
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    @Override public Path path() { return path; }

    @Override public Set<String> names() { return entries.keySet(); }

    @Override public boolean contains(String name) { return entries.containsKey(name); }

    @Override
    public Tensor get(String name) {
        if (closed) throw new IllegalStateException(path + ": file is closed, cannot read tensor '" + name + "'");
        Safetensors.Entry e = entries.get(name);
        if (e == null)
            throw new IllegalArgumentException(path + ": no tensor '" + name + "' among its " + entries.size() + " tensors"
                    + ModelWeights.suggestion(name, entries.keySet()));
        if (e.end() - e.begin() > 0 && (e.end() - e.begin()) / e.dtype().bytes > Integer.MAX_VALUE)
            throw new IllegalArgumentException(path + ": tensor '" + name + "' has more than " + Integer.MAX_VALUE
                    + " elements, the most a peft4j tensor can index");
        // a fresh view each call: tensors carry mutable autograd state and a name
        return Tensor.ofSegment(data.asSlice(e.begin(), e.end() - e.begin()), e.dtype(), e.shape()).name(name);
    }

    @Override public Map<String, String> metadata() { return metadata; }

    @Override
    public void close() {
        if (closed) return;
        synchronized (this) {
            if (closed) return;
            closed = true;
            arena.close();
        }
    }

    @Override public String toString() { return "SafetensorsFile(" + path + ", " + entries.size() + " tensors)"; }
}
