package io.peft4j.spark;

import io.peft4j.federated.FederatedClient;
import io.peft4j.federated.FederatedConfig;
import io.peft4j.federated.FederatedSetup;
import io.peft4j.federated.FederatedTrainer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Federated FFA-LoRA on Apache Spark: the server loop of {@link FederatedTrainer} on the driver, each round's sampled
 * clients an RDD of client ids mapped on the executors to their deltas by {@link FederatedClient#run}, collected and
 * averaged on the driver. The global trainables (B) go out as a broadcast variable; each executor JVM loads the model,
 * data and shards from the paths in the {@link FederatedSetup} once and keeps them (one loaded copy per concurrently
 * running task, since a loaded model is mutable scratch). Because a client's update is a pure function of (global B,
 * shard, round, seed), the result equals the in-process run's.
 *
 * <p>Run with {@code spark-submit --class io.peft4j.spark.SparkFederated peft4j-spark.jar --model ... --data ... --out ...}
 * (see {@link #main} for the options).
 */
public final class SparkFederated {
    private SparkFederated() {}

    /** Per-executor-JVM pool of loaded setups (model + adapter + shards), keyed by setup. */
    private static final Map<FederatedSetup, ConcurrentLinkedQueue<FederatedSetup.Loaded>> POOL = new ConcurrentHashMap<>();

    /** Runs one client on this executor: borrows a loaded copy of the setup (loading one the first time), runs, returns it. */
    static FederatedClient.Update runClient(FederatedSetup setup, Map<String, float[]> global, int client, int round, double sigma) {
        ConcurrentLinkedQueue<FederatedSetup.Loaded> q = POOL.computeIfAbsent(setup, s -> new ConcurrentLinkedQueue<>());
        FederatedSetup.Loaded l = q.poll();
        if (l == null) {
            try {
                l = setup.load();
            } catch (IOException e) {
                throw new UncheckedIOException(e.getMessage(), e);
            }
        }
        try {
            return l.client().run(global, l.shards().get(client), client, round, setup.config(), sigma);
        } finally {
            q.add(l);
        }
    }

    /** The clients of a round as Spark tasks (one partition per client), the global values broadcast. */
    public static FederatedTrainer.RoundRunner onSpark(JavaSparkContext sc, FederatedSetup setup) {
        return (round, ids, global, sigma) -> {
            Broadcast<Map<String, float[]>> b = sc.broadcast(new LinkedHashMap<>(global));
            List<Integer> list = new ArrayList<>();
            for (int id : ids) list.add(id);
            try {
                return sc.parallelize(list, list.size()).map(id -> runClient(setup, b.value(), id, round, sigma)).collect();
            } finally {
                b.destroy();
            }
        };
    }

    /** The whole run: the driver loads the setup for evaluation and saving, the clients run on Spark. */
    public static FederatedTrainer.Result run(JavaSparkContext sc, FederatedSetup setup, Path out, PrintStream log) throws IOException {
        try (FederatedSetup.Loaded driver = setup.load()) {
            return new FederatedTrainer(setup.config(), driver.client(), driver.shards(), driver.heldOut(), onSpark(sc, setup), out, log).run();
        }
    }

    /**
     * {@code spark-submit --class io.peft4j.spark.SparkFederated peft4j-spark.jar --model M --data D --out DIR [options]}.
     * Options (defaults as {@code peft4j federated}): {@code --tokenizer --format --eval-split --max-train-examples
     * --max-eval-examples --method --r --alpha --dropout --targets --clients --rounds --local-steps --fraction --split
     * --dirichlet-alpha --lr --batch --seq-len --seed --max-eval-batches --dp --clip --noise --target-epsilon --delta}.
     */
    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String k = args[i];
            if (!k.startsWith("--")) throw new IllegalArgumentException("argument " + (i + 1) + " '" + k + "': expected --option");
            if (k.equals("--dp")) { a.put("dp", "true"); continue; }
            if (i + 1 >= args.length) throw new IllegalArgumentException("option " + k + " needs a value");
            a.put(k.substring(2), args[++i]);
        }
        for (String req : new String[] {"model", "data", "out"})
            if (!a.containsKey(req)) throw new IllegalArgumentException("missing --" + req);
        boolean dp = a.containsKey("dp");
        String split = a.getOrDefault("split", "iid").toLowerCase(Locale.ROOT);
        FederatedConfig cfg = new FederatedConfig(i(a, "clients", "4"), i(a, "rounds", "10"), i(a, "local-steps", "10"),
                d(a, "fraction", "1.0"), d(a, "lr", "5e-3"), 0, d(a, "max-grad-norm", "1.0"), i(a, "batch", "8"), i(a, "seq-len", "128"),
                Long.parseLong(a.getOrDefault("seed", "42")),
                switch (split) {
                    case "iid" -> FederatedConfig.Split.IID;
                    case "dirichlet" -> FederatedConfig.Split.DIRICHLET;
                    default -> throw new IllegalArgumentException("--split must be iid or dirichlet, got '" + split + "'");
                },
                d(a, "dirichlet-alpha", "0.5"), dp, d(a, "clip", "1.0"), dp ? d(a, "noise", "NaN") : Double.NaN,
                dp ? d(a, "target-epsilon", "NaN") : Double.NaN, d(a, "delta", "1e-5"), i(a, "max-eval-batches", "0"));
        FederatedSetup setup = new FederatedSetup(a.get("model"), a.get("tokenizer"), a.get("data"), a.getOrDefault("format", "text"),
                d(a, "eval-split", "0.1"), i(a, "max-train-examples", "0"), i(a, "max-eval-examples", "0"), a.getOrDefault("method", "ffa-lora"),
                Map.of(), i(a, "r", "8"), d(a, "alpha", "16"), d(a, "dropout", "0"), a.getOrDefault("targets", "all-linear"), cfg);
        SparkConf conf = new SparkConf().setAppName("peft4j-federated");
        if (!conf.contains("spark.master")) conf.setMaster("local[*]");
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            FederatedTrainer.Result res = run(sc, setup, Path.of(a.get("out")), System.err);
            FederatedTrainer.RoundReport last = res.rounds().getLast();
            System.out.printf(Locale.ROOT, "held-out loss %.4f -> %.4f%s in %.1f s%n", res.baseEvalLoss(), last.evalLoss(),
                    dp ? String.format(Locale.ROOT, ", epsilon %.3f at delta %.0e", last.epsilon(), cfg.delta()) : "", res.seconds());
        }
    }

    private static int i(Map<String, String> a, String k, String def) {
        try { return Integer.parseInt(a.getOrDefault(k, def)); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("--" + k + ": not an integer: '" + a.get(k) + "'"); }
    }

    private static double d(Map<String, String> a, String k, String def) {
        try { return Double.parseDouble(a.getOrDefault(k, def)); }
        catch (NumberFormatException e) { throw new IllegalArgumentException("--" + k + ": not a number: '" + a.get(k) + "'"); }
    }
}
