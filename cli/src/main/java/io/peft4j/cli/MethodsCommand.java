package io.peft4j.cli;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.MethodOption;
import io.peft4j.adapters.Methods;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** {@code peft4j methods}: every adapter method with its paper and options. */
@Command(name = "methods", mixinStandardHelpOptions = true,
        description = "List the adapter methods (for train/compare --method) with their papers and --opt options.")
public final class MethodsCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        for (AdapterMethod m : Methods.all()) {
            System.out.printf("%-10s %s%s%n", m.name(), m.summary(), m.needsCalibration() ? " [calibrates on the training data]" : "");
            System.out.printf("%-10s paper: %s%n", "", m.paper());
            for (MethodOption o : m.options())
                System.out.printf("%-10s   --opt %s=%s  %s%n", "", o.key(), o.defaultValue(), o.description());
        }
        return 0;
    }
}
