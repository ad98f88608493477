package io.peft4j.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class BatcherTest {
    /** n LM examples; example i has length 1 + i % 7 and ids starting at 1000 * i, so rows identify examples. */
    private static Dataset lmData(int n) {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 1 + i % 7;
            int[] ids = new int[len], labels = new int[len];
            for (int t = 0; t < len; t++) { ids[t] = 1000 * i + t; labels[t] = t % 3 == 0 ? Example.IGNORE : 1000 * i + t + 1; }
            ex.add(new Example(ids, labels));
        }
        return Dataset.of(ex);
    }

    private static int exampleOf(Batch b, int row) { return b.ids()[row * b.seqLen()] / 1000; }

    @Test
    void paddingIsRightWithIgnoredLabels() {
        Dataset ds = lmData(10);
        Batch b = new Batcher(ds, Batcher.Options.inOrder(4, 99)).next();
        assertEquals(4, b.batch());
        assertEquals(4, b.seqLen(), "padded to the longest row (example 3 has 4 tokens)");
        for (int r = 0; r < 4; r++) {
            Example e = ds.get(r);
            assertEquals(e.length(), b.lengths()[r]);
            for (int t = 0; t < b.seqLen(); t++) {
                int k = r * b.seqLen() + t;
                assertEquals(t < e.length() ? e.ids()[t] : 99, b.ids()[k]);
                assertEquals(t < e.length() ? e.labels()[t] : Example.IGNORE, b.labels()[k]);
            }
        }
        assertNull(b.classLabels());
        assertNull(b.weights());
        int targets = 0;
        for (int r = 0; r < 4; r++) targets += ds.get(r).targetCount();
        assertEquals(targets, b.targetCount());

        Batch fixed = new Batcher(ds, new Batcher.Options(3, false, 0, false, 0, 16)).next();
        assertEquals(16, fixed.seqLen());
        assertThrows(IllegalArgumentException.class, () -> new Batcher(ds, new Batcher.Options(3, false, 0, false, 0, 5)));
    }

    @Test
    void everyEpochVisitsEveryExampleOnceInADifferentOrder() {
        Dataset ds = lmData(23);
        Batcher b = new Batcher(ds, Batcher.Options.training(5, 42, 0));
        assertEquals(5, b.batchesPerEpoch());
        List<List<Integer>> epochs = new ArrayList<>();
        for (int e = 0; e < 3; e++) {
            List<Integer> seen = new ArrayList<>();
            for (int k = 0; k < b.batchesPerEpoch(); k++) {
                Batch batch = b.next();
                assertEquals(k < 4 ? 5 : 3, batch.batch(), "the last batch of an epoch is short");
                for (int r = 0; r < batch.batch(); r++) seen.add(exampleOf(batch, r));
            }
            assertEquals(23, new HashSet<>(seen).size(), "epoch " + e + " repeats an example");
            assertEquals(e, b.position().epoch());
            epochs.add(seen);
        }
        assertNotEquals(epochs.get(0), epochs.get(1));
        assertNotEquals(epochs.get(1), epochs.get(2));
        // Same seed, same order; a different seed, a different one.
        Batcher again = new Batcher(ds, Batcher.Options.training(5, 42, 0));
        List<Integer> first = new ArrayList<>();
        for (int k = 0; k < 5; k++) { Batch x = again.next(); for (int r = 0; r < x.batch(); r++) first.add(exampleOf(x, r)); }
        assertEquals(epochs.get(0), first);
        Batcher other = new Batcher(ds, Batcher.Options.training(5, 43, 0));
        List<Integer> otherFirst = new ArrayList<>();
        for (int k = 0; k < 5; k++) { Batch x = other.next(); for (int r = 0; r < x.batch(); r++) otherFirst.add(exampleOf(x, r)); }
        assertNotEquals(first, otherFirst);
    }

    @Test
    void dropLastKeepsOnlyFullBatches() {
        Dataset ds = lmData(23);
        Batcher b = new Batcher(ds, new Batcher.Options(5, true, 1, true, 0, 0));
        assertEquals(4, b.batchesPerEpoch());
        Set<Integer> seen = new HashSet<>();
        for (int k = 0; k < 4; k++) {
            Batch x = b.next();
            assertEquals(5, x.batch());
            for (int r = 0; r < 5; r++) seen.add(exampleOf(x, r));
        }
        assertEquals(20, seen.size());
        assertEquals(1, b.epoch(), "the next batch starts epoch 1");
        assertThrows(IllegalArgumentException.class, () -> new Batcher(lmData(3), new Batcher.Options(5, true, 1, true, 0, 0)));
    }

    @Test
    void resumeFromAnySavedPositionGivesTheSameBatches() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int trial = 0; trial < 20; trial++) {
            Dataset ds = lmData(1 + rnd.nextInt(40));
            Batcher.Options opt = new Batcher.Options(1 + rnd.nextInt(8), rnd.nextBoolean(), rnd.nextLong(),
                    rnd.nextBoolean() && ds.size() >= 8, 0, 0);
            Batcher ref = new Batcher(ds, opt);
            int stop = rnd.nextInt(3 * ref.batchesPerEpoch() + 1);
            for (int k = 0; k < stop; k++) ref.next();
            String saved = ref.position().encode();

            Batcher resumed = new Batcher(ds, opt);
            resumed.seek(Batcher.Position.parse(saved));
            for (int k = 0; k < 2 * ref.batchesPerEpoch() + 1; k++) {
                Batch a = ref.next(), b = resumed.next();
                assertArrayEquals(a.ids(), b.ids(), "trial " + trial + " batch " + k + " after resume at " + saved);
                assertArrayEquals(a.labels(), b.labels());
                assertArrayEquals(a.lengths(), b.lengths());
                assertEquals(a.seqLen(), b.seqLen());
            }
            assertEquals(ref.position(), resumed.position());
        }
    }

    @Test
    void resumeRejectsOtherDataOrSeed() {
        Dataset ds = lmData(10);
        Batcher b = new Batcher(ds, Batcher.Options.training(3, 7, 0));
        b.next();
        Batcher.Position p = b.position();
        assertEquals(p, Batcher.Position.parse(p.encode()));
        assertThrows(IllegalArgumentException.class, () -> new Batcher(ds, Batcher.Options.training(3, 8, 0)).seek(p));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Batcher(lmData(11), Batcher.Options.training(3, 7, 0)).seek(p));
        assertTrue(e.getMessage().contains("different data"));
        assertThrows(IllegalArgumentException.class, () -> Batcher.Position.parse("epoch=1,index=2"));
    }

    @Test
    void classificationBatchesCarryLabelsAndWeights() {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < 5; i++) ex.add(Example.classification(new int[] {1, 10 + i, 20 + i}, i % 2, i == 3 ? 0.5f : 1f));
        Dataset ds = new Dataset(ex, List.of("neg", "pos"), null);
        List<Batch> all = Batcher.allInOrder(ds, 2, 0);
        assertEquals(3, all.size());
        assertArrayEquals(new int[] {0, 1}, all.get(0).classLabels());
        assertArrayEquals(new float[] {1f, 0.5f}, all.get(1).weights());
        assertArrayEquals(new int[] {0}, all.get(2).classLabels());
        assertEquals(0, all.get(0).targetCount());
        assertThrows(IllegalArgumentException.class, () -> new Dataset(ex, List.of("only"), null));
        // Without names the class labels still reach the batches; mixing with LM examples is refused.
        assertArrayEquals(new int[] {0, 1}, Batcher.allInOrder(Dataset.of(ex), 2, 0).getFirst().classLabels());
        List<Example> mixed = new ArrayList<>(ex);
        mixed.add(new Example(new int[] {1}, new int[] {2}));
        assertThrows(IllegalArgumentException.class, () -> Dataset.of(mixed));
    }

    @Test
    void shuffledIsADeterministicPermutation() {
        Dataset ds = lmData(50);
        Dataset a = ds.shuffled(5), b = ds.shuffled(5), c = ds.shuffled(6);
        int[] ia = new int[50], ib = new int[50], ic = new int[50];
        for (int i = 0; i < 50; i++) { ia[i] = a.get(i).ids()[0] / 1000; ib[i] = b.get(i).ids()[0] / 1000; ic[i] = c.get(i).ids()[0] / 1000; }
        assertArrayEquals(ia, ib);
        assertFalse(Arrays.equals(ia, ic));
        int[] sorted = ia.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < 50; i++) assertEquals(i, sorted[i]);
        assertEquals(ds.fingerprint(), Dataset.of(ds.examples()).fingerprint());
        assertNotEquals(ds.fingerprint(), a.fingerprint(), "order is part of the fingerprint");
    }

    @Test
    void splitLastRounding() {
        Dataset ds = lmData(873);
        Dataset.Split s = ds.splitLast(0.1);
        assertEquals(786, s.train().size());
        assertEquals(87, s.eval().size());
        assertSame(ds.get(786), s.eval().get(0));
        assertSame(ds.get(872), s.eval().get(86));
        assertEquals(1, lmData(3).splitLast(0.1).eval().size(), "a positive fraction holds out at least one example");
        assertEquals(1, lmData(2).splitLast(0.9).train().size(), "and leaves at least one for training");
        assertThrows(IllegalArgumentException.class, () -> ds.splitLast(1.0));
    }
}
