package io.peft4j.cli;

import picocli.CommandLine.Command;

@Command(name = "gemm", mixinStandardHelpOptions = true, description = "(not yet implemented)")
public final class BenchGemmCommand implements Runnable {
    @Override
    public void run() { throw new UnsupportedOperationException("gemm is not implemented yet"); }
}
