package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.federated.FederatedConfig;
import io.peft4j.federated.FederatedSetup;
import io.peft4j.federated.FederatedTrainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j federated}: federated fine-tuning of an FFA-LoRA adapter (A frozen, B trained and averaged), optionally
 * with DP-SGD on the clients; clients run one after another in this process.
 */
@Command(name = "federated", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Federated FFA-LoRA (clients = shards of --data, FedAvg of B), optionally with DP-SGD; writes the adapter "
                + "(PEFT format), metrics.jsonl, federated_args.json and loss.png into --out.")
public final class FederatedCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "training data; the last --eval-split is held out")
    Path data;
    @Option(names = "--format", defaultValue = "text", description = "text | completion | chat (default ${DEFAULT-VALUE})")
    String format;
    @Option(names = "--eval-split", defaultValue = "0.1", description = "fraction held out from the end of --data (default ${DEFAULT-VALUE})")
    double evalSplit;
    @Option(names = "--max-train-examples", defaultValue = "0", description = "use only the first N training examples (0 = all)")
    int maxTrain;
    @Option(names = "--max-eval-examples", defaultValue = "0", description = "evaluate on the first N held-out examples (0 = all)")
    int maxEval;

    @Option(names = "--method", defaultValue = "ffa-lora", description = "ffa-lora (default), or lora to compare")
    String method;
    @Option(names = "--opt", paramLabel = "KEY=VALUE", description = "a method option (repeatable)")
    List<String> methodOptions = new ArrayList<>();
    @Option(names = "--r", defaultValue = "8", description = "rank (default ${DEFAULT-VALUE})")
    int r;
    @Option(names = "--alpha", defaultValue = "16", description = "LoRA alpha (default ${DEFAULT-VALUE})")
    double alpha;
    @Option(names = "--dropout", defaultValue = "0", description = "LoRA dropout (default ${DEFAULT-VALUE})")
    double dropout;
    @Option(names = "--targets", defaultValue = "all-linear", description = "comma-separated modules, or all-linear (default ${DEFAULT-VALUE})")
    String targets;

    @Option(names = "--clients", defaultValue = "4", description = "number of clients (default ${DEFAULT-VALUE})")
    int clients;
    @Option(names = "--rounds", defaultValue = "10", description = "server rounds (default ${DEFAULT-VALUE})")
    int rounds;
    @Option(names = "--local-steps", defaultValue = "10", description = "local steps per client per round (default ${DEFAULT-VALUE})")
    int localSteps;
    @Option(names = "--fraction", defaultValue = "1.0", description = "fraction of clients sampled per round (default ${DEFAULT-VALUE})")
    double fraction;
    @Option(names = "--split", defaultValue = "iid", description = "iid | dirichlet (over contiguous text chunks, or labels) (default ${DEFAULT-VALUE})")
    String split;
    @Option(names = "--dirichlet-alpha", defaultValue = "0.5", description = "Dirichlet concentration of --split dirichlet (default ${DEFAULT-VALUE})")
    double dirichletAlpha;
    @Option(names = "--lr", defaultValue = "5e-3", description = "local AdamW learning rate (default ${DEFAULT-VALUE})")
    double lr;
    @Option(names = "--weight-decay", defaultValue = "0")
    double weightDecay;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "local gradient clipping without DP, 0 = off (default ${DEFAULT-VALUE})")
    double maxGradNorm;
    @Option(names = "--batch", defaultValue = "8", description = "local batch size (DP: expected Poisson batch) (default ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--seq-len", defaultValue = "128", description = "sequence length (default ${DEFAULT-VALUE})")
    int seqLen;
    @Option(names = "--seed", defaultValue = "42")
    long seed;
    @Option(names = "--max-eval-batches", defaultValue = "0", description = "cap on held-out batches per evaluation (0 = all)")
    int maxEvalBatches;

    @Option(names = "--dp", description = "DP-SGD on the clients (per-example clipping + Gaussian noise on B)")
    boolean dp;
    @Option(names = "--clip", defaultValue = "1.0", description = "DP per-example clip norm C (default ${DEFAULT-VALUE})")
    double clip;
    @Option(names = "--noise", paramLabel = "SIGMA", description = "DP noise multiplier (or give --target-epsilon)")
    Double noise;
    @Option(names = "--target-epsilon", paramLabel = "EPS", description = "DP budget at the end of the run; the noise is found to meet it")
    Double targetEpsilon;
    @Option(names = "--delta", defaultValue = "1e-5", description = "DP delta (default ${DEFAULT-VALUE})")
    double delta;

    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    /** The federated settings the options describe. */
    FederatedConfig config() {
        FederatedConfig.Split s = switch (split.toLowerCase(Locale.ROOT)) {
            case "iid" -> FederatedConfig.Split.IID;
            case "dirichlet" -> FederatedConfig.Split.DIRICHLET;
            default -> throw new IllegalArgumentException("--split must be iid or dirichlet, got '" + split + "'");
        };
        if (!dp && (noise != null || targetEpsilon != null)) throw new IllegalArgumentException("--noise / --target-epsilon need --dp");
        if (dp && (noise == null) == (targetEpsilon == null)) throw new IllegalArgumentException("--dp needs exactly one of --noise or --target-epsilon");
        return new FederatedConfig(clients, rounds, localSteps, fraction, lr, weightDecay, maxGradNorm, batch, seqLen, seed, s, dirichletAlpha,
                dp, clip, noise != null ? noise : Double.NaN, targetEpsilon != null ? targetEpsilon : Double.NaN, delta, maxEvalBatches);
    }

    @Override
    public Integer call() throws Exception {
        FederatedConfig cfg = config();
        MethodConfig mc = MethodConfig.parse(method, methodOptions);
        Path tok = modelOptions.tokenizer != null ? modelOptions.tokenizer : ModelOptions.findTokenizer(modelOptions.model);
        FederatedSetup setup = new FederatedSetup(modelOptions.model.toString(), tok.toString(), data.toString(), format, evalSplit, maxTrain,
                maxEval, method, mc.options(), r, alpha, dropout, targets, cfg);
        try (FederatedSetup.Loaded l = setup.load()) {
            int[] sizes = l.shards().stream().mapToInt(d -> d.size()).toArray();
            System.err.printf(Locale.ROOT, "federated %s: %d clients (shard sizes %s), %d per round, %d rounds x %d local steps; %,d trainable parameters per client%n",
                    method, clients, java.util.Arrays.toString(sizes), cfg.clientsPerRound(), rounds, localSteps,
                    l.client().adapters().trainableCount(l.client().adapter()));
            Files.createDirectories(out);
            writeArgs(setup);
            FederatedTrainer.Result res = new FederatedTrainer(cfg, l.client(), l.shards(), l.heldOut(),
                    FederatedTrainer.inProcess(l.client(), l.shards(), cfg), out, System.err).run();
            FederatedTrainer.RoundReport last = res.rounds().getLast();
            System.err.printf(Locale.ROOT, "done: %d rounds in %.1f s; adapter saved in %s%n", rounds, res.seconds(), out);
            System.out.printf(Locale.ROOT, "held-out loss %.4f -> %.4f%s%n", res.baseEvalLoss(), last.evalLoss(),
                    cfg.dp() ? String.format(Locale.ROOT, ", epsilon %.3f at delta %.0e (noise multiplier %.4f)", last.epsilon(), cfg.delta(), res.sigma()) : "");
        }
        return 0;
    }

    private void writeArgs(FederatedSetup setup) throws java.io.IOException {
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("setup", setup);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("federated_args.json").toFile(), args);
    }
}
