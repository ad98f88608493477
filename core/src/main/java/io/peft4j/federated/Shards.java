package io.peft4j.federated;

import io.peft4j.data.Dataset;
import io.peft4j.data.Example;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Cuts a training set into client shards, deterministically from a seed (a Spark executor rebuilds the same shards).
 *
 * <ul>
 *   <li>IID: a seeded shuffle dealt round-robin, so shard sizes differ by at most one.</li>
 *   <li>Dirichlet(alpha), the usual non-IID benchmark split: the examples are grouped, and each group's examples are
 *       divided among the clients in proportions drawn from Dirichlet(alpha, ..., alpha). Groups are the class labels
 *       for classification data; for language-model text, which has no label, they are {@code clients} contiguous
 *       chunks of the file in order (so with a small alpha each client mostly sees a few stretches of the text: a
 *       skew of topic and style rather than of labels).</li>
 * </ul>
 * Every client gets at least one example (the largest shard gives one up otherwise).
 */
public final class Shards {
    private Shards() {}

    public static List<Dataset> split(Dataset train, FederatedConfig cfg) {
        int k = cfg.clients();
        if (train.size() < k) throw new IllegalArgumentException("cannot split " + train.size() + " training examples among " + k + " clients");
        List<List<Example>> shards = new ArrayList<>();
        for (int c = 0; c < k; c++) shards.add(new ArrayList<>());
        SplittableRandom rng = new SplittableRandom(cfg.seed() ^ 0x5EED5A4D5L);
        if (cfg.split() == FederatedConfig.Split.IID) {
            Dataset s = train.shuffled(rng.nextLong());
            for (int i = 0; i < s.size(); i++) shards.get(i % k).add(s.get(i));
        } else {
            for (List<Example> group : groups(train, k)) {
                double[] p = dirichlet(k, cfg.dirichletAlpha(), rng);
                List<Example> g = Dataset.of(group).shuffled(rng.nextLong()).examples();
                // cumulative proportions -> cut points; the last client takes the rounding remainder
                double cum = 0;
                int from = 0;
                for (int c = 0; c < k; c++) {
                    cum += p[c];
                    int to = c == k - 1 ? g.size() : (int) Math.round(cum * g.size());
                    to = Math.max(from, Math.min(g.size(), to));
                    shards.get(c).addAll(g.subList(from, to));
                    from = to;
                }
            }
            for (int c = 0; c < k; c++) {
                if (!shards.get(c).isEmpty()) continue;
                int largest = 0;
                for (int d = 1; d < k; d++) if (shards.get(d).size() > shards.get(largest).size()) largest = d;
                List<Example> big = shards.get(largest);
                shards.get(c).add(big.removeLast());
            }
        }
        List<Dataset> out = new ArrayList<>(k);
        for (List<Example> s : shards) out.add(new Dataset(s, train.labelNames(), train.report()));
        return out;
    }

    /** The groups a Dirichlet split divides: class labels, or {@code k} contiguous chunks of an unlabelled set. */
    static List<List<Example>> groups(Dataset train, int k) {
        List<List<Example>> g = new ArrayList<>();
        if (train.isClassification()) {
            int classes = 0;
            for (Example e : train.examples()) classes = Math.max(classes, e.classLabel() + 1);
            for (int c = 0; c < classes; c++) g.add(new ArrayList<>());
            for (Example e : train.examples()) g.get(e.classLabel()).add(e);
        } else {
            int n = train.size();
            for (int c = 0; c < k; c++) g.add(new ArrayList<>(train.examples().subList((int) ((long) c * n / k), (int) ((long) (c + 1) * n / k))));
        }
        g.removeIf(List::isEmpty);
        return g;
    }

    /** One draw from Dirichlet(alpha, ..., alpha) of dimension k: normalised Gamma(alpha, 1) draws. */
    static double[] dirichlet(int k, double alpha, SplittableRandom rng) {
        double[] x = new double[k];
        double s = 0;
        for (int i = 0; i < k; i++) s += x[i] = gamma(alpha, rng);
        if (s == 0) { x[rng.nextInt(k)] = 1; return x; }   // every draw underflowed (tiny alpha): one client takes all
        for (int i = 0; i < k; i++) x[i] /= s;
        return x;
    }

    /** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1) · U^(1/shape). */
    static double gamma(double shape, SplittableRandom rng) {
        if (shape < 1) return gamma(shape + 1, rng) * Math.pow(rng.nextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.sqrt(9 * d);
        while (true) {
            double z = rng.nextGaussian(), v = 1 + c * z;
            if (v <= 0) continue;
            v = v * v * v;
            double u = rng.nextDouble();
            if (Math.log(u) < 0.5 * z * z + d - d * v + d * Math.log(v)) return d * v;
        }
    }
}
