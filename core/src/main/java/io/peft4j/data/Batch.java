package io.peft4j.data;

/**
 * A padded batch of {@code batch} rows of {@code seqLen} positions, row-major. Rows are right-padded: positions
 * {@code t >= lengths[b]} hold the pad id and label {@link Example#IGNORE}. {@code labels} are next-token targets
 * already aligned with {@code ids} (see {@link Example}).
 *
 * @param ids         token ids  // [batch * seqLen]
 * @param labels      next-token targets or IGNORE  // [batch * seqLen]
 * @param batch       rows
 * @param seqLen      positions per row
 * @param classLabels class index per row, or null for language-modelling data  // [batch]
 * @param weights     loss weight per row, or null when the data has none (all 1)  // [batch]
 * @param lengths     real (unpadded) tokens per row: the attention mask, and the last-token index for classification  // [batch]
 * @param tags        per-token modality tags (padding 0), or null when the data has none (all 0)  // [batch * seqLen]
 */
public record Batch(int[] ids, int[] labels, int batch, int seqLen, int[] classLabels, float[] weights, int[] lengths, int[] tags) {
    public Batch {
        if (ids.length != batch * seqLen || labels.length != batch * seqLen || lengths.length != batch)
            throw new IllegalArgumentException("batch arrays do not match [" + batch + " x " + seqLen + "]");
        if (classLabels != null && classLabels.length != batch) throw new IllegalArgumentException("classLabels length != batch");
        if (weights != null && weights.length != batch) throw new IllegalArgumentException("weights length != batch");
        if (tags != null && tags.length != batch * seqLen) throw new IllegalArgumentException("tags length != batch * seqLen");
    }

    /** A batch without modality tags. */
    public Batch(int[] ids, int[] labels, int batch, int seqLen, int[] classLabels, float[] weights, int[] lengths) {
        this(ids, labels, batch, seqLen, classLabels, weights, lengths, null);
    }

    /** Positions that take a token loss. */
    public int targetCount() {
        int n = 0;
        for (int l : labels) if (l != Example.IGNORE) n++;
        return n;
    }

    /** Real tokens over all rows. */
    public int tokenCount() {
        int n = 0;
        for (int l : lengths) n += l;
        return n;
    }
}
