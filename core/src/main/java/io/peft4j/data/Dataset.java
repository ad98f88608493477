package io.peft4j.data;

import java.util.ArrayList;
import java.util.List;

/**
 * An immutable list of {@link Example}s in file order, with the class label names for classification data and the
 * report of how it was loaded. Shuffling and splitting return new datasets sharing the examples.
 */
public final class Dataset {
    private final List<Example> examples;
    private final List<String> labelNames; // null unless classification
    private final LoadReport report;       // null for datasets built by hand
    private final boolean classification;
    private long fingerprint;              // 0 until computed

    public Dataset(List<Example> examples, List<String> labelNames, LoadReport report) {
        this.examples = List.copyOf(examples);
        this.labelNames = labelNames == null ? null : List.copyOf(labelNames);
        this.report = report;
        boolean cls = labelNames != null || (!this.examples.isEmpty() && this.examples.getFirst().classLabel() >= 0);
        for (int i = 0; i < this.examples.size(); i++) {
            int c = this.examples.get(i).classLabel();
            if (cls != (c >= 0))
                throw new IllegalArgumentException("example " + i + (c >= 0 ? " has" : " lacks")
                        + " a class label, unlike the rest of the dataset (classification and LM examples cannot mix)");
            if (labelNames != null && c >= labelNames.size())
                throw new IllegalArgumentException("example " + i + " has class label " + c + " but there are "
                        + labelNames.size() + " label names");
        }
        this.classification = cls;
    }

    /** A dataset of examples with no label names and no load report. */
    public static Dataset of(List<Example> examples) { return new Dataset(examples, null, null); }

    public int size() { return examples.size(); }
    public boolean isEmpty() { return examples.isEmpty(); }
    public Example get(int i) { return examples.get(i); }
    public List<Example> examples() { return examples; }

    /** Class names in label-index order, or null if this is not classification data. */
    public List<String> labelNames() { return labelNames; }

    /** Whether the examples carry class labels (then batches carry them too). */
    public boolean isClassification() { return classification; }

    /** Number of classes, or 0 if this is not classification data or the names are unknown. */
    public int numClasses() { return labelNames == null ? 0 : labelNames.size(); }

    /** How the file this data came from was loaded (shared by slices and shuffles); null if not built by {@link DataLoader}. */
    public LoadReport report() { return report; }

    /** Whether any example has a weight other than 1 (then batches carry weights). */
    public boolean hasWeights() {
        for (Example e : examples) if (e.weight() != 1f) return true;
        return false;
    }

    /** The longest example, in tokens. */
    public int maxLength() {
        int m = 0;
        for (Example e : examples) m = Math.max(m, e.length());
        return m;
    }

    public long tokenCount() {
        long n = 0;
        for (Example e : examples) n += e.length();
        return n;
    }

    public long targetCount() {
        long n = 0;
        for (Example e : examples) n += e.classLabel() >= 0 ? 1 : e.targetCount();
        return n;
    }

    /** Examples {@code [from, to)} as a dataset with the same label names and load report. */
    public Dataset slice(int from, int to) {
        return new Dataset(examples.subList(from, to), labelNames, report);
    }

    /** A copy in a deterministic random order that depends only on {@code seed} and the size. */
    public Dataset shuffled(long seed) {
        int[] perm = permutation(examples.size(), seed);
        List<Example> out = new ArrayList<>(examples.size());
        for (int i : perm) out.add(examples.get(i));
        return new Dataset(out, labelNames, report);
    }

    /** A training part and a held-out part. */
    public record Split(Dataset train, Dataset eval) {}

    /**
     * Holds out the LAST {@code fraction} of the examples in file order (not a random sample, so the held-out set
     * is the same across runs and tools): {@code round(fraction * size)} examples, at least 1 and leaving at least 1
     * for training when {@code fraction > 0}. A fraction of 0 gives an empty eval set.
     */
    public Split splitLast(double fraction) {
        if (!(fraction >= 0 && fraction < 1)) throw new IllegalArgumentException("eval fraction must be in [0, 1), got " + fraction);
        int n = examples.size();
        int k = (int) Math.round(fraction * n);
        if (fraction > 0) {
            if (n < 2) throw new IllegalArgumentException("cannot hold out " + fraction + " of " + n + " example(s)");
            k = Math.max(1, Math.min(n - 1, k));
        }
        return new Split(slice(0, n - k), slice(n - k, n));
    }

    /**
     * A 64-bit hash of every example's tokens, labels, class, weight and modality tags, in order: a checkpoint records it so a
     * resume on different data is caught.
     */
    public long fingerprint() {
        long h = fingerprint;
        if (h != 0) return h;
        h = 0xcbf29ce484222325L;
        for (Example e : examples) {
            h = mix(h, e.ids().length);
            for (int v : e.ids()) h = mix(h, v);
            for (int v : e.labels()) h = mix(h, v);
            h = mix(h, e.classLabel());
            h = mix(h, Float.floatToIntBits(e.weight()));
            if (e.modalities() != null) for (int v : e.modalities()) h = mix(h, v);   // untagged data keeps its old fingerprint
        }
        if (h == 0) h = 1;
        fingerprint = h;
        return h;
    }

    private static long mix(long h, int v) {
        return (h ^ v) * 0x100000001b3L;
    }

    /**
     * A permutation of {@code 0..n-1} from a Fisher-Yates shuffle driven by SplitMix64 (written out here so the
     * order does not depend on the JDK's random generators).
     */
    static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        long state = seed;
        for (int i = n - 1; i > 0; i--) {
            state += 0x9E3779B97F4A7C15L;
            long z = state;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z ^= z >>> 31;
            int j = (int) Long.remainderUnsigned(z, i + 1); // modulo bias < 2^-32 for any int-sized dataset
            int t = p[i]; p[i] = p[j]; p[j] = t;
        }
        return p;
    }

    @Override
    public String toString() {
        return "Dataset[" + examples.size() + " examples" + (labelNames != null ? ", labels " + labelNames : "") + "]";
    }
}
