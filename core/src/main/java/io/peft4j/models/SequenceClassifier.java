package io.peft4j.models;

import io.peft4j.autograd.TensorOps;
import io.peft4j.nn.Embedding;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A decoder used as a sequence classifier, as Hugging Face's {@code *ForSequenceClassification}: a {@code score}
 * head [numLabels, d] (no bias) applied to the final hidden state of each row's last real token. The head starts
 * random (N(0, 0.02), as HF initialises a missing head); with PEFT it is trained through {@code modules_to_save}.
 */
public final class SequenceClassifier implements Module {
    private final CausalLM lm;
    private final Linear score;     // [numLabels, d]

    public SequenceClassifier(CausalLM lm, int numLabels, long seed) {
        if (numLabels < 2) throw new IllegalArgumentException("a classifier needs at least 2 labels, got " + numLabels);
        this.lm = lm;
        this.score = new Linear("score", Tensor.randn(seed, 0.02f, numLabels, lm.config().hiddenSize), null);
    }

    public CausalLM model() { return lm; }
    public Linear score() { return score; }
    public int numLabels() { return score.outFeatures(); }

    /** Class logits [batch, numLabels] for right-padded rows of {@code lengths[b]} real tokens. */
    public Tensor logits(int[] ids, int batch, int seqLen, int[] lengths) {
        Tensor hidden = lm.hidden(ids, batch, seqLen, null);                 // [B*T, d]
        int[] last = new int[batch];
        for (int b = 0; b < batch; b++) {
            if (lengths[b] < 1 || lengths[b] > seqLen) throw new IllegalArgumentException("row " + b + " has length " + lengths[b]);
            last[b] = b * seqLen + lengths[b] - 1;
        }
        return score.forward(TensorOps.embedding(hidden, last));              // gather rows: [B, d] -> [B, C]
    }

    @Override
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>(lm.linears());
        m.put("score", score);
        return m;
    }

    @Override
    public Map<String, Embedding> embeddings() { return lm.embeddings(); }

    @Override
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> m = new LinkedHashMap<>(lm.parameters());
        m.put("score.weight", score.weight());
        return m;
    }
}
