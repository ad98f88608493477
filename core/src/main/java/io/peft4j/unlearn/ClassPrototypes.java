package io.peft4j.unlearn;

import io.peft4j.autograd.TensorOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tensor.Tensor;

/**
 * GS-LoRA++'s class prototypes: for each class, the mean of the features the classification head sees (the final
 * hidden state at each row's last real token), over the training rows of that class, computed once with the model
 * as it was before forgetting. The authors' code ({@code calculate_prototypes}) does the same with the ViT's
 * [CLS] embedding, in evaluation mode, without gradients.
 *
 * <p>Which adapters are on while computing is the caller's business: {@code peft4j forget} activates only the
 * classifier being edited (the forgetting adapter off), so the prototypes are the original model's.
 *
 * @param means  per-class mean feature; a class without rows keeps zeros  // [numClasses, hidden]
 * @param counts rows that went into each class's mean  // [numClasses]
 */
public record ClassPrototypes(Tensor means, long[] counts) {
    /** The features the head of {@code clf} sees for a batch: the final hidden state of each row's last real token [batch, hidden]. */
    public static Tensor features(SequenceClassifier clf, Batch b) {
        Tensor hidden = clf.model().hidden(b.ids(), b.batch(), b.seqLen(), null);      // [B*T, d]
        int[] last = new int[b.batch()];
        for (int r = 0; r < b.batch(); r++) {
            if (b.lengths()[r] < 1 || b.lengths()[r] > b.seqLen()) throw new IllegalArgumentException("row " + r + " has length " + b.lengths()[r]);
            last[r] = r * b.seqLen() + b.lengths()[r] - 1;
        }
        return TensorOps.embedding(hidden, last);                                       // gather rows -> [B, d]
    }

    /** Class-mean features of {@code data} under the classifier as it is now (no tape: nothing is recorded). */
    public static ClassPrototypes compute(SequenceClassifier clf, Dataset data, int batchSize, int padId) {
        int c = clf.numLabels(), d = clf.model().config().hiddenSize;
        double[] sum = new double[c * d];              // [c, d] accumulated in double: thousands of rows
        long[] counts = new long[c];
        for (Batch b : Batcher.inOrder(data, batchSize, padId)) {
            if (b.classLabels() == null) throw new IllegalArgumentException("prototypes need class labels");
            float[] f = features(clf, b).toFloatArray();
            for (int r = 0; r < b.batch(); r++) {
                int y = b.classLabels()[r];
                if (y < 0 || y >= c) throw new IllegalArgumentException("class label " + y + " outside the head's " + c + " classes");
                counts[y]++;
                for (int j = 0; j < d; j++) sum[y * d + j] += f[r * d + j];
            }
        }
        float[] m = new float[c * d];
        for (int y = 0; y < c; y++) if (counts[y] > 0) for (int j = 0; j < d; j++) m[y * d + j] = (float) (sum[y * d + j] / counts[y]);
        return new ClassPrototypes(Tensor.of(m, c, d), counts);
    }

    /** The prototype of each row's class, as a constant [labels.length, hidden]. */
    public Tensor rows(int[] labels) {
        int d = means.dim(1);
        float[] src = means.toFloatArray(), out = new float[labels.length * d];
        for (int r = 0; r < labels.length; r++) {
            if (counts[labels[r]] == 0) throw new IllegalArgumentException("class " + labels[r] + " has no prototype (no training rows)");
            System.arraycopy(src, labels[r] * d, out, r * d, d);
        }
        return Tensor.of(out, labels.length, d);
    }
}
