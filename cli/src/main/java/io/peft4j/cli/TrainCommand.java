package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.Methods;
import io.peft4j.train.CalibrationBatches;
import io.peft4j.adapters.LoraModel;
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
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code peft4j train}: fine-tunes a LoRA adapter and saves it in PEFT's format. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Fine-tune a LoRA adapter on a dataset; writes the adapter (PEFT format), metrics.jsonl, "
                + "training_args.json, loss.png and checkpoints/ into --out.")
public final class TrainCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "training data: .jsonl .json .csv .tsv .txt")
    Path data;
    @Option(names = "--eval-data", paramLabel = "FILE", description = "held-out data (default: --eval-split of --data)")
    Path evalData;
    @Option(names = "--eval-split", paramLabel = "F", defaultValue = "0.1", description = "fraction held out from the END of --data (default ${DEFAULT-VALUE})")
    double evalSplit;
    @Option(names = "--format", required = true, paramLabel = "FMT", description = "text | completion | chat | classification")
    String format;
    @Option(names = "--skip-bad-rows", description = "skip (and count) malformed rows instead of failing")
    boolean skipBadRows;

    @Option(names = "--method", defaultValue = "lora", description = "adapter method, see `peft4j methods` (default ${DEFAULT-VALUE})")
    String method;
    @Option(names = "--opt", paramLabel = "KEY=VALUE", description = "a hyper-parameter of the method (repeatable; `peft4j methods` lists them)")
    List<String> methodOptions = new java.util.ArrayList<>();
    @Option(names = "--r", defaultValue = "8", description = "LoRA rank (default ${DEFAULT-VALUE})")
    int r;
    @Option(names = "--alpha", defaultValue = "16", description = "LoRA alpha (default ${DEFAULT-VALUE})")
    double alpha;
    @Option(names = "--dropout", defaultValue = "0.05", description = "LoRA dropout (default ${DEFAULT-VALUE})")
    double dropout;
    @Option(names = "--targets", defaultValue = "q_proj,v_proj", description = "comma-separated module names/suffixes, or all-linear (default ${DEFAULT-VALUE})")
    String targets;
    @Option(names = "--init", defaultValue = "true", description = "true | gaussian | pissa | pissa_niter_N | olora (default ${DEFAULT-VALUE})")
    String init;
    @Option(names = "--rslora", description = "scale by alpha/sqrt(r)")
    boolean rslora;
    @Option(names = "--dora", description = "DoRA: learn a magnitude vector too")
    boolean dora;
    @Option(names = "--bias", defaultValue = "none", description = "none | all | lora_only")
    String bias;

    @Option(names = "--steps", paramLabel = "N", description = "optimizer steps")
    Integer steps;
    @Option(names = "--epochs", paramLabel = "E", description = "epochs (alternative to --steps)")
    Double epochs;
    @Option(names = "--lr", defaultValue = "2e-4", description = "peak learning rate (default ${DEFAULT-VALUE})")
    double lr;
    @Option(names = "--schedule", defaultValue = "linear", description = "constant | linear | cosine (default ${DEFAULT-VALUE})")
    String schedule;
    @Option(names = "--warmup", defaultValue = "0", description = "warm-up steps")
    int warmup;
    @Option(names = "--weight-decay", defaultValue = "0", description = "AdamW decoupled weight decay")
    double weightDecay;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "gradient clipping, 0 = off (default ${DEFAULT-VALUE})")
    double maxGradNorm;
    @Option(names = "--batch", defaultValue = "4", description = "micro-batch size (default ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--grad-accum", defaultValue = "1", description = "micro-batches per optimizer step")
    int gradAccum;
    @Option(names = "--seq-len", defaultValue = "256", description = "sequence length (default ${DEFAULT-VALUE})")
    int seqLen;
    @Option(names = "--seed", defaultValue = "42")
    long seed;
    @Option(names = "--eval-every", defaultValue = "0", description = "evaluate every N steps (default: at the end)")
    int evalEvery;
    @Option(names = "--max-eval-batches", defaultValue = "0", description = "cap on evaluation batches (0 = all)")
    int maxEvalBatches;
    @Option(names = "--save-every", defaultValue = "0", description = "checkpoint every N steps (default: at the end)")
    int saveEvery;
    @Option(names = "--patience", defaultValue = "0", description = "early stopping after N evaluations without improvement")
    int patience;
    @Option(names = "--resume", description = "continue from the newest checkpoint in --out")
    boolean resume;
    @Option(names = "--out", required = true, paramLabel = "DIR")
    Path out;

    @Override
    public Integer call() throws Exception {
        MethodConfig mc = MethodConfig.parse(method, methodOptions);
        if ((steps == null) == (epochs == null)) throw new IllegalArgumentException("give exactly one of --steps or --epochs");
        DataFormat fmt = DataFormat.byName(format);
        try (CausalLM model = modelOptions.loadCausalLM(); Tokenizer tok = modelOptions.loadTokenizer()) {
            DataConfig dc = DataConfig.builder(fmt, seqLen).optSkipBadRows(skipBadRows).build();
            Dataset.Split split = DataLoader.loadSplit(data, evalData, evalData == null ? evalSplit : 0, dc, tok);
            int padId = DataLoader.defaultPadId(tok);
            System.err.printf(Locale.ROOT, "data: %d training examples, %d held out%n", split.train().size(), split.eval() == null ? 0 : split.eval().size());

            LoraConfig.Builder cb = LoraConfig.builder().r(r).alpha(alpha).dropout(dropout).init(init).rslora(rslora).dora(dora)
                    .bias(bias).baseModel(modelOptions.model.toString()).inferenceMode(false);
            if (targets.equalsIgnoreCase(LoraConfig.ALL_LINEAR)) cb.targetRegex(LoraConfig.ALL_LINEAR);
            else cb.targets(Arrays.stream(targets.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList());
            // classification: a `score` head on the last real token, trained in full through modules_to_save (as PEFT's SEQ_CLS)
            SequenceClassifier clf = fmt == DataFormat.CLASSIFICATION ? new SequenceClassifier(model, split.train().numClasses(), seed) : null;
            if (clf != null) {
                cb.modulesToSave(List.of("score")).taskType("SEQ_CLS");
                System.err.println("classification: labels " + split.train().labelNames());
            }
            LoraModel lm = new LoraModel(clf != null ? clf : model, seed);
            Calibration cal = Methods.get(method).needsCalibration()
                    ? CalibrationBatches.from(model, clf, split.train(), batch, seed, padId) : null;
            lm.add("default", cb.build(), mc, cal, System.err);
            long trainable = lm.trainableCount("default");
            long total = model.parameters().values().stream().mapToLong(t -> t.numel()).sum();
            System.err.printf(Locale.ROOT, "%s: %d modules, %,d trainable parameters (%.3f%% of %,d)%n",
                    method, lm.layers("default").size(), trainable, 100.0 * trainable / total, total);

            Batcher batcher = new Batcher(split.train(), Batcher.Options.training(batch, seed, padId));
            int nSteps = steps != null ? steps : (int) Math.ceil(epochs * batcher.batchesPerEpoch() / gradAccum);
            TrainingOptions opt = new TrainingOptions(nSteps, gradAccum, lr, weightDecay, LrSchedule.parse(schedule), warmup,
                    maxGradNorm, evalEvery, saveEvery, 1, patience, maxEvalBatches, seed, resume);
            Files.createDirectories(out);
            writeArgs(opt, lm.config("default"), mc);
            Dataset eval = split.eval() != null && !split.eval().isEmpty() ? split.eval() : null;
            Trainer.Result res = new Trainer(model, lm, "default", batcher, eval, batch, padId, opt, out, System.err).withClassifier(clf).run();
            System.err.printf(Locale.ROOT, "done: %d steps in %.1f s; adapter saved in %s%n", res.steps(), res.seconds(), out);
            if (res.lastEval() != null)
                System.out.printf(Locale.ROOT, "eval loss %.4f, perplexity %.3f, %s accuracy %.4f%n", res.lastEval().loss(),
                        res.lastEval().perplexity(), clf != null ? "classification" : "token", res.lastEval().accuracy());
        }
        return 0;
    }

    private void writeArgs(TrainingOptions opt, LoraConfig cfg, MethodConfig mc) throws java.io.IOException {
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("model", modelOptions.model.toString());
        args.put("data", data.toString());
        args.put("eval_data", evalData == null ? null : evalData.toString());
        args.put("eval_split", evalSplit);
        args.put("format", format);
        args.put("batch", batch);
        args.put("seq_len", seqLen);
        args.put("method", method);
        args.put("method_options", mc.options());
        args.put("training", opt);
        args.put("lora", cfg.toJson());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve("training_args.json").toFile(), args);
    }
}
