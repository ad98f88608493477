package io.peft4j.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * ({@code {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}}, padded with
 * spaces so the data starts 8-byte aligned), then the raw little-endian tensor bytes; offsets are relative to the
 * start of the data region.
 *
 * <p>Reading memory-maps the file and validates the whole header before returning, so a later {@code get} never
 * reads outside the mapping. Gaps between tensors are tolerated (the reference implementation rejects them), overlaps
 * are not. Writing is atomic (temp file, fsync, rename).
 */
public final class Safetensors {
    private Safetensors() {}

    /** The reference implementation's limit; a larger value means the file is not safetensors at all. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    static final String METADATA_KEY = "__metadata__";
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int CHUNK_BYTES = 1 << 20;

    static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** One header entry; begin/end are byte offsets into the data region. */
    record Entry(String name, DType dtype, int[] shape, long begin, long end) {}

    // ------------------------------------------------------------------------------------------------ reading

    /** Memory-maps {@code file} and validates its header (offsets, dtypes, sizes); errors name the file and key. */
    public static SafetensorsFile open(Path file) throws IOException {
        String label = file.toString();
        if (Files.isDirectory(file))
            throw new IOException(label + ": is a directory, not a safetensors file (ModelWeights.open reads a model directory)");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8)
                throw fail(label, "file is " + size + " bytes, too short for the 8-byte header length (empty or truncated?)");
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = mapped.get(U64_LE, 0);
            if (n < 2 || n > MAX_HEADER_BYTES)
                throw fail(label, "header length " + Long.toUnsignedString(n) + " is not sane (must be 2.." + MAX_HEADER_BYTES
                        + "): not a safetensors file?");
            if (8 + n > size)
                throw fail(label, "header length " + n + " runs past the end of the file (" + size + " bytes): truncated?");
            byte[] header = mapped.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            Map<String, String> metadata = new LinkedHashMap<>();
            List<Entry> entries = parseHeader(label, header, metadata);
            long dataStart = 8 + n;
            validateLayout(label, entries, size - dataStart, size, dataStart);
            LinkedHashMap<String, Entry> byName = new LinkedHashMap<>();
            for (Entry e : entries) byName.put(e.name(), e);
            return new MappedSafetensorsFile(file, arena, mapped.asSlice(dataStart), byName, metadata);
        } catch (SafetensorsFormatException | FileSystemException e) {
            arena.close();
            throw e;   // these already name the file
        } catch (IOException e) {
            arena.close();
            throw new IOException(label + ": cannot map the file: " + oneLine(e.getMessage()), e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    static List<Entry> parseHeader(String label, byte[] header, Map<String, String> metadataOut) throws SafetensorsFormatException {
        if (header[0] != '{')
            throw fail(label, "header does not start with '{' (byte 8 is 0x" + HexFormat.of().toHexDigits(header[0]) + "): not a safetensors file?");
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at header byte " + e.getLocation().getByteOffset();
            throw fail(label, "header is not valid JSON" + where + ": " + jsonMessage(e), e);
        } catch (IOException e) {
            throw fail(label, "header is not readable JSON: " + oneLine(e.getMessage()), e);
        }
        if (root == null || !root.isObject()) throw fail(label, "header is not a JSON object");
        List<Entry> entries = new ArrayList<>(root.size());
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            String key = f.getKey();
            JsonNode v = f.getValue();
            if (key.equals(METADATA_KEY)) {
                if (!v.isObject()) throw fail(label, "__metadata__ is " + kind(v) + ", expected an object of strings");
                for (Map.Entry<String, JsonNode> m : v.properties()) {
                    if (!m.getValue().isTextual())
                        throw fail(label, "__metadata__ entry '" + m.getKey() + "' is " + kind(m.getValue()) + ", expected a string");
                    metadataOut.put(m.getKey(), m.getValue().textValue());
                }
                continue;
            }
            entries.add(parseEntry(label, key, v));
        }
        return entries;
    }

    private static Entry parseEntry(String label, String key, JsonNode v) throws SafetensorsFormatException {
        String at = "tensor '" + key + "'";
        if (!v.isObject()) throw fail(label, at + " is " + kind(v) + ", expected {dtype, shape, data_offsets}");
        JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
        if (dt == null) throw fail(label, at + " has no dtype");
        if (sh == null) throw fail(label, at + " has no shape");
        if (off == null) throw fail(label, at + " has no data_offsets");
        if (!dt.isTextual()) throw fail(label, at + " has dtype " + kind(dt) + ", expected a string");
        DType dtype = dtypeOf(dt.textValue());
        if (dtype == null)
            throw fail(label, at + " has dtype '" + dt.textValue() + "', which peft4j does not support (known: "
                    + Arrays.toString(DType.values()) + ")");
        if (!sh.isArray()) throw fail(label, at + " has shape " + kind(sh) + ", expected an array of sizes");
        int[] shape = new int[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToInt() || d.intValue() < 0)
                throw fail(label, at + " has shape " + sh + ": dimension " + i + " is not a size in 0.." + Integer.MAX_VALUE);
            shape[i] = d.intValue();
            numel = multiplyOrFail(label, at, numel, shape[i]);
        }
        if (!off.isArray() || off.size() != 2 || !isOffset(off.get(0)) || !isOffset(off.get(1)))
            throw fail(label, at + " has data_offsets " + off + ", expected [begin, end] with 0 <= begin");
        long begin = off.get(0).longValue(), end = off.get(1).longValue();
        if (end < begin) throw fail(label, at + " has data_offsets [" + begin + ", " + end + "] with end before begin");
        long need = multiplyOrFail(label, at, numel, dtype.bytes);
        if (end - begin != need)
            throw fail(label, at + " is " + dtype + Arrays.toString(shape) + " = " + need + " bytes, but data_offsets ["
                    + begin + ", " + end + "] span " + (end - begin) + " bytes");
        return new Entry(key, dtype, shape, begin, end);
    }

    /** Checks every tensor lies inside the data region and no two overlap. */
    private static void validateLayout(String label, List<Entry> entries, long dataBytes, long fileSize, long dataStart)
            throws SafetensorsFormatException {
        for (Entry e : entries)
            if (e.end() > dataBytes)
                throw fail(label, "tensor '" + e.name() + "' needs " + (e.end() - e.begin()) + " bytes at file offsets ["
                        + (dataStart + e.begin()) + ", " + (dataStart + e.end()) + ") but the file ends at byte " + fileSize + " (truncated?)");
        Entry[] sorted = entries.toArray(new Entry[0]);
        // empty tensors occupy no bytes and cannot overlap anything
        Arrays.sort(sorted, Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry prev = null;
        for (Entry e : sorted) {
            if (e.begin() == e.end()) continue;
            if (prev != null && e.begin() < prev.end())
                throw fail(label, "tensors '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + ") and '" + e.name()
                        + "' [" + e.begin() + ", " + e.end() + ") overlap");
            prev = e;
        }
    }

    static DType dtypeOf(String name) {
        for (DType d : DType.values()) if (d.safetensorsName().equals(name)) return d;
        return null;
    }

    private static boolean isOffset(JsonNode n) { return n != null && n.isIntegralNumber() && n.canConvertToLong() && n.longValue() >= 0; }

    private static long multiplyOrFail(String label, String at, long a, long b) throws SafetensorsFormatException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw fail(label, at + " is too large: its byte size overflows 64 bits");
        }
    }

    private static String kind(JsonNode v) {
        return switch (v.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> v.getNodeType().toString().toLowerCase();
        };
    }

    /** Jackson's message without its multi-part source location, which repeats what we already say. */
    static String jsonMessage(JsonProcessingException e) {
        return oneLine(e.getOriginalMessage()).replaceAll("\\s*\\(start marker at .*$", "").replaceAll("\\s*at \\[Source:.*$", "");
    }

    static String oneLine(String s) { return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").strip(); }

    static SafetensorsFormatException fail(String label, String msg) { return new SafetensorsFormatException(label + ": " + msg); }

    static SafetensorsFormatException fail(String label, String msg, Throwable cause) {
        return new SafetensorsFormatException(label + ": " + msg, cause);
    }

    // ------------------------------------------------------------------------------------------------ writing

    /**
     * Writes {@code tensors} in iteration order with optional string {@code metadata} (may be null), atomically:
     * to a temporary file in the same folder, then moved into place, so an interrupted save leaves nothing half-written.
     * Each tensor is written in its own dtype: heap tensors as F32, memory-segment tensors byte for byte (strided
     * views are gathered element by element, still in their dtype).
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        String label = file.toString();
        byte[] header = header(label, tensors, metadata);
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = null;
        try {
            FileChannel ch = null;
            for (int attempt = 0; ch == null; attempt++) {
                // a hidden sibling, so the rename stays on one file system and is atomic
                tmp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
                try {
                    ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    if (attempt > 10) throw e;
                }
            }
            try (FileChannel out = ch) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
                writeFully(out, len);
                writeFully(out, ByteBuffer.wrap(header));
                ByteBuffer staging = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                MemorySegment stagingSeg = MemorySegment.ofBuffer(staging);   // the whole buffer, taken while fresh
                for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                    try {
                        writeData(out, e.getValue(), staging, stagingSeg);
                    } catch (IOException | RuntimeException ex) {
                        throw new IOException(label + ": writing tensor '" + e.getKey() + "' " + e.getValue().describe()
                                + " failed: " + oneLine(ex.getMessage()), ex);
                    }
                }
                out.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
            syncDirectory(dir);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original failure is the one worth reporting
                }
            }
        }
    }

    /** The JSON header, space-padded to a multiple of 8 bytes as the reference implementation does. */
    static byte[] header(String label, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.getFactory().createGenerator(bos)) {
            g.writeStartObject();
            if (metadata != null) {
                g.writeObjectFieldStart(METADATA_KEY);
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    if (m.getKey() == null || m.getValue() == null)
                        throw new IllegalArgumentException(label + ": metadata entry '" + m.getKey() + "' has a null key or value");
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            long pos = 0;
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                String name = e.getKey();
                Tensor t = e.getValue();
                if (name == null || name.isEmpty() || name.equals(METADATA_KEY))
                    throw new IllegalArgumentException(label + ": invalid tensor name '" + name + "'");
                if (t == null) throw new IllegalArgumentException(label + ": tensor '" + name + "' is null");
                if (t.storage().isHeap() && t.dtype() != DType.F32)
                    throw new IllegalArgumentException(label + ": tensor '" + name + "' is a heap tensor typed " + t.dtype()
                            + "; heap storage holds F32 only");
                long bytes = Math.multiplyExact(t.numel(), (long) t.dtype().bytes);
                g.writeObjectFieldStart(name);
                g.writeStringField("dtype", t.dtype().safetensorsName());
                g.writeArrayFieldStart("shape");
                for (int d : t.shape()) g.writeNumber(d);
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(pos);
                g.writeNumber(pos + bytes);
                g.writeEndArray();
                g.writeEndObject();
                pos += bytes;
            }
            g.writeEndObject();
        }
        int pad = (8 - bos.size() % 8) % 8;
        for (int i = 0; i < pad; i++) bos.write(' ');
        return bos.toByteArray();
    }

    private static void writeData(FileChannel out, Tensor t, ByteBuffer staging, MemorySegment st) throws IOException {
        long n = t.numel();
        if (n == 0) return;
        int eb = t.dtype().bytes;
        if (t.storage().isHeap()) {
            Tensor c = t.contiguous();   // heap tensors are F32: a copy only for strided views, never a conversion
            float[] a = c.data();
            long base = c.dataOffset();
            int per = CHUNK_BYTES / 4;
            for (long i = 0; i < n; i += per) {
                int cnt = (int) Math.min(per, n - i);
                MemorySegment.copy(a, (int) (base + i), st, F32_LE, 0, cnt);
                writeFully(out, staging.clear().limit(cnt * 4));
            }
            return;
        }
        MemorySegment src = t.storage().segment();
        if (t.isContiguous()) {
            MemorySegment bytes = src.asSlice(t.offset() * eb, n * eb);
            for (long p = 0; p < bytes.byteSize(); p += CHUNK_BYTES)
                writeFully(out, bytes.asSlice(p, Math.min(CHUNK_BYTES, bytes.byteSize() - p)).asByteBuffer());
            return;
        }
        // strided view over a segment: gather elements in logical order, keeping the dtype's exact bytes
        int[] shape = t.shape(), strides = t.strides();
        int[] idx = new int[shape.length];
        long elem = t.offset();
        int fill = 0;
        for (long i = 0; i < n; i++) {
            MemorySegment.copy(src, elem * eb, st, fill, eb);
            fill += eb;
            if (fill + eb > CHUNK_BYTES) {
                writeFully(out, staging.clear().limit(fill));
                fill = 0;
            }
            for (int d = shape.length - 1; d >= 0; d--) {
                elem += strides[d];
                if (++idx[d] < shape[d]) break;
                elem -= (long) strides[d] * shape[d];
                idx[d] = 0;
            }
        }
        if (fill > 0) writeFully(out, staging.clear().limit(fill));
    }

    private static void writeFully(FileChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) out.write(b);
    }

    /** Makes the rename durable; best effort, since not every platform can open a directory. */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | RuntimeException ignored) {
            // Windows and some file systems refuse: the data itself is already synced
        }
    }
}
