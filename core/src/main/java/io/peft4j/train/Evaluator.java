package io.peft4j.train;

import io.peft4j.adapters.AdapterRuntime;
import io.peft4j.autograd.NnOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.tensor.Tensor;

/** Held-out loss, perplexity and next-token accuracy of a causal LM over a dataset (no tape: inference only). */
public final class Evaluator {
    private Evaluator() {}

    /**
     * @param loss       mean cross-entropy over every target token of the set
     * @param perplexity exp(loss)
     * @param accuracy   fraction of target tokens whose argmax prediction is right
     * @param tokens     target tokens evaluated
     */
    public record Result(double loss, double perplexity, double accuracy, long tokens) {}

    /** Evaluates up to {@code maxBatches} batches (0: all) of {@code batchSize} examples, in order. */
    public static Result evaluate(CausalLM model, Dataset data, int batchSize, int padId, int maxBatches) {
        return evaluate(model, data, batchSize, padId, maxBatches, null);
    }

    /**
     * As {@link #evaluate(CausalLM, Dataset, int, int, int)}, handing each batch's per-token modality tags to the
     * adapters' {@code runtime} (may be null) before its forward, as training does.
     */
    public static Result evaluate(CausalLM model, Dataset data, int batchSize, int padId, int maxBatches, AdapterRuntime runtime) {
        double sumLoss = 0;
        long tokens = 0, correct = 0;
        int n = 0;
        for (Batch b : Batcher.inOrder(data, batchSize, padId)) {
            if (maxBatches > 0 && n++ >= maxBatches) break;
            int count = b.targetCount();
            if (count == 0) continue;
            Tensor logits;
            if (runtime != null) runtime.tokenTags(b.tags());
            try {
                logits = model.forward(b.ids(), b.batch(), b.seqLen(), null);
            } finally {
                if (runtime != null) runtime.tokenTags(null);
            }
            float loss = NnOps.crossEntropy(logits, b.labels(), Example.IGNORE).getFlat(0);
            sumLoss += (double) loss * count;
            tokens += count;
            correct += argmaxHits(logits, b.labels());
        }
        if (tokens == 0) throw new IllegalArgumentException("evaluation data has no target tokens");
        double loss = sumLoss / tokens;
        return new Result(loss, Math.exp(loss), (double) correct / tokens, tokens);
    }

    /** Mean cross-entropy and accuracy of a sequence classifier over labelled rows (perplexity = exp(loss)). */
    public static Result evaluateClassification(io.peft4j.models.SequenceClassifier clf, Dataset data, int batchSize, int padId, int maxBatches) {
        return evaluateClassification(clf, data, batchSize, padId, maxBatches, null);
    }

    /** As {@link #evaluateClassification(io.peft4j.models.SequenceClassifier, Dataset, int, int, int)}, handing tags to {@code runtime} (may be null). */
    public static Result evaluateClassification(io.peft4j.models.SequenceClassifier clf, Dataset data, int batchSize, int padId, int maxBatches,
                                                AdapterRuntime runtime) {
        double sumLoss = 0;
        long rows = 0, correct = 0;
        int n = 0;
        for (Batch b : Batcher.inOrder(data, batchSize, padId)) {
            if (maxBatches > 0 && n++ >= maxBatches) break;
            if (b.classLabels() == null) throw new IllegalArgumentException("classification evaluation needs class labels");
            Tensor logits;
            if (runtime != null) runtime.tokenTags(b.tags());
            try {
                logits = clf.logits(b.ids(), b.batch(), b.seqLen(), b.lengths());
            } finally {
                if (runtime != null) runtime.tokenTags(null);
            }
            sumLoss += (double) NnOps.crossEntropy(logits, b.classLabels(), Example.IGNORE).getFlat(0) * b.batch();
            rows += b.batch();
            correct += argmaxHits(logits, b.classLabels());
        }
        if (rows == 0) throw new IllegalArgumentException("evaluation data has no rows");
        double loss = sumLoss / rows;
        return new Result(loss, Math.exp(loss), (double) correct / rows, rows);
    }

    static long argmaxHits(Tensor logits, int[] labels) {
        Tensor l = logits.contiguous();
        float[] d = l.data();
        int off = l.dataOffset(), v = l.dim(1);
        long hits = 0;
        for (int row = 0; row < labels.length; row++) {
            if (labels[row] == Example.IGNORE) continue;
            int best = 0;
            float bv = Float.NEGATIVE_INFINITY;
            for (int j = 0, base = off + row * v; j < v; j++) if (d[base + j] > bv) { bv = d[base + j]; best = j; }
            if (best == labels[row]) hits++;
        }
        return hits;
    }
}
