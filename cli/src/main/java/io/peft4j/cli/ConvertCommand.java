package io.peft4j.cli;

import io.peft4j.models.Llama2cConverter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.UncheckedIOException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code peft4j convert}: a llama2.c checkpoint to a Hugging Face Llama directory. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Convert a llama2.c .bin checkpoint (v0 or v1) into a Hugging Face Llama directory: "
                + "config.json + model.safetensors (+ tokenizer.bin if given).")
public final class ConvertCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "FILE.bin", description = "llama2.c checkpoint")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "tok.bin", description = "llama2.c tokenizer.bin to copy into the output")
    Path tokenizer;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output directory (created if needed)")
    Path out;

    @Override
    public Integer call() {
        try {
            Llama2cConverter.convert(model, tokenizer, out);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
        System.err.println("converted " + model + " -> " + out.resolve("model.safetensors") + ", " + out.resolve("config.json")
                + (tokenizer != null ? ", " + out.resolve("tokenizer.bin") : ""));
        System.out.println(out);
        return 0;
    }
}
