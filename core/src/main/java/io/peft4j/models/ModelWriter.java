package io.peft4j.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.io.Safetensors;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes a model as a Hugging Face directory: config.json and model.safetensors (current weights, e.g. after a merge). */
public final class ModelWriter {
    private ModelWriter() {}

    /**
     * Writes every parameter under its HF name, linear layers in their stored layout (GPT-2's Conv1D stays [in, out]).
     * Tokenizer files beside the source model are copied, so the folder is self-contained.
     */
    public static void write(Model m, Path out) throws IOException {
        Files.createDirectories(out);
        Map<String, Linear> linears = m.linears();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        boolean allF32 = true;
        for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
            String k = e.getKey();
            Tensor t = e.getValue();
            String module = k.substring(0, k.lastIndexOf('.'));
            Linear lin = linears.get(module);
            if (lin != null && k.endsWith(".weight")) t = lin.storedWeight();
            else if (lin != null && k.endsWith(".bias")) t = lin.bias();
            tensors.put(k, t);
            allF32 &= t.dtype() == io.peft4j.tensor.DType.F32;
        }
        Safetensors.write(out.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        ObjectNode cfg = (ObjectNode) m.config().raw.deepCopy();
        if (allF32) cfg.put("torch_dtype", "float32");
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("config.json").toFile(), cfg);
        Path src = m.config().source == null ? null : Path.of(m.config().source);
        Path dir = src == null || !Files.exists(src) ? null : Files.isDirectory(src) ? src : src.toAbsolutePath().getParent();
        if (dir != null && !dir.equals(out.toAbsolutePath()))
            for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.bin", "tokenizer.model"))
                if (Files.isRegularFile(dir.resolve(f))) Files.copy(dir.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
    }
}
