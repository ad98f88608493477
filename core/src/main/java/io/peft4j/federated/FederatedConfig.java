package io.peft4j.federated;

import java.io.Serializable;

/**
 * The settings of one federated run (server loop, clients' local training, and the optional differentially private
 * local steps). Serializable so a Spark driver can ship it to executors.
 *
 * @param clients         number of clients (data shards)
 * @param rounds          server rounds
 * @param localSteps      optimizer steps each sampled client runs per round
 * @param clientFraction  fraction of the clients sampled each round, in (0, 1]; at least one client runs
 * @param lr              local learning rate (AdamW, constant)
 * @param weightDecay     local AdamW decoupled weight decay
 * @param maxGradNorm     local gradient clipping without DP (0 = off); DP clips per example instead
 * @param batchSize       local batch size (the expected batch size q·n under DP's Poisson sampling)
 * @param seqLen          tokens per example
 * @param seed            seed of everything random: shards, client sampling, batches, dropout, DP sampling and noise
 * @param split           how the training data is cut into client shards
 * @param dirichletAlpha  concentration of the non-IID split (small = more skewed); unused for IID
 * @param dp              run DP-SGD on the clients
 * @param clip            DP per-example L2 clip norm C
 * @param noiseMultiplier DP noise multiplier sigma (noise std sigma·C per coordinate of the summed gradient); NaN when
 *                        {@code targetEpsilon} decides it
 * @param targetEpsilon   DP budget to reach at the end of the run (sigma found by bisection); NaN when sigma is given
 * @param delta           DP delta
 * @param maxEvalBatches  cap on held-out batches per evaluation (0 = all)
 */
public record FederatedConfig(int clients, int rounds, int localSteps, double clientFraction, double lr, double weightDecay,
                              double maxGradNorm, int batchSize, int seqLen, long seed, Split split, double dirichletAlpha,
                              boolean dp, double clip, double noiseMultiplier, double targetEpsilon, double delta,
                              int maxEvalBatches) implements Serializable {
    /** IID: a seeded shuffle dealt into equal parts. DIRICHLET: per-group client shares drawn from Dirichlet(alpha). */
    public enum Split { IID, DIRICHLET }

    public FederatedConfig {
        if (clients < 1) throw new IllegalArgumentException("clients must be >= 1, got " + clients);
        if (rounds < 1) throw new IllegalArgumentException("rounds must be >= 1, got " + rounds);
        if (localSteps < 1) throw new IllegalArgumentException("local steps must be >= 1, got " + localSteps);
        if (!(clientFraction > 0 && clientFraction <= 1)) throw new IllegalArgumentException("client fraction must be in (0, 1], got " + clientFraction);
        if (!(lr > 0)) throw new IllegalArgumentException("learning rate must be > 0, got " + lr);
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        if (seqLen < 2) throw new IllegalArgumentException("sequence length must be >= 2, got " + seqLen);
        if (split == null) throw new IllegalArgumentException("split must be iid or dirichlet");
        if (split == Split.DIRICHLET && !(dirichletAlpha > 0)) throw new IllegalArgumentException("dirichlet alpha must be > 0, got " + dirichletAlpha);
        if (dp) {
            if (!(clip > 0)) throw new IllegalArgumentException("DP clip norm must be > 0, got " + clip);
            if (!(delta > 0 && delta < 1)) throw new IllegalArgumentException("DP delta must be in (0, 1), got " + delta);
            boolean hasSigma = !Double.isNaN(noiseMultiplier), hasTarget = !Double.isNaN(targetEpsilon);
            if (hasSigma == hasTarget) throw new IllegalArgumentException("DP needs exactly one of a noise multiplier or a target epsilon");
            if (hasSigma && !(noiseMultiplier >= 0)) throw new IllegalArgumentException("noise multiplier must be >= 0, got " + noiseMultiplier);
            if (hasTarget && !(targetEpsilon > 0)) throw new IllegalArgumentException("target epsilon must be > 0, got " + targetEpsilon);
        }
    }

    /** No DP, IID shards, AdamW at {@code lr}, gradient clipping 1.0, eval over everything. */
    public static FederatedConfig plain(int clients, int rounds, int localSteps, double clientFraction, double lr, int batchSize, int seqLen, long seed) {
        return new FederatedConfig(clients, rounds, localSteps, clientFraction, lr, 0, 1.0, batchSize, seqLen, seed, Split.IID, 1.0,
                false, 0, Double.NaN, Double.NaN, 1e-5, 0);
    }

    /** This config with DP-SGD at a given noise multiplier. */
    public FederatedConfig withDp(double clip, double sigma, double delta) {
        return new FederatedConfig(clients, rounds, localSteps, clientFraction, lr, weightDecay, maxGradNorm, batchSize, seqLen, seed, split,
                dirichletAlpha, true, clip, sigma, Double.NaN, delta, maxEvalBatches);
    }

    /** This config with DP-SGD whose noise is found to spend {@code epsilon} by the end of the run. */
    public FederatedConfig withTargetEpsilon(double clip, double epsilon, double delta) {
        return new FederatedConfig(clients, rounds, localSteps, clientFraction, lr, weightDecay, maxGradNorm, batchSize, seqLen, seed, split,
                dirichletAlpha, true, clip, Double.NaN, epsilon, delta, maxEvalBatches);
    }

    public FederatedConfig withSplit(Split s, double alpha) {
        return new FederatedConfig(clients, rounds, localSteps, clientFraction, lr, weightDecay, maxGradNorm, batchSize, seqLen, seed, s,
                alpha, dp, clip, noiseMultiplier, targetEpsilon, delta, maxEvalBatches);
    }

    public FederatedConfig withMaxEvalBatches(int n) {
        return new FederatedConfig(clients, rounds, localSteps, clientFraction, lr, weightDecay, maxGradNorm, batchSize, seqLen, seed, split,
                dirichletAlpha, dp, clip, noiseMultiplier, targetEpsilon, delta, n);
    }

    /** Clients sampled per round: round(fraction · clients), at least 1. */
    public int clientsPerRound() { return Math.max(1, (int) Math.round(clientFraction * clients)); }
}
