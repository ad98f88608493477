package io.peft4j.io;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.Assets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.peft4j.io.SafetensorsTest.assertOneLine;
import static org.junit.jupiter.api.Assertions.*;

class ModelWeightsTest {
    @TempDir Path dir;

    /** Writes a two-shard checkpoint with an HF-style index; returns every tensor written, by name. */
    private Map<String, Tensor> writeSharded(Path d) throws IOException {
        Map<String, Tensor> shard1 = new LinkedHashMap<>(), shard2 = new LinkedHashMap<>();
        shard1.put("model.embed_tokens.weight", Tensor.randn(1, 1f, 16, 4));
        shard1.put("model.layers.0.self_attn.q_proj.weight", SafetensorsTest.randomSegmentTensor(new SplittableRandom(2), DType.BF16, 4, 4));
        shard2.put("model.layers.1.self_attn.q_proj.weight", Tensor.randn(3, 1f, 4, 4));
        shard2.put("model.norm.weight", Tensor.full(1f, 4));
        shard2.put("lm_head.weight", Tensor.randn(4, 1f, 16, 4));
        Safetensors.write(d.resolve("model-00001-of-00002.safetensors"), shard1, Map.of("format", "pt"));
        Safetensors.write(d.resolve("model-00002-of-00002.safetensors"), shard2, Map.of("format", "pt"));
        StringBuilder json = new StringBuilder("{\"metadata\":{\"total_size\":1234},\"weight_map\":{");
        Map<String, Tensor> all = new LinkedHashMap<>();
        // index order differs from shard order on purpose: names() follows the index
        List<String> order = List.of("lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                "model.layers.1.self_attn.q_proj.weight", "model.norm.weight");
        for (String n : order) {
            String shard = shard1.containsKey(n) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
            json.append(all.isEmpty() ? "" : ",").append('"').append(n).append("\":\"").append(shard).append('"');
            all.put(n, shard1.containsKey(n) ? shard1.get(n) : shard2.get(n));
        }
        json.append("}}");
        Files.writeString(d.resolve(ModelWeights.INDEX_FILE), json);
        return all;
    }

    @Test
    void shardedDirectoryIsOneLookup() throws IOException {
        Map<String, Tensor> all = writeSharded(dir);
        try (ModelWeights w = ModelWeights.open(dir)) {
            assertEquals(new ArrayList<>(all.keySet()), new ArrayList<>(w.names()));
            assertEquals(2, w.files().size());
            for (Map.Entry<String, Tensor> e : all.entrySet()) {
                assertTrue(w.contains(e.getKey()));
                Tensor t = w.get(e.getKey());
                assertEquals(e.getValue().dtype(), t.dtype(), "BF16 stays BF16");
                assertArrayEquals(e.getValue().shape(), t.shape());
                assertArrayEquals(SafetensorsTest.bytesOf(e.getValue()), SafetensorsTest.bytesOf(t), e.getKey());
            }
            assertEquals("model-00002-of-00002.safetensors", w.fileOf("lm_head.weight").path().getFileName().toString());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.get("layers.0.mlp.up_proj.weight"));
            assertOneLine(e, "'layers.0.mlp.up_proj.weight'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
            IllegalArgumentException hint = assertThrows(IllegalArgumentException.class, () -> w.get("norm.weight"));
            assertOneLine(hint, "did you mean 'model.norm.weight'");
        }
    }

    @Test
    void singleFileWinsOverTheIndexAsTransformersDoes() throws IOException {
        writeSharded(dir);
        Safetensors.write(dir.resolve(ModelWeights.SINGLE_FILE), Map.of("only", Tensor.zeros(2)), null);
        try (ModelWeights w = ModelWeights.open(dir)) {
            assertEquals(List.of("only"), new ArrayList<>(w.names()));
        }
        // a file path opens that file alone
        try (ModelWeights w = ModelWeights.open(dir.resolve("model-00002-of-00002.safetensors"))) {
            assertEquals(3, w.names().size());
        }
    }

    @Test
    void missingShardNamesItAndATensorItHolds() throws IOException {
        writeSharded(dir);
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> ModelWeights.open(dir));
        assertOneLine(e, ModelWeights.INDEX_FILE, "shard model-00002-of-00002.safetensors", "3 tensors", "'lm_head.weight'", "missing");
    }

    @Test
    void indexPointingAtATensorTheShardLacks() throws IOException {
        writeSharded(dir);
        Path idx = dir.resolve(ModelWeights.INDEX_FILE);
        Files.writeString(idx, Files.readString(idx).replace("}}", ",\"model.extra\":\"model-00001-of-00002.safetensors\"}}"));
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> ModelWeights.open(dir));
        assertOneLine(e, ModelWeights.INDEX_FILE, "'model.extra'", "model-00001-of-00002.safetensors", "no such tensor");
    }

    @Test
    void malformedIndex() throws IOException {
        Files.writeString(dir.resolve(ModelWeights.INDEX_FILE), "{\"weight_map\": [}");
        assertOneLine(assertThrows(SafetensorsFormatException.class, () -> ModelWeights.open(dir)), ModelWeights.INDEX_FILE, "not valid JSON");
        Files.writeString(dir.resolve(ModelWeights.INDEX_FILE), "{\"metadata\": {}}");
        assertOneLine(assertThrows(SafetensorsFormatException.class, () -> ModelWeights.open(dir)), "no \"weight_map\"");
        Files.writeString(dir.resolve(ModelWeights.INDEX_FILE), "{\"weight_map\": {\"w\": \"../elsewhere.safetensors\"}}");
        assertOneLine(assertThrows(SafetensorsFormatException.class, () -> ModelWeights.open(dir)), "'w'", "outside the model directory");
    }

    @Test
    void pytorchPicklesAreRefusedWithAReason() throws IOException {
        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2});
        Files.writeString(dir.resolve("config.json"), "{}");
        IOException e = assertThrows(IOException.class, () -> ModelWeights.open(dir));
        assertOneLine(e, "pytorch_model.bin", "pickle", "does not read", "safetensors");
        IOException direct = assertThrows(IOException.class, () -> ModelWeights.open(dir.resolve("pytorch_model.bin")));
        assertOneLine(direct, "pytorch_model.bin", "pickle");
    }

    @Test
    void directoryWithoutWeights() throws IOException {
        IOException e = assertThrows(IOException.class, () -> ModelWeights.open(dir));
        assertOneLine(e, dir.toString(), ModelWeights.SINGLE_FILE, ModelWeights.INDEX_FILE);
        Safetensors.write(dir.resolve("adapter_model.safetensors"), Map.of("a", Tensor.zeros(1)), null);
        IOException hint = assertThrows(IOException.class, () -> ModelWeights.open(dir));
        assertOneLine(hint, "adapter_model.safetensors", "open that file directly");
        assertThrows(NoSuchFileException.class, () -> ModelWeights.open(dir.resolve("nope")));
    }

    @Test
    void closeUnmapsEveryShard() throws IOException {
        writeSharded(dir);
        ModelWeights w = ModelWeights.open(dir);
        Tensor a = w.get("model.embed_tokens.weight"), b = w.get("lm_head.weight");
        w.close();
        assertThrows(IllegalStateException.class, () -> a.getFlat(0));
        assertThrows(IllegalStateException.class, () -> b.getFlat(0));
    }

    @Test
    void opensTheStories260KModelDirectory() throws IOException {
        Path d = Assets.require("models/stories260K-hf");
        try (ModelWeights w = ModelWeights.open(d)) {
            assertEquals(47, w.names().size());
            assertArrayEquals(new int[] {512, 64}, w.get("model.embed_tokens.weight").shape());
            assertTrue(w.contains("model.layers.4.mlp.down_proj.weight"));
        }
    }
}
