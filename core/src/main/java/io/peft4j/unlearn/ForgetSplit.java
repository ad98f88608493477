package io.peft4j.unlearn;

import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.data.DataConfig;
import io.peft4j.models.CausalLM;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.train.Evaluator;
import io.peft4j.data.DataException;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.data.FileFormat;
import io.peft4j.tokenizer.Tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Which examples a model must forget and which it must keep: the two halves of one dataset. Either by class (for
 * classification data: every example of the named classes is forgotten, as GS-LoRA forgets whole classes) or by a
 * per-row boolean field (any data format: rows with {@code "forget": true} are forgotten, {@code false} kept).
 *
 * @param forget  the examples to forget (same label names as the source)
 * @param retain  the examples to keep
 * @param forgetClasses the forgotten class indices (empty when split by a row field)
 */
public record ForgetSplit(Dataset forget, Dataset retain, Set<Integer> forgetClasses) {
    public ForgetSplit {
        forgetClasses = Set.copyOf(forgetClasses);
    }

    /**
     * Splits classification data by class name. Every name must be one of the data's label names, and at least one
     * class must stay (a model cannot forget everything it classifies and keep a meaningful head).
     */
    public static ForgetSplit byClasses(Dataset data, List<String> classNames) {
        if (!data.isClassification() || data.labelNames() == null)
            throw new IllegalArgumentException("forgetting by class needs classification data with label names");
        if (classNames.isEmpty()) throw new IllegalArgumentException("no class to forget was given");
        Set<Integer> idx = new LinkedHashSet<>();
        for (String n : classNames) {
            int i = data.labelNames().indexOf(n);
            if (i < 0) throw new IllegalArgumentException("class to forget '" + n + "' is not a label of the data; labels are " + data.labelNames());
            idx.add(i);
        }
        if (idx.size() >= data.numClasses())
            throw new IllegalArgumentException("cannot forget every class " + data.labelNames() + ": at least one must be kept");
        List<Example> f = new ArrayList<>(), r = new ArrayList<>();
        for (Example e : data.examples()) (idx.contains(e.classLabel()) ? f : r).add(e);
        return new ForgetSplit(new Dataset(f, data.labelNames(), data.report()), new Dataset(r, data.labelNames(), data.report()), idx);
    }

    /** Held-out scores on both halves. */
    public record Scores(Evaluator.Result forget, Evaluator.Result retain) {}

    /**
     * Loss and accuracy on the forgotten and the kept examples separately (GS-LoRA's metrics: forgotten accuracy
     * should fall to chance or below, kept accuracy stay): class accuracy with a classifier {@code clf}, else the
     * causal LM's next-token loss and accuracy.
     */
    public Scores evaluate(CausalLM lm, SequenceClassifier clf, int batchSize, int padId, AdapterRuntime runtime) {
        return new Scores(score(lm, clf, forget, batchSize, padId, runtime), score(lm, clf, retain, batchSize, padId, runtime));
    }

    private static Evaluator.Result score(CausalLM lm, SequenceClassifier clf, Dataset d, int batchSize, int padId, AdapterRuntime rt) {
        return clf != null ? Evaluator.evaluateClassification(clf, d, batchSize, padId, 0, rt) : Evaluator.evaluate(lm, d, batchSize, padId, 0, rt);
    }

    /** Each half's last {@code fraction} (in file order) held out: {train, eval} splits. */
    public ForgetSplit[] splitLast(double fraction) {
        Dataset.Split f = forget.splitLast(fraction), r = retain.splitLast(fraction);
        return new ForgetSplit[] {new ForgetSplit(f.train(), r.train(), forgetClasses), new ForgetSplit(f.eval(), r.eval(), forgetClasses)};
    }

    /** The subset of {@code data} whose class is (or is not) one of {@code classes}. */
    public static Dataset ofClasses(Dataset data, Set<Integer> classes, boolean in) {
        List<Example> out = new ArrayList<>();
        for (Example e : data.examples()) if (classes.contains(e.classLabel()) == in) out.add(e);
        return new Dataset(out, data.labelNames(), data.report());
    }

    /**
     * Splits a JSONL/JSON/CSV file by a boolean row field: the file is loaded twice through {@link DataLoader} with a
     * filter on {@code field} ({@code true} rows, then {@code false} rows), after checking that every row has the field
     * set to a boolean (or the strings "true"/"false"); the first row that has not is named by file and line.
     * Classification label names are shared (taken from the whole file) so both halves map labels alike.
     */
    public static ForgetSplit byField(Path file, DataConfig cfg, Tokenizer tok, String field) throws IOException {
        checkField(file, cfg, field);
        List<String> names = null;
        if (cfg.format() == io.peft4j.data.DataFormat.CLASSIFICATION) names = DataLoader.load(file, cfg, tok).labelNames();
        Dataset f = DataLoader.load(file, cfg.toBuilder().optFilter(field, "true").build(), tok, names);
        Dataset r = DataLoader.load(file, cfg.toBuilder().optFilter(field, "false").build(), tok, names);
        if (f.isEmpty()) throw new DataException(file.toString(), 0, "no row has " + field + " = true: nothing to forget");
        if (r.isEmpty()) throw new DataException(file.toString(), 0, "no row has " + field + " = false: nothing to keep");
        return new ForgetSplit(f, r, Set.of());
    }

    /** Fails on the first JSONL row whose {@code field} is missing or not a boolean (other layouts: left to the loader's filter counts). */
    static void checkField(Path file, DataConfig cfg, String field) throws IOException {
        FileFormat ff = cfg.fileFormat() != null ? cfg.fileFormat() : FileFormat.forPath(file);
        if (ff != FileFormat.JSONL) return;
        ObjectMapper json = new ObjectMapper();
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = in.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode row;
                try {
                    row = json.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    throw new DataException(file.toString(), n, "not valid JSON: " + e.getOriginalMessage());
                }
                JsonNode v = row == null ? null : row.get(field);
                boolean ok = v != null && (v.isBoolean() || (v.isTextual() && (v.textValue().equals("true") || v.textValue().equals("false"))));
                if (!ok) throw new DataException(file.toString(), n, "field '" + field + "' must be true or false on every row, got "
                        + (v == null ? "no such field" : v.toString()));
            }
        }
    }
}
