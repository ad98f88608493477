package io.peft4j.cli;

import io.peft4j.generate.GenerationConfig;
import io.peft4j.generate.Generator;
import io.peft4j.generate.Sampler;
import io.peft4j.models.CausalLM;
import io.peft4j.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code peft4j generate}: streams generated text to stdout (only the text); timings go to stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text from a prompt, streaming it to stdout. An empty prompt starts from BOS.")
public final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Mixin AdapterOptions adapterOptions;

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "", description = "prompt text (default: empty, start from BOS)")
    String prompt;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "256",
            description = "tokens to generate at most (default ${DEFAULT-VALUE}; from an empty prompt this equals llama2.c's -n steps)")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "1.0", description = "0 = greedy (default ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.9", description = "nucleus sampling mass, 1 = off (default ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "keep the K most likely tokens, 0 = off")
    int topK;

    @Option(names = "--seed", paramLabel = "S", description = "random seed (default: from the clock, printed on stderr)")
    Long seed;

    @Option(names = "--repetition-penalty", paramLabel = "R", defaultValue = "1.0", description = "HF repetition penalty, 1 = off")
    float repetitionPenalty;

    @Option(names = "--stop", paramLabel = "S", description = "stop before this string (repeatable)")
    List<String> stops = new ArrayList<>();

    @Option(names = "--sampler", paramLabel = "KIND", defaultValue = "hf",
            description = "hf (Hugging Face processors) or llama2c (run.c's sampler: same seed, same text as run.c)")
    String sampler;

    @Override
    public Integer call() {
        Sampler.Kind kind = switch (sampler) {
            case "hf" -> Sampler.Kind.HF;
            case "llama2c" -> Sampler.Kind.LLAMA2C;
            default -> throw new IllegalArgumentException("--sampler must be hf or llama2c, got '" + sampler + "'");
        };
        long s = seed != null ? seed : System.currentTimeMillis();
        GenerationConfig cfg = new GenerationConfig(maxTokens, temperature, topK, topP, repetitionPenalty, s, stops, true, true, kind);
        PrintStream out = ModelOptions.utf8Out();
        try (CausalLM model = modelOptions.loadCausalLM(); Tokenizer tok = modelOptions.loadTokenizer()) {
            adapterOptions.apply(model);
            if (seed == null && temperature > 0) System.err.println("seed " + s);
            Generator.Result r = new Generator(model, tok).generate(prompt, cfg, piece -> { out.print(piece); out.flush(); });
            out.println();
            out.flush();
            int p = r.promptIds().length, n = r.generatedIds().length;
            System.err.printf("prompt %d tokens: %.1f ms (%.1f tok/s); generated %d tokens: %.1f tok/s; stopped: %s%n",
                    p, r.prefillNanos() / 1e6, p * 1e9 / Math.max(1, r.prefillNanos()), n, r.decodeTokensPerSecond(),
                    r.stopReason().name().toLowerCase(java.util.Locale.ROOT));
        }
        return 0;
    }
}
