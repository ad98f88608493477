package io.peft4j.testing;

import io.peft4j.adapters.LoraModel;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Learnable toy token data and a quiet Trainer for adapter-method tests on tiny random models. */
public final class ToyData {
    private ToyData() {}

    /** Sequences of a fixed random successor chain: learnable, so a few steps lower the loss. */
    public static Dataset chain(int n, int len, long seed) {
        SplittableRandom rng = new SplittableRandom(seed), chain = new SplittableRandom(7);
        int[] next = new int[512];
        for (int i = 0; i < next.length; i++) next[i] = 3 + chain.nextInt(60);
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] ids = new int[len], labels = new int[len];
            ids[0] = 3 + rng.nextInt(60);
            for (int t = 1; t < len; t++) ids[t] = next[ids[t - 1]];
            for (int t = 0; t < len; t++) labels[t] = t + 1 < len ? ids[t + 1] : Example.IGNORE;
            ex.add(new Example(ids, labels));
        }
        return Dataset.of(ex);
    }

    /** A Trainer on {@code data} in batches of 2, no eval, silent. */
    public static Trainer trainer(CausalLM m, LoraModel lm, Dataset data, TrainingOptions opt, Path out) {
        return new Trainer(m, lm, "default", new Batcher(data, Batcher.Options.training(2, opt.seed(), 0)), null, 4, 0, opt, out,
                new PrintStream(new ByteArrayOutputStream()));
    }
}
