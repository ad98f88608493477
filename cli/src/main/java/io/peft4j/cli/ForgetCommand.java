package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.Methods;
import io.peft4j.data.Batcher;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import io.peft4j.unlearn.ClassPrototypes;
import io.peft4j.unlearn.ForgetSplit;
import io.peft4j.unlearn.Forgetting;
import io.peft4j.unlearn.ForgettingObjective;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j forget}: makes a trained model forget part of its data (GS-LoRA's continual-forgetting objective,
 * GS-LoRA++ with {@code --opt prototype=true}). A separate command rather than train flags because forgetting starts
 * from a trained model (its adapter is loaded and frozen, a new adapter is stacked on it), draws two batches a step
 * (data to keep, data to forget), and reports accuracy on the forgotten and kept data before and after.
 */
@Command(name = "forget", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Make a trained model forget classes (--forget-classes) or rows (--forget-field) while keeping the rest: "
                + "GS-LoRA's bounded forgetting loss, GS-LoRA++ with --opt prototype=true. A new adapter is trained on top "
                + "of --adapter (frozen) and saved in --out with forget_report.json; evaluate it with "
                + "`peft4j eval --adapter BASE --adapter OUT --forget-classes ...`.")
public final class ForgetCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--adapter", paramLabel = "DIR", description = "the trained adapter to edit (a classifier's LoRA + score head); frozen")
    Path base;
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "the training data (forgotten and kept rows)")
    Path data;
    @Option(names = "--eval-data", paramLabel = "FILE", description = "held-out data (default: --eval-split of --data)")
    Path evalData;
    @Option(names = "--eval-split", defaultValue = "0.1", paramLabel = "F", description = "fraction held out from the END of --data (per half with --forget-field; default ${DEFAULT-VALUE})")
    double evalSplit;
    @Option(names = "--format", required = true, paramLabel = "FMT", description = "classification | text | completion | chat")
    String format;
    @Option(names = "--forget-classes", split = ",", paramLabel = "NAME", description = "class labels to forget (classification)")
    List<String> forgetClasses;
    @Option(names = "--forget-field", paramLabel = "FIELD", description = "boolean row field: true = forget, false = keep (any format)")
    String forgetField;
    @Option(names = "--skip-bad-rows") boolean skipBadRows;

    @Option(names = "--method", defaultValue = "gs-lora", description = "adapter method of the forgetting adapter (default ${DEFAULT-VALUE})")
    String method;
    @Option(names = "--opt", paramLabel = "KEY=VALUE", description = "method options; gs-lora's include the objective's beta, bnd, prototype, proto_*")
    List<String> methodOptions = new ArrayList<>();
    @Option(names = "--r", defaultValue = "8") int r;
    @Option(names = "--alpha", defaultValue = "16") double alpha;
    @Option(names = "--targets", defaultValue = "gate_proj,up_proj,down_proj", description = "modules (default: the FFN, as the paper: ${DEFAULT-VALUE})")
    String targets;
    @Option(names = "--steps", required = true) int steps;
    @Option(names = "--lr", defaultValue = "1e-2") double lr;
    @Option(names = "--schedule", defaultValue = "constant") String schedule;
    @Option(names = "--max-grad-norm", defaultValue = "1.0") double maxGradNorm;
    @Option(names = "--batch", defaultValue = "16", description = "rows of each of the two batches (keep, forget)") int batch;
    @Option(names = "--seq-len", defaultValue = "128") int seqLen;
    @Option(names = "--seed", defaultValue = "42") long seed;
    @Option(names = "--out", required = true, paramLabel = "DIR") Path out;

    @Override
    public Integer call() throws Exception {
        if ((forgetClasses == null) == (forgetField == null)) throw new IllegalArgumentException("give exactly one of --forget-classes or --forget-field");
        MethodConfig mc = MethodConfig.parse(method, methodOptions);
        ForgettingObjective.Settings settings = ForgettingObjective.settings(MethodConfig.of("gs-lora",
                method.equals("gs-lora") ? objectiveOptions(mc) : Map.of()));
        DataFormat fmt = DataFormat.byName(format);
        try (CausalLM model = modelOptions.loadCausalLM(); Tokenizer tok = modelOptions.loadTokenizer()) {
            DataConfig dc = DataConfig.builder(fmt, seqLen).optSkipBadRows(skipBadRows).build();
            int padId = DataLoader.defaultPadId(tok);
            ForgetSplit train, eval;
            int numClasses = 0;
            if (forgetClasses != null) {
                if (fmt != DataFormat.CLASSIFICATION) throw new IllegalArgumentException("--forget-classes needs --format classification");
                Dataset.Split s = DataLoader.loadSplit(data, evalData, evalData == null ? evalSplit : 0, dc, tok);
                numClasses = s.train().numClasses();
                train = ForgetSplit.byClasses(s.train(), forgetClasses);
                eval = ForgetSplit.byClasses(s.eval(), forgetClasses);
            } else {
                ForgetSplit all = ForgetSplit.byField(data, dc, tok, forgetField);
                if (evalData != null) { train = all; eval = ForgetSplit.byField(evalData, dc, tok, forgetField); }
                else { ForgetSplit[] p = all.splitLast(evalSplit); train = p[0]; eval = p[1]; }
                numClasses = fmt == DataFormat.CLASSIFICATION ? all.forget().numClasses() : 0;
            }
            System.err.printf(Locale.ROOT, "data: %d rows to forget, %d to keep (held out: %d, %d)%n",
                    train.forget().size(), train.retain().size(), eval.forget().size(), eval.retain().size());

            SequenceClassifier clf = numClasses > 0 ? new SequenceClassifier(model, numClasses, seed) : null;
            LoraModel lm = new LoraModel(clf != null ? clf : model, seed);
            if (base != null) {
                lm.load(base, "base", w -> System.err.println("warning: " + w));
                lm.setActive("base");
                Forgetting.freeze(lm, "base");
            } else if (clf != null) throw new IllegalArgumentException("forgetting classes needs the trained classifier: --adapter DIR");
            ForgetSplit.Scores before = eval.evaluate(model, clf, batch, padId, lm.runtime());
            print("before", before, clf != null);

            ClassPrototypes protos = null;
            if (settings.prototype()) {                     // the original model's features: the forgetting adapter does not exist yet
                Dataset both = new Dataset(concat(train.forget(), train.retain()), train.forget().labelNames(), null);
                protos = ClassPrototypes.compute(clf, both, batch, padId);
            }
            LoraConfig.Builder cb = LoraConfig.builder().r(r).alpha(alpha).dropout(0).baseModel(modelOptions.model.toString()).inferenceMode(false)
                    .targets(Arrays.stream(targets.split(",")).map(String::trim).filter(t -> !t.isEmpty()).toList());
            if (clf != null) cb.taskType("SEQ_CLS");
            if (Methods.get(method).needsCalibration()) throw new IllegalArgumentException("method " + method + " needs calibration data: not supported by forget");
            lm.add("default", cb.build(), mc, null, System.err);
            if (base != null) lm.setActive("base", "default");
            System.err.printf(Locale.ROOT, "%s: %d modules, %,d trainable parameters%n", method, lm.layers("default").size(), lm.trainableCount("default"));

            ForgettingObjective obj = new ForgettingObjective(model, clf, new Batcher(train.forget(), Batcher.Options.training(batch, seed + 1, padId)),
                    settings, protos, lm.runtime());
            TrainingOptions opt = new TrainingOptions(steps, 1, lr, 0, LrSchedule.parse(schedule), 0, maxGradNorm, 0, 0, 1, 0, 0, seed, false);
            Files.createDirectories(out);
            Trainer.Result res = new Trainer(model, lm, "default", new Batcher(train.retain(), Batcher.Options.training(batch, seed, padId)),
                    null, batch, padId, opt, out, System.err).withClassifier(clf).withObjective(obj).run();
            ForgetSplit.Scores after = eval.evaluate(model, clf, batch, padId, lm.runtime());
            print("after", after, clf != null);
            Map<String, Double> figures = lm.report("default");

            Map<String, Object> rep = new LinkedHashMap<>();
            rep.put("base_adapter", base == null ? null : base.toString());
            rep.put("forget", forgetClasses != null ? forgetClasses : "field:" + forgetField);
            rep.put("method", method);
            rep.put("method_options", mc.options());
            rep.put("steps", res.steps());
            rep.put("seconds", res.seconds());
            rep.put("before", scores(before));
            rep.put("after", scores(after));
            rep.put("adapter", figures);
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("forget_report.json").toFile(), rep);
            if (figures.containsKey("groups"))
                System.out.printf(Locale.ROOT, "groups alive %.0f of %.0f%n", figures.get("groups_alive"), figures.get("groups"));
        }
        return 0;
    }

    private static Map<String, String> objectiveOptions(MethodConfig mc) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String k : List.of("beta", "bnd", "prototype", "proto_forget_weight", "proto_retain_weight", "proto_bnd", "proto_distance")) m.put(k, mc.string(k));
        return m;
    }

    private static List<io.peft4j.data.Example> concat(Dataset a, Dataset b) {
        List<io.peft4j.data.Example> l = new ArrayList<>(a.examples());
        l.addAll(b.examples());
        return l;
    }

    private static Map<String, Object> scores(ForgetSplit.Scores s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("forget_accuracy", s.forget().accuracy());
        m.put("retain_accuracy", s.retain().accuracy());
        m.put("forget_loss", s.forget().loss());
        m.put("retain_loss", s.retain().loss());
        return m;
    }

    static void print(String when, ForgetSplit.Scores s, boolean classes) {
        String what = classes ? "accuracy" : "token accuracy";
        System.out.printf(Locale.ROOT, "%-6s forget %s %.4f (loss %.4f, %d) | retain %s %.4f (loss %.4f, %d)%n", when,
                what, s.forget().accuracy(), s.forget().loss(), s.forget().tokens(), what, s.retain().accuracy(), s.retain().loss(), s.retain().tokens());
    }

}
