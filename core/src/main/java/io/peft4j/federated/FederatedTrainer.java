package io.peft4j.federated;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.data.Dataset;
import io.peft4j.report.LinePlot;
import io.peft4j.train.Evaluator;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The federated server loop (FedAvg on the adapter's trainable tensors, as FFA-LoRA trains them): each round samples
 * {@code clientsPerRound} clients, each starts from the global values and returns its delta, and the server adds the
 * example-count-weighted mean delta to the global values. With FFA-LoRA the trainables are the B factors and every
 * client's frozen A is the same, so the mean of the clients' B is exactly the B of the mean update {@code B A}; plain
 * LoRA's separate means of A and B are not the mean of the products.
 *
 * <p>How the clients run is a {@link RoundRunner}: {@link #inProcess} runs them one after another here; the Spark module
 * runs them on executors. The server reports, per round, the clients' mean training loss, the held-out loss of the new
 * global adapter and, with DP, the epsilon spent so far; it writes {@code metrics.jsonl} and {@code loss.png} and
 * saves the final adapter in PEFT's format (with {@code peft4j_method.json}) under the output folder.
 *
 * <p>Privacy accounting (with DP): example-level DP for each client's data. Every local step of a client is one
 * Poisson-subsampled Gaussian mechanism on its shard (rate q = batch / shard size); a client's steps compose over the
 * rounds it took part in, and the epsilon reported is the largest over the clients. Client sampling is not credited
 * (no amplification by client subsampling is claimed), and the server's averaging is post-processing.
 */
public final class FederatedTrainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Runs one round's sampled clients from the global values; returns their updates (any order). */
    @FunctionalInterface
    public interface RoundRunner {
        List<FederatedClient.Update> run(int round, int[] clients, Map<String, float[]> global, double sigma);
    }

    /** One round's report. */
    public record RoundReport(int round, int[] clients, double trainLoss, double evalLoss, double epsilon, double seconds) {}

    /** The outcome: the final global values, the rounds' reports, the held-out loss before training, and the noise used. */
    public record Result(Map<String, float[]> global, List<RoundReport> rounds, double baseEvalLoss, double sigma, double seconds) {}

    private final FederatedConfig cfg;
    private final FederatedClient server;      // the driver's model: evaluation and saving
    private final List<Dataset> shards;
    private final Dataset heldOut;             // may be null
    private final RoundRunner runner;
    private final Path out;                    // may be null: nothing written
    private final PrintStream log;

    public FederatedTrainer(FederatedConfig cfg, FederatedClient server, List<Dataset> shards, Dataset heldOut, RoundRunner runner,
                            Path out, PrintStream log) {
        if (shards.size() != cfg.clients()) throw new IllegalArgumentException(shards.size() + " shards for " + cfg.clients() + " clients");
        this.cfg = cfg;
        this.server = server;
        this.shards = shards;
        this.heldOut = heldOut;
        this.runner = runner;
        this.out = out;
        this.log = log;
    }

    /** Clients run one after another on {@code client} (in this process, on its one thread pool). */
    public static RoundRunner inProcess(FederatedClient client, List<Dataset> shards, FederatedConfig cfg) {
        return (round, ids, global, sigma) -> {
            List<FederatedClient.Update> ups = new ArrayList<>();
            for (int c : ids) ups.add(client.run(global, shards.get(c), c, round, cfg, sigma));
            return ups;
        };
    }

    /** The clients sampled in {@code round}: a seeded choice of {@code clientsPerRound} ids, sorted. */
    public static int[] sampleClients(FederatedConfig cfg, int round) {
        int k = cfg.clients(), m = cfg.clientsPerRound();
        int[] ids = new int[k];
        for (int i = 0; i < k; i++) ids[i] = i;
        java.util.SplittableRandom rng = new java.util.SplittableRandom(FederatedClient.seedFor(cfg.seed(), round, -1, 5));
        for (int i = k - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = ids[i]; ids[i] = ids[j]; ids[j] = t;
        }
        int[] chosen = Arrays.copyOf(ids, m);
        Arrays.sort(chosen);
        return chosen;
    }

    /**
     * The noise multiplier the run uses: the configured one, or the smallest that keeps the worst-placed client (the
     * smallest shard, so the largest q, in every round) within the target epsilon at the end; NaN without DP.
     */
    public static double noiseMultiplier(FederatedConfig cfg, List<Dataset> shards) {
        if (!cfg.dp()) return Double.NaN;
        if (!Double.isNaN(cfg.noiseMultiplier())) return cfg.noiseMultiplier();
        int smallest = shards.stream().mapToInt(Dataset::size).min().orElseThrow();
        return RdpAccountant.noiseForEpsilon(cfg.targetEpsilon(), cfg.delta(), FederatedClient.samplingRate(cfg, smallest),
                (long) cfg.rounds() * cfg.localSteps());
    }

    /**
     * The server's aggregation: {@code global + sum_c n_c delta_c / sum_c n_c}, summed in client-id order so the
     * result does not depend on the order the updates arrived in.
     */
    public static Map<String, float[]> aggregate(Map<String, float[]> global, List<FederatedClient.Update> updates) {
        List<FederatedClient.Update> ups = new ArrayList<>(updates);
        ups.sort((a, b) -> Integer.compare(a.client(), b.client()));
        double total = 0;
        for (FederatedClient.Update u : ups) total += u.examples();
        Map<String, float[]> next = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : global.entrySet()) {
            float[] g = e.getValue();
            double[] acc = new double[g.length];                 // double sum, then one rounding per coordinate
            for (FederatedClient.Update u : ups) {
                float[] d = u.delta().get(e.getKey());
                if (d == null || d.length != g.length) throw new IllegalArgumentException("client " + u.client() + " returned no/short delta for " + e.getKey());
                double w = u.examples() / total;
                for (int i = 0; i < g.length; i++) acc[i] += w * d[i];
            }
            float[] n = new float[g.length];
            for (int i = 0; i < g.length; i++) n[i] = (float) (g[i] + acc[i]);
            next.put(e.getKey(), n);
        }
        return next;
    }

    public Result run() throws IOException {
        long t0 = System.nanoTime();
        if (out != null) {
            Files.createDirectories(out);
            Files.deleteIfExists(out.resolve("metrics.jsonl"));
        }
        double sigma = noiseMultiplier(cfg, shards);
        if (cfg.dp()) log.printf(Locale.ROOT, "DP-SGD: clip %.3g, noise multiplier %.4f, delta %.1e%n", cfg.clip(), sigma, cfg.delta());
        RdpAccountant[] accountants = new RdpAccountant[cfg.clients()];
        for (int c = 0; c < accountants.length; c++) accountants[c] = new RdpAccountant();
        Map<String, float[]> global = server.values();
        double base = Double.NaN;
        if (heldOut != null) {
            base = server.evaluate(heldOut, cfg.batchSize(), cfg.maxEvalBatches()).loss();
            log.printf(Locale.ROOT, "round 0 | held-out loss %.4f%n", base);
            metrics(JSON.createObjectNode().put("round", 0).put("eval_loss", base));
        }
        List<RoundReport> reports = new ArrayList<>();
        for (int r = 1; r <= cfg.rounds(); r++) {
            long r0 = System.nanoTime();
            int[] ids = sampleClients(cfg, r);
            List<FederatedClient.Update> ups = runner.run(r, ids, global, sigma);
            if (ups.size() != ids.length) throw new IllegalStateException("round " + r + ": " + ups.size() + " updates for " + ids.length + " clients");
            global = aggregate(global, ups);
            double lossSum = 0, weight = 0;
            for (FederatedClient.Update u : ups) {
                if (!Double.isNaN(u.trainLoss())) { lossSum += u.trainLoss() * u.examples(); weight += u.examples(); }
                if (cfg.dp()) accountants[u.client()].step(FederatedClient.samplingRate(cfg, shards.get(u.client()).size()), sigma, cfg.localSteps());
            }
            double trainLoss = weight > 0 ? lossSum / weight : Double.NaN;
            double eps = Double.NaN;
            if (cfg.dp()) {
                eps = 0;
                for (RdpAccountant a : accountants) if (a.steps() > 0) eps = Math.max(eps, a.epsilon(cfg.delta()));
            }
            double evalLoss = Double.NaN;
            if (heldOut != null) {
                server.load(global);
                evalLoss = server.evaluate(heldOut, cfg.batchSize(), cfg.maxEvalBatches()).loss();
            }
            double elapsed = (System.nanoTime() - t0) / 1e9;
            RoundReport rep = new RoundReport(r, ids, trainLoss, evalLoss, eps, (System.nanoTime() - r0) / 1e9);
            reports.add(rep);
            ObjectNode row = JSON.createObjectNode().put("round", r).put("train_loss", trainLoss).put("elapsed_s", elapsed)
                    .put("clients", Arrays.toString(ids));
            if (heldOut != null) row.put("eval_loss", evalLoss);
            if (cfg.dp()) row.put("epsilon", eps).put("delta", cfg.delta());
            metrics(row);
            double eta = elapsed / r * (cfg.rounds() - r);
            log.printf(Locale.ROOT, "round %d/%d | clients %s | loss %.4f | held-out %.4f%s | ETA %s%n", r, cfg.rounds(), Arrays.toString(ids),
                    trainLoss, evalLoss, cfg.dp() ? String.format(Locale.ROOT, " | epsilon %.3f (delta %.0e)", eps, cfg.delta()) : "",
                    formatDuration(eta));
            log.flush();
        }
        server.load(global);
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (out != null) {
            server.adapters().save(out, server.adapter());
            writePlot(reports, base);
        }
        return new Result(global, reports, base, sigma, seconds);
    }

    static String formatDuration(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, (s % 3600) / 60) : s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : s + "s";
    }

    private void metrics(ObjectNode row) throws IOException {
        if (out == null) return;
        Files.writeString(out.resolve("metrics.jsonl"), row.toString() + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    private void writePlot(List<RoundReport> reports, double base) throws IOException {
        LinePlot plot = new LinePlot("federated training loss", "round", "loss");
        double[] x = new double[reports.size()], tr = new double[reports.size()];
        for (int i = 0; i < x.length; i++) { x[i] = reports.get(i).round(); tr[i] = reports.get(i).trainLoss(); }
        plot.add("clients' train", x, tr);
        if (heldOut != null) {
            double[] ex = new double[x.length + 1], ev = new double[x.length + 1];
            ex[0] = 0;
            ev[0] = base;
            for (int i = 0; i < x.length; i++) { ex[i + 1] = x[i]; ev[i + 1] = reports.get(i).evalLoss(); }
            plot.add("held-out", ex, ev);
        }
        plot.writePng(out.resolve("loss.png"), 800, 480);
    }
}
