package io.peft4j.federated;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything a process needs to rebuild a federated run's model, adapter and client shards from files: the model and
 * data paths, the adapter's settings and the {@link FederatedConfig}. Serializable and deterministic: the driver and
 * every Spark executor that {@link #load}s the same setup get the same shards and the same frozen A (drawn from
 * {@code config.seed()}), which is what makes their client updates interchangeable.
 *
 * @param model            HF model directory or llama2.c checkpoint
 * @param tokenizer        tokenizer file or directory, or null to look beside the model
 * @param data             training data file (the held-out part is its last {@code evalFraction})
 * @param format           data format name ({@link DataFormat#byName})
 * @param evalFraction     fraction held out from the end of {@code data}
 * @param maxTrainExamples cap on the training examples used (the first ones; 0 = all)
 * @param maxEvalExamples  cap on the held-out examples (the first ones; 0 = all)
 * @param method           adapter method ({@code ffa-lora}, or {@code lora} for comparison)
 * @param methodOptions    the method's options
 * @param r                rank
 * @param alpha            LoRA alpha
 * @param dropout          LoRA dropout
 * @param targets          comma-separated target modules, or {@code all-linear}
 * @param config           the federated settings
 */
public record FederatedSetup(String model, String tokenizer, String data, String format, double evalFraction, int maxTrainExamples,
                             int maxEvalExamples, String method, Map<String, String> methodOptions, int r, double alpha, double dropout,
                             String targets, FederatedConfig config) implements Serializable {
    public FederatedSetup {
        methodOptions = new LinkedHashMap<>(methodOptions == null ? Map.of() : methodOptions);   // a serializable copy
    }

    /** A loaded setup: the model with the adapter attached (as a client), the shards and the held-out set. */
    public record Loaded(CausalLM model, FederatedClient client, List<Dataset> shards, Dataset heldOut) implements AutoCloseable {
        @Override public void close() { model.close(); }
    }

    public LoraConfig loraConfig() {
        LoraConfig.Builder b = LoraConfig.builder().r(r).alpha(alpha).dropout(dropout).baseModel(model).inferenceMode(false);
        if (targets.equalsIgnoreCase(LoraConfig.ALL_LINEAR)) b.targetRegex(LoraConfig.ALL_LINEAR);
        else b.targets(Arrays.stream(targets.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList());
        return b.build();
    }

    public Loaded load() throws IOException {
        CausalLM m = Models.loadCausalLM(Path.of(model));
        try {
            Path tokPath = tokenizer != null ? Path.of(tokenizer) : besideModel(Path.of(model));
            Dataset.Split split;
            int padId;
            try (Tokenizer tok = Tokenizers.load(tokPath)) {
                DataConfig dc = DataConfig.builder(DataFormat.byName(format), config.seqLen()).build();
                split = DataLoader.loadSplit(Path.of(data), null, evalFraction, dc, tok);
                padId = DataLoader.defaultPadId(tok);
            }
            Dataset train = maxTrainExamples > 0 && split.train().size() > maxTrainExamples ? split.train().slice(0, maxTrainExamples) : split.train();
            Dataset eval = split.eval() == null || split.eval().isEmpty() ? null
                    : maxEvalExamples > 0 && split.eval().size() > maxEvalExamples ? split.eval().slice(0, maxEvalExamples) : split.eval();
            LoraModel lm = new LoraModel(m, config.seed());
            lm.add(LoraModel.DEFAULT, loraConfig(), MethodConfig.of(method, methodOptions), null, null);
            FederatedClient client = new FederatedClient(m, lm, LoraModel.DEFAULT, padId);
            return new Loaded(m, client, Shards.split(train, config), eval);
        } catch (IOException | RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static Path besideModel(Path model) throws IOException {
        Path dir = Files.isDirectory(model) ? model : model.toAbsolutePath().getParent();
        for (String n : new String[] {"tokenizer.json", "tokenizer.bin", "tok512.bin"}) if (Files.isRegularFile(dir.resolve(n))) return dir.resolve(n);
        throw new IOException(dir + ": no tokenizer.json or tokenizer.bin next to the model; give the tokenizer path");
    }
}
