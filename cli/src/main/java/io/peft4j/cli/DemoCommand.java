package io.peft4j.cli;

import io.peft4j.demo.Demo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code peft4j demo}: the embedded default; nothing to download or prepare. */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Pretrain a tiny Llama on a synthetic corpus, teach it 24 new facts with LoRA (base frozen), "
                + "and print before/after loss, exact-match accuracy and a sample; a few minutes on 2 cores.")
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--out", defaultValue = "peft4j-demo", description = "output folder (default ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--seed", defaultValue = "7")
    long seed;
    @Option(names = "--pretrain-steps", defaultValue = "400")
    int pretrainSteps;
    @Option(names = "--finetune-steps", defaultValue = "150")
    int finetuneSteps;

    @Override
    public Integer call() throws Exception {
        Demo.run(new Demo.Options(out, seed, pretrainSteps, finetuneSteps, System.err));
        return 0;
    }
}
