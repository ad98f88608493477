package io.peft4j.data;

import java.util.Arrays;

/**
 * One training example as tokens. {@code labels[t]} is the target for position {@code t}, already shifted: the
 * token the model should predict after reading {@code ids[0..t]}, or {@link #IGNORE} where no loss is taken.
 * Classification examples carry {@code classLabel >= 0} and all-IGNORE token labels.
 *
 * @param ids        input token ids  // [n]
 * @param labels     next-token targets or IGNORE  // [n]
 * @param classLabel class index, or -1 for language-modelling examples
 * @param weight     loss weight of the whole example (1 unless the data gives one)
 * @param modalities the modality tag of each input token (0 = language, 1 = vision, ...), or null when the data
 *                   gives none (every token 0); read by modality-routed adapters (MM-LoRA)  // [n]
 */
public record Example(int[] ids, int[] labels, int classLabel, float weight, int[] modalities) {
    /** The label value that takes no loss (PyTorch's ignore_index). */
    public static final int IGNORE = -100;

    public Example {
        if (ids == null || labels == null) throw new IllegalArgumentException("ids and labels are required");
        if (ids.length != labels.length)
            throw new IllegalArgumentException("ids has " + ids.length + " tokens but labels has " + labels.length);
        if (ids.length == 0) throw new IllegalArgumentException("an example needs at least one token");
        if (classLabel < -1) throw new IllegalArgumentException("class label " + classLabel + " (expected >= 0, or -1 for none)");
        if (!(weight >= 0) || Float.isInfinite(weight)) throw new IllegalArgumentException("example weight " + weight + " (expected finite >= 0)");
        if (modalities != null) {
            if (modalities.length != ids.length)
                throw new IllegalArgumentException("ids has " + ids.length + " tokens but modalities has " + modalities.length);
            for (int m : modalities) if (m < 0) throw new IllegalArgumentException("modality tag " + m + " (expected >= 0)");
        }
    }

    /** An example without modality tags. */
    public Example(int[] ids, int[] labels, int classLabel, float weight) { this(ids, labels, classLabel, weight, null); }

    /** A language-modelling example with weight 1. */
    public Example(int[] ids, int[] labels) { this(ids, labels, -1, 1f); }

    /** A classification example: the label id and no token targets. */
    public static Example classification(int[] ids, int classLabel, float weight) {
        int[] labels = new int[ids.length];
        Arrays.fill(labels, IGNORE);
        return new Example(ids, labels, classLabel, weight);
    }

    public int length() { return ids.length; }

    /** How many positions take a token loss. */
    public int targetCount() {
        int n = 0;
        for (int l : labels) if (l != IGNORE) n++;
        return n;
    }
}
