package io.peft4j.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/** Broken model directories fail with one line that names the file and the key or tensor at fault. */
class BadModelFilesTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path tmp;

    /** A copy of the llama_gqa fixture with its config edited. */
    Path withConfig(Consumer<ObjectNode> edit) throws Exception {
        Path src = GoldenModelsTest.fixture("llama_gqa");
        Path dir = Files.createTempDirectory(tmp, "m");
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        ObjectNode cfg = (ObjectNode) JSON.readTree(src.resolve("config.json").toFile());
        edit.accept(cfg);
        JSON.writeValue(dir.resolve("config.json").toFile(), cfg);
        return dir;
    }

    static String loadError(Path dir) {
        Exception e = assertThrows(Exception.class, () -> Models.load(dir).close());
        String msg = e.getMessage();
        assertNotNull(msg);
        assertFalse(msg.contains("\n"), "one line: " + msg);
        return msg;
    }

    @Test
    void unknownArchitectureListsSupportedOnes() throws Exception {
        String msg = loadError(withConfig(c -> c.putArray("architectures").add("FalconForCausalLM")));
        assertTrue(msg.contains("config.json") && msg.contains("FalconForCausalLM"), msg);
        for (Architecture a : Architecture.values()) assertTrue(msg.contains(a.hfName), "lists " + a.hfName + ": " + msg);
    }

    @Test
    void missingTensorIsNamed() throws Exception {
        String msg = loadError(withConfig(c -> c.put("num_hidden_layers", 3)));
        assertTrue(msg.contains("missing tensor 'model.layers.2.input_layernorm.weight'"), msg);

        // and a weights file that lacks a tensor outright
        Path dir = withConfig(c -> {});
        Map<String, Tensor> kept = new LinkedHashMap<>();
        try (SafetensorsFile f = Safetensors.open(dir.resolve("model.safetensors"))) {
            for (String n : f.names()) if (!n.equals("model.norm.weight")) kept.put(n, f.get(n).copyToF32());
        }
        Safetensors.write(dir.resolve("model.safetensors"), kept, Map.of("format", "pt"));
        msg = loadError(dir);
        assertTrue(msg.contains("missing tensor 'model.norm.weight'") && msg.contains(dir.toString()), msg);
    }

    @Test
    void shapeMismatchNamesTensorAndBothShapes() throws Exception {
        String msg = loadError(withConfig(c -> c.put("intermediate_size", 72)));
        assertTrue(msg.contains("'model.layers.0.mlp.gate_proj.weight'") && msg.contains("[71, 48]") && msg.contains("[72, 48]"), msg);
    }

    @Test
    void missingOrInvalidRequiredKeyIsNamed() throws Exception {
        String msg = loadError(withConfig(c -> c.remove("hidden_size")));
        assertTrue(msg.contains("config.json") && msg.contains("missing required key 'hidden_size'"), msg);
        msg = loadError(withConfig(c -> c.put("num_attention_heads", "six")));
        assertTrue(msg.contains("'num_attention_heads'") && msg.contains("positive integer"), msg);
        msg = loadError(withConfig(c -> c.put("num_key_value_heads", 4)));
        assertTrue(msg.contains("not a multiple of num_key_value_heads"), msg);
        msg = loadError(withConfig(c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0)));
        assertTrue(msg.contains("rope_scaling type 'yarn'"), msg);
    }

    @Test
    void notAModelDirectory() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        String msg = loadError(empty);
        assertTrue(msg.contains("config.json"), msg);
    }

    @Test
    void bertIsNotACausalLm() {
        Exception e = assertThrows(IllegalArgumentException.class, () -> Models.loadCausalLM(GoldenModelsTest.fixture("bert_cls")));
        assertTrue(e.getMessage().contains("BertForSequenceClassification is not a causal language model"), e.getMessage());
    }
}
