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

    @Override
    public Integer call() throws Exception {
        DataFormat fmt = DataFormat.byName(format);
        try (CausalLM model = modelOptions.loadCausalLM(); Tokenizer tok = modelOptions.loadTokenizer()) {
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
}
