package io.peft4j.unlearn;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.SequenceClassifier;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ForgettingObjectiveTest {
    private static final int[] LABELS = {0, 2, 1, 2};

    private static Tensor logits() { return Tensor.randn(3, 1f, 4, 3).requiresGrad(true); }

    @Test
    void boundedForgetTermIsTheFormulaBelowTheBoundAndExactlyFlatAbove() {
        // CE of the batch, and its gradient, for reference
        Tensor x = logits();
        float ce;
        float[] dce;
        try (Tape t = Tape.record()) {
            Tensor l = NnOps.crossEntropy(x, LABELS);
            ce = l.getFlat(0);
            t.backward(l);
            dce = x.grad().toFloatArray();
        }
        // below the bound: max(0, BND - CE) = BND - CE, gradient -dCE (the forgotten CE is pushed up)
        x.clearGrad();
        float bnd = ce + 1.5f;
        try (Tape t = Tape.record()) {
            Tensor v = ForgettingObjective.bounded(NnOps.crossEntropy(x, LABELS), bnd);
            assertEquals(bnd - ce, v.getFlat(0), 1e-6);
            t.backward(v);
        }
        float[] g = x.grad().toFloatArray();
        for (int i = 0; i < g.length; i++) assertEquals(-dce[i], g[i], 1e-7);
        // at or past the bound: the term is 0 and so is every gradient entry (the loss stops pushing)
        for (float b : new float[] {ce - 0.5f, ce}) {
            x.clearGrad();
            try (Tape t = Tape.record()) {
                Tensor v = ForgettingObjective.bounded(NnOps.crossEntropy(x, LABELS), b);
                assertEquals(0f, v.getFlat(0));
                t.backward(TensorOps.add(v, TensorOps.scale(TensorOps.sum(x, false), 0f)));   // so x has a gradient buffer
            }
            for (float v : x.grad().toFloatArray()) assertEquals(0f, v, "gradient past BND " + b + " (CE " + ce + ")");
        }
    }

    @Test
    void boundedMatchesFiniteDifferencesAwayFromTheKink() {
        Tensor x = Tensor.of(new float[] {-2f, 0.3f, 1.1f, 4f, 2.6f, -0.7f}, 2, 3).requiresGrad(true);
        GradCheck.defaults().check("bounded", in -> ForgettingObjective.bounded(in[0], 2f), x);
    }

    @Test
    void prototypeDistanceIsKlOfSoftmaxesAndItsGradientMatchesFiniteDifferences() {
        Tensor f = Tensor.randn(7, 1f, 3, 5).requiresGrad(true), p = Tensor.randn(8, 1f, 3, 5);
        // KL(softmax(p) || softmax(f)), batch mean, computed here in double
        float[] fd = f.toFloatArray(), pd = p.toFloatArray();
        double want = 0;
        for (int r = 0; r < 3; r++) {
            double zf = 0, zp = 0;
            for (int j = 0; j < 5; j++) { zf += Math.exp(fd[r * 5 + j]); zp += Math.exp(pd[r * 5 + j]); }
            for (int j = 0; j < 5; j++) {
                double pj = Math.exp(pd[r * 5 + j]) / zp, qj = Math.exp(fd[r * 5 + j]) / zf;
                want += pj * Math.log(pj / qj);
            }
        }
        assertEquals(want / 3, ForgettingObjective.prototypeDistance(f, p, "kl").getFlat(0), 1e-5);
        assertEquals(0.0, ForgettingObjective.prototypeDistance(p.copyToF32(), p, "kl").getFlat(0), 1e-6, "a feature on its prototype");
        GradCheck.defaults().check("prototype kl", in -> ForgettingObjective.prototypeDistance(in[0], p, "kl"), f);
        GradCheck.defaults().check("prototype l2", in -> ForgettingObjective.prototypeDistance(in[0], p, "l2"), f);
        // the whole GS-LoRA++ forget term: w · max(0, BND_pro - KL), through the recorded ops
        GradCheck.defaults().check("bounded prototype term",
                in -> TensorOps.scale(ForgettingObjective.bounded(ForgettingObjective.prototypeDistance(in[0], p, "kl"), 18f), 0.5f), f);
    }

    @Test
    void prototypesAreClassMeansOfTheFrozenModelsFeaturesRowByRow() {
        SequenceClassifier clf = new SequenceClassifier(ForgetToy.model(), ForgetToy.CLASSES, 3);
        Dataset d = ForgetToy.data(10, 4);                      // rows of different lengths: batches of 4 are padded
        ClassPrototypes p = ClassPrototypes.compute(clf, d, 4, 0);
        int h = clf.model().config().hiddenSize;
        double[] sum = new double[ForgetToy.CLASSES * h];
        long[] n = new long[ForgetToy.CLASSES];
        for (Example e : d.examples()) {                        // one unpadded row at a time
            Batch b = Batcher.allInOrder(Dataset.of(List.of(e)), 1, 0).getFirst();
            float[] hid = clf.model().hidden(b.ids(), 1, b.seqLen(), null).toFloatArray();
            int last = e.length() - 1;
            for (int j = 0; j < h; j++) sum[e.classLabel() * h + j] += hid[last * h + j];
            n[e.classLabel()]++;
        }
        assertArrayEquals(n, p.counts());
        float[] got = p.means().toFloatArray();
        for (int i = 0; i < got.length; i++) assertEquals(sum[i] / n[i / h], got[i], 1e-4, "prototype entry " + i);
        assertArrayEquals(new int[] {ForgetToy.CLASSES, h}, p.means().shape());
    }
}
