package io.peft4j.unlearn;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.Evaluator;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.Set;

/**
 * A tiny forgetting setting: {@value #CLASSES} separable classes (class c's tokens come from its own id range), a
 * random tiny Llama as a sequence classifier, a LoRA + score-head classifier adapter "base" trained first, then a
 * forgetting adapter "default" stacked on top.
 */
final class ForgetToy {
    static final int CLASSES = 4;

    static Dataset data(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int c = i % CLASSES, len = 5 + rng.nextInt(5);
            int[] ids = new int[len];
            for (int t = 0; t < len; t++) ids[t] = 10 + 40 * c + rng.nextInt(40);
            ex.add(Example.classification(ids, c, 1f));
        }
        return new Dataset(ex, List.of("a", "b", "c", "d"), null);
    }

    static CausalLM model() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    final CausalLM model = model();
    final SequenceClassifier clf = new SequenceClassifier(model, CLASSES, 3);
    final LoraModel lm = new LoraModel(clf, 4);
    final Dataset train = data(192, 1), eval = data(96, 2);

    /** Trains the classifier adapter "base" (every linear layer, r 4, plus the head) and freezes it. */
    ForgetToy trainClassifier(Path out) throws IOException {
        lm.add("base", LoraConfig.builder().r(4).alpha(8).targetRegex(LoraConfig.ALL_LINEAR).modulesToSave(List.of("score")).taskType("SEQ_CLS").build());
        TrainingOptions opt = TrainingOptions.defaults(60).withLr(1e-2).withSchedule(LrSchedule.COSINE, 5);
        new Trainer(model, lm, "base", new Batcher(train, Batcher.Options.training(16, 5, 0)), null, 16, 0, opt, out, QUIET).withClassifier(clf).run();
        Forgetting.freeze(lm, "base");
        return this;
    }

    double accuracy(Dataset d) {
        return Evaluator.evaluateClassification(clf, d, 32, 0, 0).accuracy();
    }

    /** Forget/retain held-out accuracy. */
    double[] accuracies(Set<Integer> forget) {
        return new double[] {accuracy(ForgetSplit.ofClasses(eval, forget, true)), accuracy(ForgetSplit.ofClasses(eval, forget, false))};
    }

    /** Adds the forgetting adapter (gs-lora on the MLPs) and runs the objective for {@code steps}; returns the adapter's report. */
    Map<String, Double> forget(Set<Integer> classes, Map<String, String> options, int steps, double lr, Path out) throws IOException {
        ForgetSplit split = ForgetSplit.byClasses(train, classes.stream().map(i -> train.labelNames().get(i)).toList());
        MethodConfig mc = MethodConfig.of("gs-lora", options);
        ForgettingObjective.Settings s = ForgettingObjective.settings(mc);
        ClassPrototypes protos = null;
        if (s.prototype()) {
            lm.setActive("base");
            protos = ClassPrototypes.compute(clf, train, 32, 0);
        }
        lm.add("default", LoraConfig.builder().r(4).alpha(8).targets("gate_proj", "up_proj", "down_proj").build(), mc, null, null);
        lm.setActive("base", "default");
        ForgettingObjective obj = new ForgettingObjective(model, clf, new Batcher(split.forget(), Batcher.Options.training(16, 7, 0)), s, protos, lm.runtime());
        TrainingOptions opt = TrainingOptions.defaults(steps).withLr(lr).withSchedule(LrSchedule.CONSTANT, 0);
        new Trainer(model, lm, "default", new Batcher(split.retain(), Batcher.Options.training(16, 6, 0)), null, 16, 0, opt, out, QUIET)
                .withClassifier(clf).withObjective(obj).run();
        return lm.report("default");
    }

    static boolean allZero(Tensor t) {
        for (float v : t.toFloatArray()) if (v != 0f) return false;
        return true;
    }
}
