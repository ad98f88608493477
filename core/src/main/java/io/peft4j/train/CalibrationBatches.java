package io.peft4j.train;

import io.peft4j.adapters.Calibration;
import io.peft4j.autograd.NnOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Calibration batches drawn from the training data (a shuffled stream of its own, so training's data order is not
 * disturbed), with the training loss: next-token cross-entropy, or the class loss with a classifier.
 */
public final class CalibrationBatches implements Calibration {
    private final CausalLM model;
    private final SequenceClassifier classifier;    // null for causal-LM data
    private final Batcher source;                   // null when the batches were given
    private final int available;
    private final List<Batch> batches = new ArrayList<>();

    /** Exactly these batches. */
    public CalibrationBatches(CausalLM model, SequenceClassifier classifier, List<Batch> batches) {
        if (batches.isEmpty()) throw new IllegalArgumentException("calibration needs at least one batch");
        this.model = model;
        this.classifier = classifier;
        this.source = null;
        this.batches.addAll(batches);
        this.available = batches.size();
    }

    private CalibrationBatches(CausalLM model, SequenceClassifier classifier, Batcher source) {
        this.model = model;
        this.classifier = classifier;
        this.source = source;
        this.available = source.batchesPerEpoch();
    }

    /**
     * Up to one epoch of batches of {@code batchSize} from {@code data}, shuffled with a seed derived from
     * {@code seed}, drawn only as a method asks for them.
     */
    public static CalibrationBatches from(CausalLM model, SequenceClassifier classifier, Dataset data, int batchSize, long seed, int padId) {
        return new CalibrationBatches(model, classifier, new Batcher(data, Batcher.Options.training(batchSize, seed ^ 0x5DEECE66DL, padId)));
    }

    @Override public int batches() { return available; }

    private Batch batch(int i) {
        if (i >= available) throw new IndexOutOfBoundsException("calibration batch " + i + " of " + available);
        while (batches.size() <= i) batches.add(source.next());
        return batches.get(i);
    }

    @Override
    public Tensor loss(int i) {
        Batch b = batch(i);
        return classifier != null
                ? NnOps.crossEntropy(classifier.logits(b.ids(), b.batch(), b.seqLen(), b.lengths()), b.classLabels(), Example.IGNORE)
                : NnOps.crossEntropy(model.forward(b.ids(), b.batch(), b.seqLen(), null), b.labels(), Example.IGNORE);
    }

    @Override
    public boolean[] realTokens(int i) {
        Batch b = batch(i);
        boolean[] real = new boolean[b.batch() * b.seqLen()];
        for (int r = 0; r < b.batch(); r++) for (int t = 0; t < b.lengths()[r]; t++) real[r * b.seqLen() + t] = true;
        return real;
    }
}
