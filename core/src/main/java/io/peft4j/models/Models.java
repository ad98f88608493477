package io.peft4j.models;

import io.peft4j.io.ModelWeights;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/** Loads models: a Hugging Face directory ({@code config.json} + safetensors) or a llama2.c {@code .bin} checkpoint. */
public final class Models {
    private Models() {}

    /**
     * Opens {@code path}: an HF model directory, a {@code .safetensors} file with {@code config.json} beside it, or
     * a llama2.c {@code .bin}. Weights stay memory-mapped in their stored dtype until the model is closed.
     */
    public static Model load(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            Path cfg = path.resolve("config.json");
            if (!Files.isRegularFile(cfg)) throw new NoSuchFileException(path + ": not a model directory (no config.json)");
            ModelConfig config = ModelConfig.parse(cfg);
            return build(config, WeightSource.of(ModelWeights.open(path)));
        }
        if (!Files.isRegularFile(path)) throw new NoSuchFileException(path + ": no such model file or directory");
        String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json")) {
            Path cfg = path.toAbsolutePath().getParent().resolve("config.json");
            if (!Files.isRegularFile(cfg)) throw new NoSuchFileException(path + ": no config.json next to the weights file");
            return build(ModelConfig.parse(cfg), WeightSource.of(ModelWeights.open(path)));
        }
        if (name.endsWith(".bin")) return loadLlama2c(path);
        throw new IllegalArgumentException(path + ": not a model directory, .safetensors file or llama2.c .bin checkpoint");
    }

    /** {@link #load}, requiring a causal LM (for generation and LM training). */
    public static CausalLM loadCausalLM(Path path) throws IOException {
        Model m = load(path);
        if (m instanceof CausalLM lm) return lm;
        m.close();
        throw new IllegalArgumentException(path + ": " + m.config().architecture.hfName + " is not a causal language model");
    }

    /** A llama2.c checkpoint through the Llama code path (its weights arrive in HF layout). */
    static Model loadLlama2c(Path file) throws IOException {
        Llama2cCheckpoint ckpt = Llama2cCheckpoint.open(file);
        try {
            ModelConfig config = ModelConfig.fromMap(ckpt.hfConfig(), file.toString());
            long size = Files.size(file);
            WeightSource mapped = WeightSource.ofMap(ckpt.tensors(), file.toString());
            WeightSource src = new WeightSource() {
                public String location() { return mapped.location(); }
                public java.util.Set<String> names() { return mapped.names(); }
                public io.peft4j.tensor.Tensor getOrNull(String n) { return mapped.getOrNull(n); }
                public long bytesOnDisk() { return size; }
                public void close() { ckpt.close(); }
            };
            return build(config, src);
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    /** Builds the architecture {@code config} names over {@code weights}; closes the weights if that fails. */
    public static Model build(ModelConfig config, WeightSource weights) {
        try {
            return switch (config.architecture) {
                case LLAMA, MISTRAL, QWEN2 -> new LlamaModel(config, weights);
                case GPT2 -> new Gpt2Model(config, weights);
                case BERT, BERT_SEQUENCE_CLASSIFICATION -> new BertModel(config, weights);
            };
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }
}
