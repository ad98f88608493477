package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.data.Example;
import io.peft4j.kernels.Parallel;
import io.peft4j.models.CausalLM;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code peft4j bench train}: LoRA training throughput (tokens/s) and peak resident memory on named random-weight
 * Llama configs, the same shapes as {@code tools/bench_train_torch.py} runs in PyTorch.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = "LoRA training tokens/s and peak memory on a random-weight Llama: tiny (~5M) or small (~60M: d 512, "
                + "8 layers, ffn 1408, 8 heads, vocab 32000); LoRA r=16 on q,k,v,o,gate,up,down; seq 256, batch 4.")
public final class BenchTrainCommand implements Callable<Integer> {
    @Parameters(index = "0", defaultValue = "small", paramLabel = "CONFIG", description = "tiny or small (default ${DEFAULT-VALUE})")
    String config;
    @Option(names = "--seq-len", defaultValue = "256") int seqLen;
    @Option(names = "--batch", defaultValue = "4") int batch;
    @Option(names = "--r", defaultValue = "16") int r;
    @Option(names = "--steps", defaultValue = "6", description = "timed optimizer steps (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--warmup", defaultValue = "2", description = "untimed steps first (default ${DEFAULT-VALUE})") int warmup;
    @Option(names = "--json", description = "one JSON object on stdout") boolean json;

    /** The benchmark's model shapes; tools/bench_train_torch.py defines the same. */
    static ModelConfig benchConfig(String name) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("LlamaForCausalLM"));
        m.put("model_type", "llama");
        switch (name) {
            case "tiny" -> { m.put("vocab_size", 4000); m.put("hidden_size", 256); m.put("intermediate_size", 688);
                m.put("num_hidden_layers", 4); m.put("num_attention_heads", 4); m.put("num_key_value_heads", 4); }
            case "small" -> { m.put("vocab_size", 32000); m.put("hidden_size", 512); m.put("intermediate_size", 1408);
                m.put("num_hidden_layers", 8); m.put("num_attention_heads", 8); m.put("num_key_value_heads", 8); }
            default -> throw new IllegalArgumentException("unknown bench config '" + name + "' (tiny, small)");
        }
        m.put("max_position_embeddings", 2048);
        m.put("rms_norm_eps", 1e-5);
        m.put("rope_theta", 10000.0);
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", false);
        return ModelConfig.fromMap(m, "bench:" + name);
    }

    @Override
    public Integer call() throws Exception {
        ModelConfig cfg = benchConfig(config);
        CausalLM model = RandomModels.causalLM(cfg, DType.F32, 1);
        LoraModel lm = new LoraModel(model, 1);
        lm.add("default", LoraConfig.builder().r(r).alpha(2 * r).dropout(0.05)
                .targets("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj").build());
        lm.train(true);
        AdamW opt = AdamW.withDefaults(lm.parameters("default"), 0.0);
        long params = model.parameters().values().stream().mapToLong(Tensor::numel).sum();
        SplittableRandom rng = new SplittableRandom(3);
        int n = batch * seqLen;
        int[] ids = new int[n], labels = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.nextInt(cfg.vocabSize);
        for (int i = 0; i < n; i++) labels[i] = (i + 1) % seqLen == 0 ? Example.IGNORE : ids[i + 1];
        double best = Double.MAX_VALUE, total = 0;
        for (int s = 0; s < warmup + steps; s++) {
            long t0 = System.nanoTime();
            opt.zeroGrad();
            try (Tape tape = Tape.record()) {
                Tensor loss = NnOps.crossEntropy(model.forward(ids, batch, seqLen, null), labels, Example.IGNORE);
                tape.backward(loss);
            }
            opt.step(1e-4);
            double sec = (System.nanoTime() - t0) / 1e9;
            if (s >= warmup) { best = Math.min(best, sec); total += sec; }
            System.err.printf(Locale.ROOT, "step %d: %.3f s (%.0f tok/s)%n", s + 1, sec, n / sec);
        }
        double tps = n * steps / total;
        long peakRss = peakRssBytes();
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("config", config);
            o.put("params", params);
            o.put("trainable", lm.trainableCount("default"));
            o.put("seq_len", seqLen);
            o.put("batch", batch);
            o.put("threads", Parallel.threads());
            o.put("tokens_per_s", tps);
            o.put("best_step_tokens_per_s", n / best);
            o.put("peak_rss_mb", peakRss / 1048576.0);
            System.out.println(new ObjectMapper().writeValueAsString(o));
        } else {
            System.out.printf(Locale.ROOT, "%s: %,d params, %,d trainable; %.0f tokens/s (mean of %d steps, best %.0f); peak RSS %.0f MB%n",
                    config, params, lm.trainableCount("default"), tps, steps, n / best, peakRss / 1048576.0);
        }
        return 0;
    }

    /** Peak resident set size (VmHWM) of this process, or -1 where /proc is unavailable. */
    static long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (Exception e) {
            // not Linux
        }
        return -1;
    }
}
