package io.peft4j.cli;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.train.Comparison;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.TrainingOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code peft4j compare}: several methods trained on the same data, steps and budget, over several seeds. */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Train several adapter methods on the same data with the same steps and rank, over several seeds; "
                + "writes comparison.md / comparison.json (held-out loss at fixed steps, trainables, tokens/s, peak heap) "
                + "and comparison.png (loss curves) into --out.")
public final class CompareCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE") Path data;
    @Option(names = "--eval-data", paramLabel = "FILE", description = "held-out data (default: --eval-split of --data)") Path evalData;
    @Option(names = "--eval-split", defaultValue = "0.1", description = "fraction held out from the END of --data (default ${DEFAULT-VALUE})") double evalSplit;
    @Option(names = "--format", defaultValue = "text", description = "text | completion | chat (default ${DEFAULT-VALUE})") String format;
    @Option(names = "--methods", required = true, split = ",", paramLabel = "M1,M2", description = "methods to compare (see `peft4j methods`)")
    List<String> methods;
    @Option(names = "--opt", paramLabel = "METHOD:KEY=VALUE", description = "an option of one method (repeatable), e.g. eva:rho=2")
    List<String> options = new ArrayList<>();
    @Option(names = "--r", defaultValue = "8") int r;
    @Option(names = "--alpha", defaultValue = "16") double alpha;
    @Option(names = "--dropout", defaultValue = "0") double dropout;
    @Option(names = "--targets", defaultValue = "q_proj,v_proj", description = "comma-separated module names, or all-linear") String targets;
    @Option(names = "--steps", required = true) int steps;
    @Option(names = "--lr", defaultValue = "2e-4") double lr;
    @Option(names = "--schedule", defaultValue = "constant") String schedule;
    @Option(names = "--batch", defaultValue = "4") int batch;
    @Option(names = "--seq-len", defaultValue = "256") int seqLen;
    @Option(names = "--seeds", defaultValue = "3", description = "runs per method, seeds 42, 43, ... (default ${DEFAULT-VALUE})") int seeds;
    @Option(names = "--eval-every", defaultValue = "0", description = "held-out loss every N steps (default: steps/4)") int evalEvery;
    @Option(names = "--max-eval-batches", defaultValue = "0", description = "cap on evaluation batches (0 = all)") int maxEvalBatches;
    @Option(names = "--out", required = true, paramLabel = "DIR") Path out;

    @Override
    public Integer call() throws Exception {
        Map<String, Map<String, String>> given = new LinkedHashMap<>();
        for (String o : options) {
            int colon = o.indexOf(':'), eq = o.indexOf('=');
            if (colon <= 0 || eq < colon) throw new IllegalArgumentException("--opt '" + o + "' is not METHOD:KEY=VALUE");
            String m = o.substring(0, colon);
            if (!methods.contains(m)) throw new IllegalArgumentException("--opt '" + o + "': method " + m + " is not in --methods");
            given.computeIfAbsent(m, k -> new LinkedHashMap<>()).put(o.substring(colon + 1, eq), o.substring(eq + 1));
        }
        List<MethodConfig> mcs = new ArrayList<>();
        for (String m : methods) mcs.add(MethodConfig.of(m.trim(), given.getOrDefault(m, Map.of())));

        LoraConfig.Builder cb = LoraConfig.builder().r(r).alpha(alpha).dropout(dropout).baseModel(modelOptions.model.toString()).inferenceMode(false);
        if (targets.equalsIgnoreCase(LoraConfig.ALL_LINEAR)) cb.targetRegex(LoraConfig.ALL_LINEAR);
        else cb.targets(Arrays.stream(targets.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList());
        int every = evalEvery > 0 ? evalEvery : Math.max(1, steps / 4);
        TrainingOptions opt = new TrainingOptions(steps, 1, lr, 0, LrSchedule.parse(schedule), 0, 1.0, every, 0,
                Math.max(1, steps / 20), 0, maxEvalBatches, 42, false);
        List<Long> seedList = new ArrayList<>();
        for (int i = 0; i < seeds; i++) seedList.add(42L + i);

        DataFormat fmt = DataFormat.byName(format);
        if (fmt == DataFormat.CLASSIFICATION) throw new IllegalArgumentException("compare runs language-modelling formats (text, completion, chat)");
        try (Tokenizer tok = modelOptions.loadTokenizer()) {
            Dataset.Split split = DataLoader.loadSplit(data, evalData, evalData == null ? evalSplit : 0, DataConfig.builder(fmt, seqLen).build(), tok);
            Files.createDirectories(out);
            Comparison.Spec spec = new Comparison.Spec(mcs, cb.build(), opt, batch, seedList, DataLoader.defaultPadId(tok));
            Comparison.run(modelOptions::loadCausalLM, split.train(), split.eval(), spec, out, System.err);
            System.out.print(Files.readString(out.resolve("comparison.md")));
            System.err.println("wrote comparison.md, comparison.json and comparison.png to " + out);
        }
        return 0;
    }
}
