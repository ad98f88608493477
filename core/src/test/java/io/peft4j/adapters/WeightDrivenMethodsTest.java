package io.peft4j.adapters;

import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * DESIGN.md's invariants for SLoRA, NLoRA, IntTune and LoLDU over their option variants (the shared
 * {@link MethodInvariantsTest} runs the defaults): identity at init (or a rewritten base with the same outputs),
 * merged == unmerged, finite-difference gradients of the trainable factors, save/load, export to a plain LoRA on the
 * unchanged base, and that a training step moves only the factors the method trains.
 */
class WeightDrivenMethodsTest {
    record Row(String label, String method, Map<String, String> options) {
        @Override public String toString() { return label; }
        MethodConfig methodConfig() { return MethodConfig.of(method, options); }
    }

    static Stream<Row> rows() {
        return Stream.of(
                new Row("slora", "slora", Map.of()),
                new Row("nlora", "nlora", Map.of()),
                new Row("nlora square core p=0", "nlora", Map.of("oversample", "0")),
                new Row("nlora random p=2", "nlora", Map.of("sketch", "random", "oversample", "2")),
                new Row("nlora gaussian p=3", "nlora", Map.of("sketch", "gaussian", "oversample", "3")),
                new Row("nlora submatrix core", "nlora", Map.of("core", "submatrix")),
                new Row("inttune", "inttune", Map.of()),
                new Row("inttune gaussian", "inttune", Map.of("sketch", "gaussian")),
                new Row("loldu", "loldu", Map.of()),
                new Row("loldu zeros, frozen scale", "loldu", Map.of("diag_init", "zeros", "train_scale", "false")),
                new Row("loldu uniform", "loldu", Map.of("diag_init", "uniform")));
    }

    private static final LoraConfig CONFIG = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj")
            .rankPattern("down_proj", 2).build();

    private static ToyModel toy() { return new ToyModel(1, 12, 20, 11, 2); }

    private static Tensor input() { return Tensor.randn(7, 1f, 5, 12); }

    private static LoraModel adapt(ToyModel m, Row row) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", CONFIG, row.methodConfig(), null, null);
        return lm;
    }

    /** Adds noise to every factor (trainable or frozen), so B != 0 and z != D: the adapter contributes for real. */
    private static void perturb(LoraModel lm, long seed) {
        int i = 0;
        for (LoraLayer l : lm.layers("default").values())
            for (Tensor t : new Tensor[] {l.loraA(), l.loraB(), l.mid(), l.gain()}) {
                if (t == null) continue;
                float[] d = t.data(), n = Tensor.randn(seed + i++, 0.2f, t.shape()).data();
                for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
            }
    }

    private static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    @ParameterizedTest
    @MethodSource("rows")
    void identityAtInit(Row row) {
        ToyModel m = toy();
        float[] before = m.forward(input()).toFloatArray();
        LoraModel lm = adapt(m, row);
        float[] after = m.forward(input()).toFloatArray();
        if (lm.baseOffsets("default").isEmpty()) assertArrayEquals(before, after, row + ": an adapter that starts at zero changes nothing");
        // W - s B0 A0 + s B0 A0 in F32: equal up to the rounding of that subtraction
        else assertClose(before, after, 3e-5f, row + ": rewritten base + adapter");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void mergedEqualsUnmerged(Row row) {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        float[] init = m.forward(input()).toFloatArray();
        perturb(lm, 50);
        float[] adapted = m.forward(input()).toFloatArray();
        assertTrue(maxDiff(init, adapted) > 1e-3, row + ": the perturbed adapter changes outputs");
        lm.merge();
        assertClose(adapted, m.forward(input()).toFloatArray(), 3e-5f, row + " merged");
        lm.unmerge();
        assertArrayEquals(adapted, m.forward(input()).toFloatArray(), row + ": unmerged");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void gradientsOfTrainableFactorsMatchFiniteDifferences(Row row) {
        ToyModel m = new ToyModel(1, 6, 7, 5, 1);
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", CONFIG.toBuilder().r(2).alpha(4).clearRankPattern().build(), row.methodConfig(), null, null);
        perturb(lm, 70);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        assertFalse(params.isEmpty(), row + " trains something");
        Tensor x = Tensor.randn(8, 1f, 3, 6);
        GradCheck.defaults().step(3e-3).check(row.label(), in -> m.forward(x), params.toArray(new Tensor[0]));
    }

    @ParameterizedTest
    @MethodSource("rows")
    void saveLoadAndPlainExportGiveTheSameOutputs(Row row, @TempDir Path dir) throws IOException {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        perturb(lm, 60);
        float[] adapted = m.forward(input()).toFloatArray();
        long trainable = lm.trainableCount("default");
        lm.save(dir.resolve("method"), "default");

        ToyModel fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 99);
        List<String> warnings = new ArrayList<>();
        lm2.load(dir.resolve("method"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertArrayEquals(adapted, fresh.forward(input()).toFloatArray(), row + ": reloaded");
        assertEquals(trainable, lm2.trainableCount("default"), row + ": same trainable count after reload");
        assertEquals(lm.parameters("default").keySet(), lm2.parameters("default").keySet(), row + ": same trainable factors");

        lm.exportPlainLora("default").save(dir.resolve("plain"));
        ToyModel original = toy();
        new LoraModel(original, 5).load(dir.resolve("plain"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertClose(adapted, original.forward(input()).toFloatArray(), 3e-5f, row + ": plain LoRA export on the unchanged base");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void aTrainingStepMovesOnlyTheTrainedFactors(Row row) {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        perturb(lm, 80);   // SLoRA's zero B would leave A and M without gradient at step 0
        Map<String, float[]> before = new LinkedHashMap<>();
        lm.layers("default").forEach((k, l) -> {
            before.put(k + ".A", l.loraA().toFloatArray());
            before.put(k + ".B", l.loraB().toFloatArray());
            if (l.mid() != null) before.put(k + ".M", l.mid().toFloatArray());
            if (l.gain() != null) before.put(k + ".gain", l.gain().toFloatArray());
        });
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        for (Tensor p : params) p.clearGrad();
        try (Tape tape = Tape.record()) {
            Tensor loss = NnOps.crossEntropy(m.forward(input()), new int[] {1, 2, 3, 4, 5}, -100);
            tape.backward(loss);
        }
        for (Tensor p : params) {
            float[] d = p.data(), g = p.grad().data();
            for (int i = 0; i < p.numel(); i++) d[p.dataOffset() + i] -= 0.1f * g[i];
        }
        lm.layers("default").forEach((k, l) -> {
            check(row, k + ".A", l.loraA(), before);
            check(row, k + ".B", l.loraB(), before);
            if (l.mid() != null) check(row, k + ".M", l.mid(), before);
            if (l.gain() != null) check(row, k + ".gain", l.gain(), before);
        });
    }

    private static void check(Row row, String key, Tensor t, Map<String, float[]> before) {
        boolean moved = maxDiff(before.get(key), t.toFloatArray()) > 0;
        assertEquals(t.requiresGrad(), moved, row + ": " + key + (t.requiresGrad() ? " trains and must move" : " is frozen and must not move"));
    }

    @Test
    void nloraWithoutResidualStartsAtWPlusTheSketch() {
        ToyModel ref = toy(), m = toy();
        LoraModel lm = adapt(m, new Row("nlora no residual", "nlora", Map.of("residual", "false")));
        assertTrue(lm.baseOffsets("default").isEmpty());
        // the same outputs as the base with W + s B M A merged by hand
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            Tensor w = ref.linears().get(e.getKey()).weight().copyToF32();
            float[] wd = w.data(), dd = e.getValue().deltaWeight().data();
            for (int i = 0; i < wd.length; i++) wd[i] += dd[i];
            ref.linears().get(e.getKey()).setWeight(w);
        }
        assertClose(ref.forward(input()).toFloatArray(), m.forward(input()).toFloatArray(), 3e-5f, "W + s B M A");
        assertTrue(maxDiff(toy().forward(input()).toFloatArray(), m.forward(input()).toFloatArray()) > 1e-3, "not an identity, by design");
    }
}
