package io.peft4j.cli;

import io.peft4j.adapters.LoraModel;
import io.peft4j.models.Model;
import io.peft4j.models.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code peft4j export}: an adapter of any LoRA-shaped method written as a standard PEFT LoRA for the unchanged base
 * (middle factors and scaling folded into B; a base rewrite undone by appending the initial factors negated).
 */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write an adapter of any method as a standard PEFT LoRA adapter for the unchanged base model.")
public final class ExportCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "PATH", description = "the base model the adapter was trained on")
    Path model;
    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "adapter folder (PEFT or peft4j method format)")
    Path adapter;
    @Option(names = "--format", defaultValue = "peft-lora", description = "peft-lora (default ${DEFAULT-VALUE})")
    String format;
    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (!format.equals("peft-lora")) throw new IllegalArgumentException("--format " + format + ": only peft-lora is supported");
        try (Model m = Models.load(model)) {
            LoraModel lm = new LoraModel(m, 0);
            lm.load(adapter, LoraModel.DEFAULT, w -> System.err.println("warning: " + w));
            LoraModel.PlainExport ex = lm.exportPlainLora(LoraModel.DEFAULT);
            ex.save(out);
            System.err.printf("exported %s adapter (%d modules, rank %d) as a plain PEFT LoRA to %s%n",
                    lm.method(LoraModel.DEFAULT).method(), lm.layers(LoraModel.DEFAULT).size(), ex.config().r(), out);
        }
        return 0;
    }
}
