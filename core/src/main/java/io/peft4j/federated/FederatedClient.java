package io.peft4j.federated;

import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;
import io.peft4j.train.Evaluator;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * One client's local training as a function {@code (global trainables, shard, client id, round) -> delta}: it loads
 * the global values into the adapter, runs {@code localSteps} steps of AdamW (plain, or on DP-SGD's privatised
 * gradients), and returns the change of every trainable tensor. All randomness (batch order, dropout, DP's Poisson
 * sampling and noise) is drawn from seeds derived from {@code (seed, round, client)}, never from the object's history,
 * so the same call gives the same delta in any JVM and in any order: the property that lets Spark executors run it.
 *
 * <p>An instance owns a model with the adapter attached (mutable scratch); it is not thread safe: use one per thread.
 * For FFA-LoRA the trainables are the B factors only, and A (frozen, drawn from the adapter seed) is identical on every
 * client by construction.
 */
public final class FederatedClient {
    private final CausalLM model;
    private final LoraModel adapters;
    private final String adapter;
    private final int padId;
    private final Map<String, Tensor> params;   // PEFT name -> trainable tensor of the adapter

    /**
     * The result of one client's round.
     *
     * @param client    client id
     * @param examples  examples in the client's shard (the server's averaging weight)
     * @param delta     name -> [numel] change of each trainable tensor (local result minus the global values)
     * @param trainLoss mean training loss over the local steps (DP: over the examples sampled)
     * @param sampled   examples that contributed gradients (DP: the realised Poisson batches)
     */
    public record Update(int client, int examples, Map<String, float[]> delta, double trainLoss, long sampled) implements Serializable {}

    public FederatedClient(CausalLM model, LoraModel adapters, String adapter, int padId) {
        this.model = model;
        this.adapters = adapters;
        this.adapter = adapter;
        this.padId = padId;
        this.params = adapters.parameters(adapter);
        if (params.isEmpty()) throw new IllegalArgumentException("adapter '" + adapter + "' has no trainable tensors");
    }

    public CausalLM model() { return model; }
    public LoraModel adapters() { return adapters; }
    public String adapter() { return adapter; }

    /** The current values of the trainable tensors (copies), by PEFT name. */
    public Map<String, float[]> values() {
        Map<String, float[]> v = new LinkedHashMap<>();
        params.forEach((k, t) -> v.put(k, t.toFloatArray()));
        return v;
    }

    /** Overwrites the trainable tensors with {@code values} (every name, exact sizes). */
    public void load(Map<String, float[]> values) {
        if (!values.keySet().equals(params.keySet()))
            throw new IllegalArgumentException("global state holds " + values.keySet() + ", the adapter trains " + params.keySet());
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            float[] src = values.get(e.getKey());
            Tensor t = e.getValue();
            if (src.length != t.numel()) throw new IllegalArgumentException(e.getKey() + ": " + src.length + " values, tensor has " + t.numel());
            System.arraycopy(src, 0, t.data(), t.dataOffset(), src.length);
        }
    }

    /** Held-out loss of the current values (dropout off). */
    public Evaluator.Result evaluate(Dataset heldOut, int batchSize, int maxBatches) {
        boolean was = adapters.runtime().training();
        adapters.train(false);
        try {
            return Evaluator.evaluate(model, heldOut, batchSize, padId, maxBatches, adapters.runtime());
        } finally {
            adapters.train(was);
        }
    }

    /** A 64-bit mix of the run seed with a round, a client and a purpose tag (SplitMix64's finaliser). */
    static long seedFor(long seed, int round, int client, long tag) {
        long z = seed + 0x9E3779B97F4A7C15L * (round + 1) + 0xD1B54A32D192ED03L * (client + 1) + 0x8CB92BA72F3D8DD7L * tag;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Runs one client's local training from {@code global} and returns its delta. {@code sigma} is the DP noise
     * multiplier (ignored without DP).
     */
    public Update run(Map<String, float[]> global, Dataset shard, int client, int round, FederatedConfig cfg, double sigma) {
        load(global);
        adapters.runtime().reseed(seedFor(cfg.seed(), round, client, 1), 0);   // dropout masks: a function of (round, client)
        AdamW opt = new AdamW(params, 0.9, 0.999, 1e-8, cfg.weightDecay());   // fresh moments each round (nothing client-side persists)
        adapters.train(true);
        double lossSum = 0;
        long sampled = 0, lossCount = 0;
        try {
            if (!cfg.dp()) {
                Batcher batches = new Batcher(shard, Batcher.Options.training(cfg.batchSize(), seedFor(cfg.seed(), round, client, 2), padId));
                for (int s = 0; s < cfg.localSteps(); s++) {
                    opt.zeroGrad();
                    Batch b = batches.next();
                    lossSum += backward(b);
                    lossCount++;
                    sampled += b.batch();
                    if (cfg.maxGradNorm() > 0) opt.clipGradNorm(cfg.maxGradNorm());
                    opt.step(cfg.lr());
                }
            } else {
                DpSgd dp = new DpSgd(params, cfg.clip(), sigma);
                double q = samplingRate(cfg, shard.size());
                SplittableRandom sampler = new SplittableRandom(seedFor(cfg.seed(), round, client, 3));
                SplittableRandom noise = new SplittableRandom(seedFor(cfg.seed(), round, client, 4));
                for (int s = 0; s < cfg.localSteps(); s++) {
                    opt.zeroGrad();
                    dp.begin();
                    for (int i = 0; i < shard.size(); i++) {
                        if (sampler.nextDouble() >= q) continue;                 // Poisson sampling: each example independently with prob. q
                        Batch one = Batcher.allInOrder(Dataset.of(List.of(shard.get(i))), 1, padId).getFirst();
                        lossSum += backward(one);
                        lossCount++;
                        dp.addExample();
                    }
                    sampled += dp.examples();
                    dp.finish(q * shard.size(), noise);
                    opt.step(cfg.lr());
                }
            }
        } finally {
            adapters.train(false);
        }
        Map<String, float[]> delta = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            float[] now = e.getValue().toFloatArray(), start = global.get(e.getKey());
            for (int i = 0; i < now.length; i++) now[i] -= start[i];
            delta.put(e.getKey(), now);
        }
        return new Update(client, shard.size(), delta, lossCount == 0 ? Double.NaN : lossSum / lossCount, sampled);
    }

    /** DP-SGD's Poisson sampling rate on a shard: the expected batch is the configured batch size (capped at the shard). */
    public static double samplingRate(FederatedConfig cfg, int shardSize) {
        return Math.min(1.0, (double) cfg.batchSize() / shardSize);
    }

    /** Forward and backward of the mean next-token loss of one batch; gradients accumulate in the trainables. */
    private double backward(Batch b) {
        adapters.runtime().tokenTags(b.tags());
        try (Tape tape = Tape.record()) {
            Tensor loss = NnOps.crossEntropy(model.forward(b.ids(), b.batch(), b.seqLen(), null), b.labels(), Example.IGNORE);
            tape.backward(loss);
            return loss.getFlat(0);
        } finally {
            adapters.runtime().tokenTags(null);
        }
    }
}
