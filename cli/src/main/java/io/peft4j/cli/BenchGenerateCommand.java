package io.peft4j.cli;

import io.peft4j.kernels.Parallel;
import io.peft4j.models.CausalLM;
import io.peft4j.models.KvCache;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.Models;
import io.peft4j.models.RandomModels;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code peft4j bench generate}: prefill and decode throughput of a model (batch 1, greedy), and how close decode
 * comes to the memory bandwidth: weight bytes streamed per second against a plain parallel memory copy timed in
 * the same process.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Prefill and decode tokens/s (batch 1), decode weight bandwidth vs a memory copy measured in the same run.")
public final class BenchGenerateCommand implements Callable<Integer> {
    static final class Source {
        @Option(names = "--model", paramLabel = "PATH", description = "HF model directory or llama2.c .bin") Path model;
        @Option(names = "--config", paramLabel = "NAME", description = "random-weight model: tiny or 100m (Llama, d 768, 12 layers, GQA 12/4, ffn 2048, vocab 32000)") String config;
    }

    @ArgGroup(exclusive = true, multiplicity = "1") Source source;

    @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "bf16", description = "weights of a --config model: bf16 or f32 (default ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--prompt-tokens", paramLabel = "N", defaultValue = "128", description = "prompt length (default ${DEFAULT-VALUE})")
    int promptTokens;

    @Option(names = "--new-tokens", paramLabel = "N", defaultValue = "128", description = "tokens decoded (default ${DEFAULT-VALUE})")
    int newTokens;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "3", description = "timed runs, best reported (default ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--json", description = "print one JSON object instead of a table")
    boolean json;

    @Override
    public Integer call() {
        if (promptTokens < 1 || newTokens < 1 || runs < 1) throw new IllegalArgumentException("--prompt-tokens, --new-tokens and --runs must be >= 1");
        String label;
        CausalLM model;
        long tLoad = System.nanoTime();
        if (source.model != null) {
            try { model = Models.loadCausalLM(source.model); } catch (IOException e) { throw new UncheckedIOException(e.getMessage(), e); }
            label = source.model.toString();
        } else {
            DType dt = switch (dtype.toLowerCase(Locale.ROOT)) {
                case "bf16" -> DType.BF16;
                case "f32" -> DType.F32;
                default -> throw new IllegalArgumentException("--dtype must be bf16 or f32, got '" + dtype + "'");
            };
            model = RandomModels.causalLM(RandomModels.namedConfig(source.config), dt, 42);
            label = "random:" + source.config + ":" + dt;
        }
        double loadS = (System.nanoTime() - tLoad) / 1e9;
        try (model) {
            ModelConfig c = model.config();
            if (promptTokens + newTokens > c.maxPositions)
                throw new IllegalArgumentException("prompt + new tokens = " + (promptTokens + newTokens) + " exceed the model's " + c.maxPositions + " positions");
            int[] prompt = new int[promptTokens];
            SplittableRandom rng = new SplittableRandom(7);
            for (int i = 0; i < prompt.length; i++) prompt[i] = rng.nextInt(c.vocabSize);

            long weightBytes = decodeWeightBytes(model);
            long copyBytes = Math.max(64L << 20, Math.min(weightBytes, 512L << 20));
            double copyBefore = memcpyBandwidth(copyBytes);
            System.err.println("bench generate: " + label + " (" + c.summary() + "), loaded in " + String.format("%.2f s", loadS)
                    + ", " + Parallel.threads() + " threads; warming up...");
            run(model, java.util.Arrays.copyOf(prompt, Math.min(32, promptTokens)), Math.min(16, newTokens));
            double bestPrefill = 0, bestDecode = 0;
            for (int r = 0; r < runs; r++) {
                double[] t = run(model, prompt, newTokens);
                bestPrefill = Math.max(bestPrefill, promptTokens / t[0]);
                bestDecode = Math.max(bestDecode, newTokens / t[1]);
                System.err.printf("run %d: prefill %.1f tok/s, decode %.2f tok/s%n", r + 1, promptTokens / t[0], newTokens / t[1]);
            }
            double weightBw = weightBytes * bestDecode;
            // the best of a measurement before and after the runs: other load on the machine only ever slows a copy
            double copyBw = Math.max(copyBefore, memcpyBandwidth(copyBytes));
            print(label, c, bestPrefill, bestDecode, weightBytes, weightBw, copyBw);
        }
        return 0;
    }

    /** One prefill + greedy decode; returns {prefill seconds, decode seconds}. */
    static double[] run(CausalLM model, int[] prompt, int newTokens) {
        int vocab = model.config().vocabSize;
        KvCache cache = model.newCache(1, prompt.length + newTokens);
        long t0 = System.nanoTime();
        Tensor h = model.hidden(prompt, 1, prompt.length, cache);
        Tensor logits = model.logits(CausalLM.rows(h, prompt.length - 1, prompt.length)).contiguous();
        long t1 = System.nanoTime();
        for (int i = 0; i < newTokens; i++) {
            int next = argmax(logits, vocab);
            logits = model.forward(new int[] {next}, 1, 1, cache).contiguous();
        }
        long t2 = System.nanoTime();
        return new double[] {(t1 - t0) / 1e9, (t2 - t1) / 1e9};
    }

    static int argmax(Tensor logits, int vocab) {
        float[] d = logits.data();
        int off = logits.dataOffset(), best = 0;
        for (int i = 1; i < vocab; i++) if (d[off + i] > d[off + best]) best = i;
        return best;
    }

    /** Bytes of every weight matrix a decode step reads (each linear layer once, LM head included; embeddings read one row). */
    static long decodeWeightBytes(CausalLM model) {
        IdentityHashMap<Tensor, Boolean> seen = new IdentityHashMap<>();
        long b = 0;
        for (Linear l : model.linears().values()) {
            Tensor w = l.weight();
            if (seen.put(w, Boolean.TRUE) == null) b += w.numel() * w.dtype().bytes;
        }
        return b;
    }

    /**
     * Bytes copied per second by a plain copy between two off-heap buffers, split over the kernel threads like
     * the decode GEMMs; best of several passes. (Each byte copied is read once and written once.)
     */
    static double memcpyBandwidth(long bytes) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = arena.allocate(bytes, 4096), b = arena.allocate(bytes, 4096);
            a.fill((byte) 1);
            b.fill((byte) 2);
            int chunks = Parallel.threads() * 16;
            long per = (bytes / chunks) & ~4095L;
            MemorySegment src = a.asReadOnly(), dst = b;
            double best = 0;
            for (int pass = 0; pass < 6; pass++) {
                long t0 = System.nanoTime();
                Parallel.forRange(0, chunks, 1, (from, to) -> {
                    for (int i = from; i < to; i++) {
                        long off = i * per, len = i == chunks - 1 ? bytes - off : per;
                        MemorySegment.copy(src, off, dst, off, len);
                    }
                });
                long t1 = System.nanoTime();
                best = Math.max(best, bytes / ((t1 - t0) / 1e9));
            }
            return best;
        }
    }

    private void print(String label, ModelConfig c, double prefill, double decode, long weightBytes, double weightBw, double copyBw) {
        PrintStream out = ModelOptions.utf8Out();
        if (json) {
            out.printf(Locale.ROOT, "{\"engine\": \"peft4j\", \"model\": \"%s\", \"params_config\": \"%s\", \"threads\": %d, \"prompt_tokens\": %d, \"new_tokens\": %d, "
                            + "\"prefill_tokens_per_s\": %.2f, \"decode_tokens_per_s\": %.3f, \"decode_weight_bytes_per_token\": %d, "
                            + "\"decode_weight_gb_per_s\": %.3f, \"memcpy_gb_per_s\": %.3f, \"weight_bw_over_memcpy\": %.3f, \"weight_bw_over_memcpy_traffic\": %.3f}%n",
                    label.replace("\\", "\\\\").replace("\"", "\\\""), c.summary().replace("\"", "'"), Parallel.threads(), promptTokens, newTokens,
                    prefill, decode, weightBytes, weightBw / 1e9, copyBw / 1e9, weightBw / copyBw, weightBw / (2 * copyBw));
        } else {
            out.println("model:            " + label);
            out.println("config:           " + c.summary());
            out.printf(Locale.ROOT, "threads:          %d%n", Parallel.threads());
            out.printf(Locale.ROOT, "prefill:          %.1f tokens/s (%d-token prompt, batch 1)%n", prefill, promptTokens);
            out.printf(Locale.ROOT, "decode:           %.2f tokens/s (%d tokens)%n", decode, newTokens);
            out.printf(Locale.ROOT, "weights/token:    %.1f MB%n", weightBytes / 1e6);
            out.printf(Locale.ROOT, "weight bandwidth: %.2f GB/s%n", weightBw / 1e9);
            out.printf(Locale.ROOT, "memcpy:           %.2f GB/s copied (same run, %d threads)%n", copyBw / 1e9, Parallel.threads());
            out.printf(Locale.ROOT, "ratio:            %.0f%% of the memcpy rate, %.0f%% of its read+write traffic%n", 100 * weightBw / copyBw, 50 * weightBw / copyBw);
        }
    }
}
