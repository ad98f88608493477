package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.adapters.LoraModel;
import io.peft4j.io.Safetensors;
import io.peft4j.merge.AdapterCombination;
import io.peft4j.models.Model;
import io.peft4j.models.ModelWriter;
import io.peft4j.models.Models;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j merge}: one adapter merged into the base, written as a Hugging Face model directory; or, with
 * several weighted adapters and {@code --combination}, one combined adapter in PEFT's format.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Merge an adapter into the base model and write an HF model directory; with several "
                + "--adapter/--weight pairs and --combination, write one combined PEFT adapter instead.")
public final class MergeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "PATH", description = "HF model directory or llama2.c .bin")
    Path model;
    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT adapter folder (repeatable)")
    List<Path> adapters = new ArrayList<>();
    @Option(names = "--weight", paramLabel = "W", description = "weight of each --adapter, in order (combinations)")
    List<Double> weights = new ArrayList<>();
    @Option(names = "--combination", paramLabel = "KIND", description = "linear | cat | svd: combine the adapters into one")
    String combination;
    @Option(names = "--svd-rank", defaultValue = "0", description = "rank of an svd combination (default: the largest source rank)")
    int svdRank;
    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    @Override
    public Integer call() throws Exception {
        try (Model m = Models.load(model)) {
            LoraModel lm = new LoraModel(m, 0);
            List<String> names = new ArrayList<>();
            for (int i = 0; i < adapters.size(); i++) {
                String name = "adapter" + i;
                lm.load(adapters.get(i), name, w -> System.err.println("warning: " + w));
                names.add(name);
            }
            if (combination != null) {
                List<Double> w = weights.isEmpty() ? java.util.Collections.nCopies(names.size(), 1.0) : weights;
                AdapterCombination.combine(lm, names, w, AdapterCombination.Kind.parse(combination), "default", svdRank);
                lm.save(out, "default");
                System.err.println("wrote the " + combination + " combination of " + names.size() + " adapters to " + out);
                return 0;
            }
            if (adapters.size() != 1) throw new IllegalArgumentException("merging into the base takes one --adapter (or give --combination)");
            lm.mergeAndUnload();
            ModelWriter.write(m, out);
            System.err.println("wrote the merged model to " + out);
        }
        return 0;
    }

}
