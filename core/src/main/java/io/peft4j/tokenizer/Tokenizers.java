package io.peft4j.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the right {@link Tokenizer} for a file or a model directory. */
public final class Tokenizers {
    private Tokenizers() {}

    /**
     * {@code *.json} -> {@link HfTokenizer}; {@code *.bin} -> {@link Llama2cTokenizer}; a directory -> its
     * {@code tokenizer.json}, else its {@code tokenizer.bin}.
     */
    public static Tokenizer load(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve("tokenizer.json"))) return HfTokenizer.load(path.resolve("tokenizer.json"));
            if (Files.isRegularFile(path.resolve("tokenizer.bin"))) return Llama2cTokenizer.load(path.resolve("tokenizer.bin"));
            String hint = Files.isRegularFile(path.resolve("tokenizer.model"))
                    ? " (only a SentencePiece tokenizer.model, which is not supported: use the model's tokenizer.json)" : "";
            throw new IOException(path + ": no tokenizer.json or tokenizer.bin in this directory" + hint);
        }
        if (!Files.isRegularFile(path)) throw new IOException(path + ": tokenizer file not found");
        String name = path.getFileName().toString();
        if (name.endsWith(".json")) return HfTokenizer.load(path);
        if (name.endsWith(".bin")) return Llama2cTokenizer.load(path);
        throw new IOException(path + ": unknown tokenizer file type (expected tokenizer.json or a llama2.c tokenizer .bin)");
    }
}
