package io.peft4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.adapters.LoraModel;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.train.Evaluator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code peft4j eval}: loss, perplexity and token accuracy of a model (with adapters) on a dataset. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Evaluate a model (optionally with adapters) on a dataset: loss, perplexity, token accuracy. "
                + "With --json the last stdout line is one JSON object.")
public final class EvalCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;
    @Mixin AdapterOptions adapterOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE")
    Path data;
    @Option(names = "--format", required = true, paramLabel = "FMT", description = "text | completion | chat")
    String format;
    @Option(names = "--last-fraction", paramLabel = "F", description = "evaluate only the last fraction of the data (e.g. 0.1, the held-out split of train)")
    Double lastFraction;
    @Option(names = "--seq-len", defaultValue = "256")
    int seqLen;
    @Option(names = "--batch", defaultValue = "8")
    int batch;
    @Option(names = "--max-batches", defaultValue = "0", description = "cap on batches (0 = all)")
    int maxBatches;
    @Option(names = "--skip-bad-rows")
    boolean skipBadRows;
    @Option(names = "--json", description = "print one JSON object on the last line of stdout")
    boolean json;
    @Option(names = "--forget-classes", split = ",", paramLabel = "NAME", description = "report the forgotten classes and the kept ones separately (classification)")
    java.util.List<String> forgetClasses;
    @Option(names = "--forget-field", paramLabel = "FIELD", description = "report rows with FIELD true (forgotten) and false (kept) separately")
    String forgetField;

    @Override
    public Integer call() throws Exception {
        DataFormat fmt = DataFormat.byName(format);
        try (CausalLM model = modelOptions.loadCausalLM(); Tokenizer tok = modelOptions.loadTokenizer()) {
            if (forgetClasses != null || forgetField != null) return forgetReport(model, tok, fmt);
            Dataset ds = DataLoader.load(data, DataConfig.builder(fmt, seqLen).optSkipBadRows(skipBadRows).build(), tok);
            if (lastFraction != null) ds = ds.splitLast(lastFraction).eval();
            Evaluator.Result r;
            if (fmt == DataFormat.CLASSIFICATION) {
                // the adapter's modules_to_save copy of `score` replaces this fresh head
                SequenceClassifier clf = new SequenceClassifier(model, ds.numClasses(), 0);
                LoraModel lm = adapterOptions.apply(clf);
                if (lm == null) System.err.println("warning: no --adapter: the classification head is untrained");
                r = Evaluator.evaluateClassification(clf, ds, batch, DataLoader.defaultPadId(tok), maxBatches, lm == null ? null : lm.runtime());
            } else {
                LoraModel lm = adapterOptions.apply(model);
                // the runtime carries per-token tags (MM-LoRA's modalities) from the batches to the adapter layers
                r = Evaluator.evaluate(model, ds, batch, DataLoader.defaultPadId(tok), maxBatches, lm == null ? null : lm.runtime());
            }
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("loss", r.loss());
                o.put("perplexity", r.perplexity());
                o.put(fmt == DataFormat.CLASSIFICATION ? "accuracy" : "token_accuracy", r.accuracy());
                o.put("tokens", r.tokens());
                System.out.println(new ObjectMapper().writeValueAsString(o));
            } else {
                System.out.printf(Locale.ROOT, "loss %.4f  perplexity %.3f  %s accuracy %.4f  (%d %s)%n", r.loss(), r.perplexity(),
                        fmt == DataFormat.CLASSIFICATION ? "classification" : "token", r.accuracy(), r.tokens(),
                        fmt == DataFormat.CLASSIFICATION ? "rows" : "target tokens");
            }
        }
        return 0;
    }

    /** Forgetting's metrics: loss and accuracy on the forgotten and the kept data separately (GS-LoRA). */
    private int forgetReport(CausalLM model, Tokenizer tok, DataFormat fmt) throws java.io.IOException {
        if (forgetClasses != null && forgetField != null) throw new IllegalArgumentException("give --forget-classes or --forget-field, not both");
        DataConfig dc = DataConfig.builder(fmt, seqLen).optSkipBadRows(skipBadRows).build();
        io.peft4j.unlearn.ForgetSplit split;
        if (forgetClasses != null) {
            if (fmt != DataFormat.CLASSIFICATION) throw new IllegalArgumentException("--forget-classes needs --format classification");
            Dataset ds = DataLoader.load(data, dc, tok);
            if (lastFraction != null) ds = ds.splitLast(lastFraction).eval();
            split = io.peft4j.unlearn.ForgetSplit.byClasses(ds, forgetClasses);
        } else {
            split = io.peft4j.unlearn.ForgetSplit.byField(data, dc, tok, forgetField);
            if (lastFraction != null) split = split.splitLast(lastFraction)[1];
        }
        SequenceClassifier clf = fmt == DataFormat.CLASSIFICATION ? new SequenceClassifier(model, split.forget().numClasses(), 0) : null;
        LoraModel lm = adapterOptions.apply(clf != null ? clf : model);
        if (lm == null && clf != null) System.err.println("warning: no --adapter: the classification head is untrained");
        io.peft4j.unlearn.ForgetSplit.Scores s = split.evaluate(model, clf, batch, DataLoader.defaultPadId(tok), lm == null ? null : lm.runtime());
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("forget_loss", s.forget().loss());
            o.put("forget_accuracy", s.forget().accuracy());
            o.put("forget_count", s.forget().tokens());
            o.put("retain_loss", s.retain().loss());
            o.put("retain_accuracy", s.retain().accuracy());
            o.put("retain_count", s.retain().tokens());
            System.out.println(new ObjectMapper().writeValueAsString(o));
        } else ForgetCommand.print("eval", s, clf != null);
        return 0;
    }
}
