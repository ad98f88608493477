package io.peft4j.cli;

import picocli.CommandLine.Command;

@Command(name = "convert", mixinStandardHelpOptions = true, description = "(not yet implemented)")
public final class ConvertCommand implements Runnable {
    @Override
    public void run() { throw new UnsupportedOperationException("convert is not implemented yet"); }
}
