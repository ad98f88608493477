package io.peft4j.cli;

import picocli.CommandLine.Command;

@Command(name = "forward", mixinStandardHelpOptions = true, description = "(not yet implemented)")
public final class ForwardCommand implements Runnable {
    @Override
    public void run() { throw new UnsupportedOperationException("forward is not implemented yet"); }
}
