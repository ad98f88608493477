package io.peft4j.io;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsTest {
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir Path dir;

    /** A contiguous segment tensor of {@code dtype} with random bytes (BOOL: 0/1), as a loaded checkpoint would be. */
    static Tensor randomSegmentTensor(SplittableRandom rng, DType dtype, int... shape) {
        long bytes = Tensor.numel(shape) * dtype.bytes;
        MemorySegment seg = Arena.ofAuto().allocate(Math.max(1, bytes));
        for (long i = 0; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) (dtype == DType.BOOL ? rng.nextInt(2) : rng.nextInt(256)));
        return Tensor.ofSegment(seg, dtype, shape);
    }

    static byte[] bytesOf(Tensor t) {
        if (t.numel() == 0) return new byte[0];
        assertTrue(t.isContiguous());
        long n = t.numel() * t.dtype().bytes;
        if (t.storage().isHeap()) {
            ByteBuffer b = ByteBuffer.allocate((int) n).order(ByteOrder.LITTLE_ENDIAN);
            for (long i = 0; i < t.numel(); i++) b.putFloat(t.getFlat(i));
            return b.array();
        }
        return t.storage().segment().asSlice(t.offset() * t.dtype().bytes, n).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void roundTripsEveryDtypeByteForByteInOrderWithMetadata() throws IOException {
        SplittableRandom rng = new SplittableRandom(1);
        Map<String, Tensor> in = new LinkedHashMap<>();
        // names deliberately out of alphabetical order: the writer keeps the caller's order
        for (DType d : DType.values()) in.put("z." + d.name().toLowerCase(), randomSegmentTensor(rng, d, 3, 5));
        in.put("a.heap", Tensor.randn(2, 1f, 4, 2));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("note", "quotes \" and\nnewlines, ünïcödé");
        Path f = dir.resolve("all.safetensors");
        Safetensors.write(f, in, meta);
        try (SafetensorsFile sf = Safetensors.open(f)) {
            assertEquals(new ArrayList<>(in.keySet()), new ArrayList<>(sf.names()));
            assertEquals(meta, sf.metadata());
            for (Map.Entry<String, Tensor> e : in.entrySet()) {
                Tensor t = sf.get(e.getKey());
                Tensor orig = e.getValue();
                assertEquals(orig.dtype(), t.dtype(), e.getKey());
                assertArrayEquals(orig.shape(), t.shape(), e.getKey());
                assertFalse(t.storage().isHeap(), "a loaded tensor is a view over the mapping");
                assertArrayEquals(bytesOf(orig), bytesOf(t), e.getKey());
                assertEquals(e.getKey(), t.name());
            }
        }
        long headerLen = readHeaderLength(f);
        assertEquals(0, headerLen % 8, "header padded to 8 bytes so data starts aligned");
    }

    @Test
    void roundTripsRandomShapesAndDtypes() throws IOException {
        SplittableRandom rng = new SplittableRandom(7);
        DType[] types = DType.values();
        for (int trial = 0; trial < 30; trial++) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            int count = 1 + rng.nextInt(5);
            for (int i = 0; i < count; i++) {
                int rank = rng.nextInt(4);
                int[] shape = new int[rank];
                for (int d = 0; d < rank; d++) shape[d] = rng.nextInt(rng.nextInt(8) == 0 ? 1 : 7);   // sometimes a 0 dim
                in.put("t" + trial + "." + i, randomSegmentTensor(rng, types[rng.nextInt(types.length)], shape));
            }
            Path f = dir.resolve("r" + trial + ".safetensors");
            Safetensors.write(f, in, trial % 2 == 0 ? null : Map.of("trial", "" + trial));
            try (SafetensorsFile sf = Safetensors.open(f)) {
                assertEquals(new ArrayList<>(in.keySet()), new ArrayList<>(sf.names()));
                assertEquals(trial % 2 == 0 ? Map.of() : Map.of("trial", "" + trial), sf.metadata());
                for (Map.Entry<String, Tensor> e : in.entrySet()) {
                    Tensor t = sf.get(e.getKey());
                    assertEquals(e.getValue().dtype(), t.dtype());
                    assertArrayEquals(e.getValue().shape(), t.shape());
                    assertArrayEquals(bytesOf(e.getValue()), bytesOf(t), e.getKey() + " in trial " + trial);
                }
            }
        }
    }

    @Test
    void emptyAndScalarTensors() throws IOException {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("empty", Tensor.zeros(0, 4));
        in.put("scalar", Tensor.scalar(-1.5f));
        in.put("empty_bf16", randomSegmentTensor(new SplittableRandom(3), DType.BF16, 2, 0));
        in.put("after", Tensor.of(new float[] {1, 2, 3}, 3));
        Path f = dir.resolve("edge.safetensors");
        Safetensors.write(f, in, Map.of());
        try (SafetensorsFile sf = Safetensors.open(f)) {
            assertArrayEquals(new int[] {0, 4}, sf.get("empty").shape());
            assertEquals(0, sf.get("empty").numel());
            Tensor s = sf.get("scalar");
            assertEquals(0, s.rank(), "shape [] survives, not [1]");
            assertEquals(-1.5f, s.getFlat(0));
            assertEquals(DType.BF16, sf.get("empty_bf16").dtype());
            assertArrayEquals(new float[] {1, 2, 3}, sf.get("after").toFloatArray());
            assertEquals(Map.of(), sf.metadata());
        }
        // an empty map of tensors is a valid file too
        Path none = dir.resolve("none.safetensors");
        Safetensors.write(none, Map.of(), null);
        try (SafetensorsFile sf = Safetensors.open(none)) {
            assertTrue(sf.names().isEmpty());
        }
    }

    @Test
    void stridedViewsAreWrittenContiguousInTheirOwnDtype() throws IOException {
        SplittableRandom rng = new SplittableRandom(11);
        Tensor heap = Tensor.randn(5, 1f, 3, 4);
        Tensor bf16 = randomSegmentTensor(rng, DType.BF16, 4, 6);
        Tensor i64 = Tensor.ofSegment(Arena.ofAuto().allocate(8 * 12), DType.I64, 3, 4);
        for (int i = 0; i < 12; i++) i64.storage().segment().set(I64, 8L * i, (1L << 60) + 12345L * i);   // beyond float precision
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("heap_t", heap.transpose(0, 1));
        in.put("bf16_slice_t", bf16.slice(1, 1, 5).transpose(0, 1));
        in.put("i64_t", i64.transpose(0, 1));
        Path f = dir.resolve("views.safetensors");
        Safetensors.write(f, in, null);
        try (SafetensorsFile sf = Safetensors.open(f)) {
            Tensor a = sf.get("heap_t");
            assertArrayEquals(new int[] {4, 3}, a.shape());
            for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) assertEquals(heap.get(j, i), a.get(i, j));
            Tensor b = sf.get("bf16_slice_t");
            assertEquals(DType.BF16, b.dtype());
            MemorySegment src = bf16.storage().segment(), got = b.storage().segment();
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    assertEquals(src.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * (j * 6 + i + 1)),
                            got.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * (i * 4 + j)), "bf16 bits at " + i + "," + j);
            Tensor c = sf.get("i64_t");
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++)
                    assertEquals((1L << 60) + 12345L * (j * 4 + i), c.storage().segment().get(I64, 8L * (i * 3 + j)));
        }
    }

    @Test
    void readsAFileWrittenByThePythonHelperAndRewritesItByteIdentically() throws Exception {
        Path py = fixture("io_all_dtypes.safetensors");
        try (SafetensorsFile sf = Safetensors.open(py)) {
            assertEquals(List.of("f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool", "empty", "scalar"),
                    new ArrayList<>(sf.names()));
            assertEquals("Grüße, 世界", sf.metadata().get("unicode"));
            // the formulas tools/golden_engine.py documents for element i
            checkFlat(sf.get("f32"), DType.F32, new int[] {3, 4}, i -> 0.5 * i - 2.75);
            checkFlat(sf.get("f16"), DType.F16, new int[] {4, 3}, i -> 0.25 * i - 1.5);
            checkFlat(sf.get("bf16"), DType.BF16, new int[] {2, 6}, i -> 0.125 * i - 0.75);
            checkFlat(sf.get("i32"), DType.I32, new int[] {12, 1}, i -> -70001 * i + 5);
            checkFlat(sf.get("i8"), DType.I8, new int[] {3, 2, 2}, i -> 11 * i - 60);
            checkFlat(sf.get("u8"), DType.U8, new int[] {12}, i -> 21 * i + 7);
            checkFlat(sf.get("bool"), DType.BOOL, new int[] {6, 2}, i -> i % 3 == 0 ? 1 : 0);
            Tensor f64 = sf.get("f64");
            assertEquals(DType.F64, f64.dtype());
            for (int i = 0; i < 12; i++) assertEquals(i / 3.0, f64.storage().segment().get(F64, 8L * i));
            Tensor i64 = sf.get("i64");
            for (int i = 0; i < 12; i++) assertEquals((1L << 62) + 1000003L * i - 7, i64.storage().segment().get(I64, 8L * i));
            assertArrayEquals(new int[] {0, 3}, sf.get("empty").shape());
            assertEquals(0, sf.get("scalar").rank());
            assertEquals(3.25f, sf.get("scalar").getFlat(0));

            Map<String, Tensor> all = new LinkedHashMap<>();
            for (String n : sf.names()) all.put(n, sf.get(n));
            Path copy = dir.resolve("copy.safetensors");
            Safetensors.write(copy, all, sf.metadata());
            assertArrayEquals(Files.readAllBytes(py), Files.readAllBytes(copy),
                    "same tensors, order and metadata give the bytes the Python helper (and the reference layout) gives");
        }
    }

    private static void checkFlat(Tensor t, DType dtype, int[] shape, java.util.function.IntToDoubleFunction f) {
        assertEquals(dtype, t.dtype());
        assertArrayEquals(shape, t.shape());
        for (int i = 0; i < t.numel(); i++) assertEquals((float) f.applyAsDouble(i), t.getFlat(i), 0f, dtype + " element " + i);
    }

    @Test
    void tensorsAreZeroCopyViewsAndDieWithTheFile() throws IOException {
        Path f = dir.resolve("m.safetensors");
        Safetensors.write(f, Map.of("w", Tensor.randn(1, 1f, 8, 8)), null);
        SafetensorsFile sf = Safetensors.open(f);
        Tensor w = sf.get("w");
        assertTrue(w.storage().segment().isMapped(), "backed by the file mapping, not a heap copy");
        assertNotSame(w, sf.get("w"), "each get is a fresh view: autograd state is per tensor");
        float before = w.getFlat(3);
        sf.close();
        sf.close();   // idempotent
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> sf.get("w"));
        assertTrue(e.getMessage().contains("m.safetensors") && e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> w.getFlat(3), "reading after close fails instead of touching unmapped memory");
        assertTrue(Float.isFinite(before));
    }

    @Test
    void missingTensorNamesTheFile() throws IOException {
        Path f = dir.resolve("few.safetensors");
        Safetensors.write(f, Map.of("model.norm.weight", Tensor.zeros(4)), null);
        try (SafetensorsFile sf = Safetensors.open(f)) {
            assertFalse(sf.contains("norm.weight"));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> sf.get("norm.weight"));
            assertOneLine(e, "few.safetensors", "'norm.weight'", "did you mean 'model.norm.weight'");
        }
    }

    // ------------------------------------------------------------------------------------------ malformed files

    /** Writes 8-byte length + header text + {@code dataBytes} zero bytes. */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return raw(name, h.length, h, dataBytes);
    }

    private Path raw(String name, long declaredLength, byte[] header, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredLength).put(header);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private static SafetensorsFormatException rejects(Path p, String... fragments) {
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Safetensors.open(p).close());
        assertOneLine(e, fragments);
        assertTrue(e.getMessage().startsWith(p.toString() + ": "), "names the file first: " + e.getMessage());
        return e;
    }

    static void assertOneLine(Exception e, String... fragments) {
        String m = e.getMessage();
        assertNotNull(m);
        assertFalse(m.contains("\n") || m.contains("\r"), "one line: " + m);
        for (String f : fragments) assertTrue(m.contains(f), "message should mention '" + f + "': " + m);
    }

    private static final String GOOD = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}";

    @Test
    void aWellFormedHandWrittenFileOpens() throws IOException {
        try (SafetensorsFile sf = Safetensors.open(raw("good.safetensors", GOOD, 24))) {
            assertEquals(List.of("a", "b"), new ArrayList<>(sf.names()));
        }
    }

    @Test
    void notAFile() {
        IOException d = assertThrows(IOException.class, () -> Safetensors.open(dir));
        assertOneLine(d, dir.toString(), "is a directory");
        assertThrows(java.nio.file.NoSuchFileException.class, () -> Safetensors.open(dir.resolve("absent.safetensors")));
    }

    @Test
    void truncatedFile() throws IOException {
        Path p = raw("cut.safetensors", GOOD, 20);
        rejects(p, "tensor 'b'", "needs 8 bytes", "file ends at byte " + Files.size(p), "truncated?");
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        rejects(tiny, "3 bytes", "too short");
    }

    @Test
    void badHeaderLength() throws IOException {
        byte[] h = GOOD.getBytes(StandardCharsets.UTF_8);
        rejects(raw("huge.safetensors", 1L << 40, h, 24), "header length", "not sane");
        rejects(raw("negative.safetensors", -5L, h, 24), "header length 18446744073709551611", "not sane");
        rejects(raw("past.safetensors", h.length + 100, h, 24), "header length " + (h.length + 100), "runs past the end");
        rejects(raw("short.safetensors", 1, h, 24), "header length 1", "not sane");
        rejects(raw("text.safetensors", 0x2020202020202020L, "hello".getBytes(StandardCharsets.UTF_8), 0), "not sane");
    }

    @Test
    void badJson() throws IOException {
        rejects(raw("bad.safetensors", "{\"a\":{\"dtype\":\"F32\",", 0), "not valid JSON", "header byte");
        rejects(raw("notobj.safetensors", "[1,2]", 0), "does not start with '{'");
        rejects(raw("trailing.safetensors", "{} {}", 0), "not valid JSON");
        rejects(raw("dup.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}", 8), "not valid JSON", "'a'");
        byte[] badUtf8 = "{\"\u00e9\":1}".getBytes(StandardCharsets.ISO_8859_1);
        rejects(raw("utf8.safetensors", badUtf8.length, badUtf8, 0), "not valid JSON");
    }

    @Test
    void missingOrMistypedFields() throws IOException {
        rejects(raw("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor 'w'", "no dtype");
        rejects(raw("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "tensor 'w'", "no shape");
        rejects(raw("nooff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "tensor 'w'", "no data_offsets");
        rejects(raw("notobj2.safetensors", "{\"w\":[1]}", 4), "tensor 'w'", "an array");
        rejects(raw("negdim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                "tensor 'w'", "dimension 0");
        rejects(raw("fracdim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4),
                "tensor 'w'", "dimension 0");
        rejects(raw("offs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4),
                "tensor 'w'", "data_offsets [0]");
        rejects(raw("backwards.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4),
                "tensor 'w'", "end before begin");
        rejects(raw("meta.safetensors", "{\"__metadata__\":{\"step\":3}}", 0), "__metadata__ entry 'step'", "a number");
        rejects(raw("meta2.safetensors", "{\"__metadata__\":\"x\"}", 0), "__metadata__", "a string");
        rejects(raw("overflow.safetensors", "{\"w\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647],"
                + "\"data_offsets\":[0,8]}}", 8), "tensor 'w'", "overflows");
    }

    @Test
    void unknownDtype() throws IOException {
        rejects(raw("f8.safetensors", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4),
                "tensor 'w'", "'F8_E4M3'", "does not support");
    }

    @Test
    void wrongByteCount() throws IOException {
        rejects(raw("count.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[0,24]}}", 24),
                "tensor 'w'", "BF16[3, 2] = 12 bytes", "span 24 bytes");
    }

    @Test
    void overlappingAndOutOfRangeOffsets() throws IOException {
        rejects(raw("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16), "'a' [0, 16)", "'b' [8, 16)", "overlap");
        // header order need not be offset order, but overlap is found either way
        rejects(raw("overlap2.safetensors", "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20), "'a'", "'b'", "overlap");
        rejects(raw("range.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[100,116]}}", 16),
                "tensor 'a'", "file ends at byte");
        // out-of-order but disjoint entries, and empty tensors sharing an offset, are fine
        try (SafetensorsFile sf = Safetensors.open(raw("ok.safetensors", "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                + "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 24))) {
            assertEquals(List.of("b", "e", "a"), new ArrayList<>(sf.names()));
        }
    }

    // ------------------------------------------------------------------------------------------ atomic writes

    @Test
    void anInterruptedSaveLeavesTheOldFileIntactAndNoTempFile() throws IOException {
        Path f = dir.resolve("adapter.safetensors");
        Safetensors.write(f, Map.of("old", Tensor.randn(3, 1f, 4)), Map.of("v", "1"));
        byte[] old = Files.readAllBytes(f);

        // a tensor whose read fails midway through the save: its backing file has been closed
        Path other = dir.resolve("other.safetensors");
        Safetensors.write(other, Map.of("x", Tensor.randn(4, 1f, 1000)), null);
        SafetensorsFile closed = Safetensors.open(other);
        Tensor dead = closed.get("x");
        closed.close();
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("first", Tensor.randn(5, 1f, 10_000));   // fully written before the failure
        in.put("dead", dead);
        in.put("last", Tensor.zeros(3));
        IOException e = assertThrows(IOException.class, () -> Safetensors.write(f, in, Map.of("v", "2")));
        assertOneLine(e, "adapter.safetensors", "tensor 'dead'");

        assertArrayEquals(old, Files.readAllBytes(f), "previous file untouched");
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("adapter.safetensors", "other.safetensors"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary file left behind");
        }
        // and a successful save replaces it
        Safetensors.write(f, Map.of("new", Tensor.zeros(2)), Map.of("v", "3"));
        try (SafetensorsFile sf = Safetensors.open(f)) {
            assertEquals(List.of("new"), new ArrayList<>(sf.names()));
            assertEquals("3", sf.metadata().get("v"));
        }
    }

    @Test
    void overwritingAFileThatIsStillMappedKeepsOldViewsReadable() throws IOException {
        Path f = dir.resolve("w.safetensors");
        Tensor a = Tensor.randn(8, 1f, 16);
        Safetensors.write(f, Map.of("w", a), null);
        try (SafetensorsFile sf = Safetensors.open(f)) {
            Tensor view = sf.get("w");
            Safetensors.write(f, Map.of("w", Tensor.zeros(16)), null);   // e.g. saving a checkpoint over the one being read
            assertArrayEquals(a.toFloatArray(), view.toFloatArray(), "the rename swaps the directory entry, not the mapped inode");
        }
        try (SafetensorsFile sf = Safetensors.open(f)) {
            assertArrayEquals(new float[16], sf.get("w").toFloatArray());
        }
    }

    @Test
    void writerRejectsBadNames() {
        Path f = dir.resolve("bad.safetensors");
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("__metadata__", Tensor.zeros(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Safetensors.write(f, in, null));
        assertOneLine(e, "bad.safetensors", "'__metadata__'");
        assertFalse(Files.exists(f));
    }

    // ------------------------------------------------------------------------------------------ real assets

    @Test
    void readsTheStories260KCheckpoint() throws IOException {
        Path p = Assets.require("models/stories260K-hf/model.safetensors");
        try (SafetensorsFile sf = Safetensors.open(p)) {
            // config.json: vocab 512, hidden 64, 5 layers, 8 heads, 4 kv heads, head_dim 8, intermediate 172, tied embeddings
            assertArrayEquals(new int[] {512, 64}, sf.get("model.embed_tokens.weight").shape());
            assertArrayEquals(new int[] {64}, sf.get("model.norm.weight").shape());
            assertFalse(sf.contains("lm_head.weight"), "tie_word_embeddings: no separate lm_head");
            for (int l = 0; l < 5; l++) {
                String pre = "model.layers." + l + ".";
                assertArrayEquals(new int[] {64, 64}, sf.get(pre + "self_attn.q_proj.weight").shape());
                assertArrayEquals(new int[] {32, 64}, sf.get(pre + "self_attn.k_proj.weight").shape());
                assertArrayEquals(new int[] {32, 64}, sf.get(pre + "self_attn.v_proj.weight").shape());
                assertArrayEquals(new int[] {64, 64}, sf.get(pre + "self_attn.o_proj.weight").shape());
                assertArrayEquals(new int[] {172, 64}, sf.get(pre + "mlp.gate_proj.weight").shape());
                assertArrayEquals(new int[] {172, 64}, sf.get(pre + "mlp.up_proj.weight").shape());
                assertArrayEquals(new int[] {64, 172}, sf.get(pre + "mlp.down_proj.weight").shape());
            }
            assertEquals(2 + 5 * 9, sf.names().size());
            for (String n : sf.names()) {
                Tensor t = sf.get(n);
                assertEquals(DType.F32, t.dtype(), n);
                float[] v = t.toFloatArray();
                double sq = 0;
                for (float x : v) { assertTrue(Float.isFinite(x), n); sq += x * x; }
                double rms = Math.sqrt(sq / v.length);
                // trained weights: neither zero nor blown up; norms sit near 1, matrices near 0.02..0.5
                assertTrue(rms > 1e-3 && rms < 10, n + " rms " + rms);
            }
            assertEquals("pt", sf.metadata().get("format"));
        }
    }

    @Test
    void readsTheGpt2LoraAdapter() throws IOException {
        Path p = Assets.require("adapters/gpt2-lora-r8/adapter_model.safetensors");
        try (SafetensorsFile sf = Safetensors.open(p)) {
            // adapter_config.json: r 8 on c_attn and c_proj of GPT-2 small (12 layers, d 768); attn c_attn is 768 -> 2304
            int a = 0, b = 0;
            for (String n : sf.names()) {
                assertTrue(n.startsWith("base_model.model.transformer.h."), n);
                Tensor t = sf.get(n);
                assertEquals(DType.F32, t.dtype(), n);
                assertEquals(2, t.rank(), n);
                if (n.endsWith("lora_A.weight")) { a++; assertEquals(8, t.dim(0), n); }
                else if (n.endsWith("lora_B.weight")) { b++; assertEquals(8, t.dim(1), n); }
                else fail("unexpected tensor " + n);
            }
            assertEquals(a, b);
            assertTrue(a >= 24, "c_attn and c_proj in each of 12 layers, got " + a);
            assertArrayEquals(new int[] {8, 768}, sf.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape());
            assertArrayEquals(new int[] {2304, 8}, sf.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape());
            float[] bw = sf.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").toFloatArray();
            boolean nonzero = false;
            for (float x : bw) { assertTrue(Float.isFinite(x)); nonzero |= x != 0; }
            assertTrue(nonzero, "a trained adapter's B is no longer all zero");
        }
    }

    // ------------------------------------------------------------------------------------------ helpers

    static Path fixture(String name) throws URISyntaxException {
        var url = SafetensorsTest.class.getResource("/golden/engine/" + name);
        assertNotNull(url, "fixture /golden/engine/" + name + " missing: run /usr/bin/python3 tools/golden_engine.py");
        return Path.of(url.toURI());
    }

    private static long readHeaderLength(Path f) throws IOException {
        byte[] b = Arrays.copyOf(Files.readAllBytes(f), 8);
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
}
