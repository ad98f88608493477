package io.peft4j.cli;

import picocli.CommandLine.Command;

@Command(name = "generate", mixinStandardHelpOptions = true, description = "(not yet implemented)")
public final class BenchGenerateCommand implements Runnable {
    @Override
    public void run() { throw new UnsupportedOperationException("generate is not implemented yet"); }
}
