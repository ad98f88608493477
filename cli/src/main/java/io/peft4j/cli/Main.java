package io.peft4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code peft4j} command line. Results go to stdout, logs and progress to stderr. */
@Command(name = "peft4j", mixinStandardHelpOptions = true, version = "peft4j 0.1.0",
        description = "Parameter-efficient fine-tuning for the JVM.",
        subcommands = {
                GenerateCommand.class,
                ForwardCommand.class,
                InspectCommand.class,
                ConvertCommand.class,
                TrainCommand.class,
                FederatedCommand.class,
                ForgetCommand.class,
                EvalCommand.class,
                MergeCommand.class,
                ExportCommand.class,
                MethodsCommand.class,
                CompareCommand.class,
                DemoCommand.class,
                BenchCommand.class,
                CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {
    @Override
    public void run() { new CommandLine(this).usage(System.out); }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code; errors are one clear line on stderr (stack trace with -Dpeft4j.debug). */
    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (Boolean.getBoolean("peft4j.debug")) ex.printStackTrace();
            cmd.getErr().println("error: " + (ex.getMessage() != null ? ex.getMessage() : ex.toString()));
            return 1;
        });
        return cl.execute(args);
    }
}
