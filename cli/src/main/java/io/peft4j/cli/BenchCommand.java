package io.peft4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Benchmarks; each prints a human table, or one JSON object on stdout with --json. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Run a benchmark.",
        subcommands = {BenchGemmCommand.class, BenchGenerateCommand.class, BenchTrainCommand.class})
public final class BenchCommand implements Runnable {
    @Override
    public void run() { new CommandLine(this).usage(System.out); }
}
