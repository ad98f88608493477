package io.peft4j.cli;

import picocli.CommandLine.Command;

@Command(name = "inspect", mixinStandardHelpOptions = true, description = "(not yet implemented)")
public final class InspectCommand implements Runnable {
    @Override
    public void run() { throw new UnsupportedOperationException("inspect is not implemented yet"); }
}
