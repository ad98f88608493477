package io.peft4j.cli;

import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.tokenizer.Tokenizers;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** {@code --model} / {@code --tokenizer}, shared by the commands that run a model; plus small CLI helpers. */
public final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "HF model directory (config.json + safetensors) or llama2.c .bin checkpoint")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "tokenizer.json / tokenizer.bin / a directory holding one (default: next to the model)")
    Path tokenizer;

    /** Tokenizer file names looked for beside the model, in order. */
    static final String[] TOKENIZER_NAMES = {"tokenizer.json", "tokenizer.bin"};

    CausalLM loadCausalLM() {
        try {
            return Models.loadCausalLM(model);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    /** The tokenizer given, or one found beside the model; the error says where it looked. */
    Tokenizer loadTokenizer() {
        Path p = tokenizer != null ? tokenizer : findTokenizer(model);
        try {
            return Tokenizers.load(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    static Path findTokenizer(Path model) {
        Path dir = Files.isDirectory(model) ? model : model.toAbsolutePath().getParent();
        for (String n : TOKENIZER_NAMES) {
            Path p = dir.resolve(n);
            if (Files.isRegularFile(p)) return p;
        }
        throw new UncheckedIOException(new NoSuchFileException(dir + ": no " + String.join(" or ", TOKENIZER_NAMES)
                + " next to the model; pass --tokenizer PATH"));
    }

    /** stdout as UTF-8 whatever the platform encoding (generated text is Unicode). */
    static PrintStream utf8Out() { return new PrintStream(System.out, true, StandardCharsets.UTF_8); }
}
