package io.peft4j.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cCheckpointTest {
    static Path stories() { return Assets.require("models/stories260K/stories260K.bin"); }

    static void assertBitwiseEqual(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        float[] a = expected.toFloatArray(), b = actual.toFloatArray();
        for (int i = 0; i < a.length; i++)
            if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i]))
                fail(what + " differs at flat index " + i + ": " + a[i] + " vs " + b[i]);
    }

    @Test
    void parsesTheLegacyHeader() throws IOException {
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories())) {
            Llama2cCheckpoint.Config k = c.config();
            assertEquals(new Llama2cCheckpoint.Config(64, 172, 5, 8, 4, 512, 512, true, 0), k);
            assertEquals(8, k.headDim());
            assertEquals(32, k.kvDim());
            assertEquals(1 + 5 * 9 + 1, c.tensors().size(), "tied: no lm_head");
            assertFalse(c.tensors().containsKey("lm_head.weight"));
            // Zero copy: everything but the RoPE-permuted q/k stays a view over the mapped file.
            assertFalse(c.get("model.layers.0.mlp.down_proj.weight").storage().isHeap());
            assertFalse(c.get("model.embed_tokens.weight").storage().isHeap());
            assertTrue(c.get("model.layers.0.self_attn.q_proj.weight").storage().isHeap());
            assertArrayEquals(new int[] {64, 172}, c.get("model.layers.4.mlp.down_proj.weight").shape());
            assertArrayEquals(new int[] {32, 64}, c.get("model.layers.2.self_attn.k_proj.weight").shape());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.get("model.layers.9.mlp.up_proj.weight"));
            assertTrue(e.getMessage().contains("stories260K.bin") && e.getMessage().contains("layers.9"), e.getMessage());
        }
    }

    @Test
    void everyTensorIsBitwiseEqualToTheHfConversion() throws IOException {
        Path hf = Assets.require("models/stories260K-hf/model.safetensors");
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories()); SafetensorsFile ref = Safetensors.open(hf)) {
            assertEquals(ref.names(), c.tensors().keySet().stream().sorted().collect(java.util.stream.Collectors.toCollection(java.util.LinkedHashSet::new)));
            for (String name : ref.names()) assertBitwiseEqual(ref.get(name), c.get(name), name);
        }
    }

    @Test
    void hfConfigMatchesTheReferenceConfigJson() throws IOException {
        Path cfg = Assets.require("models/stories260K-hf/config.json");
        ObjectMapper om = new ObjectMapper();
        Map<?, ?> ref = om.readValue(cfg.toFile(), Map.class);
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories())) {
            // Round-trip ours through JSON so numbers compare as JSON numbers do (10000 == 10000.0 is not equals()).
            Map<?, ?> mine = om.readValue(om.writeValueAsString(c.hfConfig()), Map.class);
            assertEquals(ref.keySet(), mine.keySet());
            for (Object k : ref.keySet()) {
                Object a = ref.get(k), b = mine.get(k);
                if (a instanceof Number x && b instanceof Number y) assertEquals(x.doubleValue(), y.doubleValue(), 0, "" + k);
                else assertEquals(a, b, "" + k);
            }
        }
    }

    /** Byte ranges of each section of the legacy stories260K file, in file order. */
    private static int[][] legacySections(Llama2cCheckpoint.Config k) {
        int L = k.nLayers(), d = k.dim(), h = k.hiddenDim(), kv = k.kvDim(), v = k.vocabSize();
        int[] sizes = {v * d, L * d, L * d * d, L * kv * d, L * kv * d, L * d * d, L * d, L * h * d, L * d * h, L * h * d, d,
                k.seqLen() * k.headDim() / 2, k.seqLen() * k.headDim() / 2};
        int[][] out = new int[sizes.length][];
        int pos = 28;
        for (int i = 0; i < sizes.length; i++) { out[i] = new int[] {pos, sizes[i] * 4}; pos += sizes[i] * 4; }
        return out;
    }

    @Test
    void readsVersion1TheSameAsLegacy(@TempDir Path dir) throws IOException {
        byte[] legacy = Files.readAllBytes(stories());
        Llama2cCheckpoint.Config k;
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories())) { k = c.config(); }
        int[][] s = legacySections(k);
        // v1 order: rms_att, rms_ffn, rms_final, token_embedding, wq, wk, wv, wo, w1, w2, w3 (no freq_cis)
        int[] order = {1, 6, 10, 0, 2, 3, 4, 5, 7, 8, 9};
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer hdr = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        hdr.putInt(Llama2cCheckpoint.MAGIC).putInt(1).putInt(k.dim()).putInt(k.hiddenDim()).putInt(k.nLayers())
                .putInt(k.nHeads()).putInt(k.nKvHeads()).putInt(k.vocabSize()).putInt(k.seqLen()).put((byte) 1);
        out.writeBytes(hdr.array());
        for (int i : order) out.write(legacy, s[i][0], s[i][1]);
        Path v1 = dir.resolve("v1.bin");
        Files.write(v1, out.toByteArray());
        try (Llama2cCheckpoint a = Llama2cCheckpoint.open(stories()); Llama2cCheckpoint b = Llama2cCheckpoint.open(v1)) {
            assertEquals(1, b.config().version());
            assertEquals(a.tensors().keySet(), b.tensors().keySet());
            for (String name : a.tensors().keySet()) assertBitwiseEqual(a.get(name), b.get(name), name);
        }

        // Version 2 (Q8_0) is refused with a message saying so.
        byte[] v2 = out.toByteArray().clone();
        ByteBuffer.wrap(v2).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 2);
        Path v2f = dir.resolve("v2.bin");
        Files.write(v2f, v2);
        IOException e = assertThrows(IOException.class, () -> Llama2cCheckpoint.open(v2f));
        assertTrue(e.getMessage().contains("v2.bin") && e.getMessage().contains("not supported"), e.getMessage());
    }

    @Test
    void untiedClassifierBecomesLmHead(@TempDir Path dir) throws IOException {
        byte[] legacy = Files.readAllBytes(stories());
        int vocab = 512, dim = 64;
        ByteBuffer b = ByteBuffer.allocate(legacy.length + vocab * dim * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.put(legacy);
        b.putInt(20, -vocab); // negative vocab size: the classifier follows the weights
        for (int i = 0; i < vocab * dim; i++) b.putFloat(legacy.length + 4 * i, i * 0.5f);
        Path f = dir.resolve("untied.bin");
        Files.write(f, b.array());
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(f)) {
            assertFalse(c.config().sharedClassifier());
            assertEquals(false, c.hfConfig().get("tie_word_embeddings"));
            Tensor head = c.get("lm_head.weight");
            assertArrayEquals(new int[] {vocab, dim}, head.shape());
            assertEquals(3 * 0.5f, head.get(0, 3));
            assertEquals((dim + 1) * 0.5f, head.get(1, 1));
        }
    }

    @Test
    void corruptFilesGiveOneLineNamingTheFile(@TempDir Path dir) throws IOException {
        byte[] legacy = Files.readAllBytes(stories());
        Path truncated = dir.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(legacy, 28 + 512 * 64 * 4 + 5 * 64 * 4 + 100));
        IOException e = assertThrows(IOException.class, () -> Llama2cCheckpoint.open(truncated));
        assertOneLine(e, truncated);
        assertTrue(e.getMessage().contains("truncated at wq"), e.getMessage());

        Path tiny = dir.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        assertOneLine(assertThrows(IOException.class, () -> Llama2cCheckpoint.open(tiny)), tiny);

        Path garbage = dir.resolve("garbage.bin");
        byte[] g = legacy.clone();
        ByteBuffer.wrap(g).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 1_000_000_000);
        Files.write(garbage, g);
        e = assertThrows(IOException.class, () -> Llama2cCheckpoint.open(garbage));
        assertOneLine(e, garbage);
        assertTrue(e.getMessage().contains("implausible"), e.getMessage());

        Path trailing = dir.resolve("trailing.bin");
        Files.write(trailing, Arrays.copyOf(legacy, legacy.length + 8));
        assertOneLine(assertThrows(IOException.class, () -> Llama2cCheckpoint.open(trailing)), trailing);

        Path absent = dir.resolve("absent.bin");
        assertOneLine(assertThrows(IOException.class, () -> Llama2cCheckpoint.open(absent)), absent);
    }

    private static void assertOneLine(IOException e, Path file) {
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void ropePermutationMovesInterleavedPairsToHalves() {
        // One head of size 4, rows r0..r3 (interleaved pairs (r0,r1), (r2,r3)) -> halves order r0, r2, r1, r3.
        Tensor w = Tensor.of(new float[] {0, 0, 1, 1, 2, 2, 3, 3}, 4, 2);
        Tensor p = Llama2cCheckpoint.permuteRope(w, 1);
        assertArrayEquals(new float[] {0, 0, 2, 2, 1, 1, 3, 3}, p.toFloatArray());
    }
}
