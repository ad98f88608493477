package io.peft4j.adapters;

import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * DESIGN.md's invariants for every adapter method, one row per method: identity at init (or a rewritten base with
 * unchanged outputs), merged == unmerged and unmerge restores, gradients of every trainable factor match finite
 * differences, save -> load gives identical outputs, and the exported plain PEFT LoRA gives the same outputs on the
 * original, unchanged base.
 */
class MethodInvariantsTest {
    /** A method row: the method with options, and the LoRA config it runs with. */
    record Row(String label, String method, Map<String, String> options, LoraConfig config, boolean identityAtInit) {
        Row(String label, String method, Map<String, String> options, LoraConfig config) { this(label, method, options, config, true); }
        @Override public String toString() { return label; }
        MethodConfig methodConfig() { return MethodConfig.of(method, options); }
    }

    static {
        if (!Methods.exists(FactoredTestMethod.NAME)) Methods.register(new FactoredTestMethod(false));
        if (!Methods.exists(FactoredTestMethod.NAME_DIAG)) Methods.register(new FactoredTestMethod(true));
    }

    private static final LoraConfig BASE = LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj").build();
    /** With a rank_pattern, so per-module ranks go through init, save, load and export too. */
    private static final LoraConfig PATTERNED = BASE.toBuilder().rankPattern("down_proj", 2).build();

    static Stream<Row> rows() {
        return Stream.of(
                new Row("factored (test)", FactoredTestMethod.NAME, Map.of(), BASE),
                new Row("factored-diag (test)", FactoredTestMethod.NAME_DIAG, Map.of(), BASE),
                new Row("lora-ga", "lora-ga", Map.of(), BASE),
                new Row("eva", "eva", Map.of(), BASE),
                new Row("slora", "slora", Map.of(), BASE),
                new Row("slora (rank_pattern)", "slora", Map.of(), PATTERNED),
                new Row("nlora square core p=0", "nlora", Map.of("oversample", "0"), PATTERNED),
                new Row("nlora random p=2", "nlora", Map.of("sketch", "random", "oversample", "2"), PATTERNED),
                new Row("nlora gaussian p=3", "nlora", Map.of("sketch", "gaussian", "oversample", "3"), PATTERNED),
                new Row("nlora submatrix core", "nlora", Map.of("core", "submatrix"), PATTERNED),
                new Row("inttune gaussian", "inttune", Map.of("sketch", "gaussian"), PATTERNED),
                new Row("loldu zeros, frozen scale", "loldu", Map.of("diag_init", "zeros", "train_scale", "false"), PATTERNED),
                new Row("loldu uniform", "loldu", Map.of("diag_init", "uniform"), PATTERNED),
                new Row("nlora", "nlora", Map.of(), BASE),
                new Row("inttune", "inttune", Map.of(), BASE),
                new Row("loldu", "loldu", Map.of(), BASE),
                // as the authors' code, LoRA-SB starts from its rank-r estimate of the first full-fine-tuning step, on an
                // unchanged base: not an identity at init by design (rewrite_base=true makes it one)
                new Row("lora-sb", "lora-sb", Map.of(), BASE, false),
                new Row("lora-sb (rewrite_base)", "lora-sb", Map.of("rewrite_base", "true"), BASE),
                new Row("lamda", "lamda", Map.of(), BASE),
                new Row("lamda++", "lamda++", Map.of(), BASE),
                new Row("ffa-lora", "ffa-lora", Map.of(), BASE),
                new Row("dylora (eval_rank 2)", "dylora", Map.of("eval_rank", "2"), BASE),
                new Row("sora", "sora", Map.of(), BASE),
                new Row("allora", "allora", Map.of(), BASE),
                new Row("gs-lora", "gs-lora", Map.of(), BASE),
                new Row("increlora (rank 1 of 3)", "increlora", Map.of(), BASE),
                new Row("diffora", "diffora", Map.of(), BASE),
                new Row("s2-lora", "s2-lora", Map.of(), BASE),
                new Row("mola (3 experts, top-2, balance loss)", "mola", Map.of("experts", "3", "top_k", "2", "balance_weight", "0.01"), BASE),
                new Row("smora (top-2)", "smora", Map.of("top_k", "2"), BASE),
                new Row("mm-lora (no tags: modality 0)", "mm-lora", Map.of(), BASE),
                new Row("nola", "nola", Map.of(), BASE),
                new Row("diffusekrona (a1, a2 auto)", "diffusekrona", Map.of("a1", "auto", "a2", "auto"), BASE));
    }

    private static ToyModel toy() { return new ToyModel(1, 12, 20, 11, 2); }

    private static Tensor input() { return Tensor.randn(7, 1f, 5, 12); }

    private static LoraModel adapt(ToyModel m, Row row) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", row.config(), row.methodConfig(), new ToyCalibration(m, 4, 6, 11), null);
        return lm;
    }

    /** Perturbs every factor (trainable or frozen, not the base offsets) so the adapter contributes for real. */
    static void perturb(LoraModel lm, String adapter, long seed) {
        int i = 0;
        for (Map.Entry<String, Tensor> e : lm.savedTensors(adapter).entrySet()) {
            if (e.getKey().contains("peft4j_base_offset")) continue;
            Tensor t = e.getValue();
            float[] d = t.data(), n = Tensor.randn(seed + i++, 0.2f, t.shape()).data();
            for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
        }
    }

    static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    @ParameterizedTest
    @MethodSource("rows")
    void identityAtInit(Row row) {
        org.junit.jupiter.api.Assumptions.assumeTrue(row.identityAtInit(), row + " starts away from the base by design");
        ToyModel m = toy();
        float[] before = m.forward(input()).toFloatArray();
        LoraModel lm = adapt(m, row);
        float[] after = m.forward(input()).toFloatArray();
        if (lm.baseOffsets("default").isEmpty()) assertArrayEquals(before, after, row + ": adapter at init must not change outputs");
        // W rewritten to W - B0 A0 and the adapter adds B0 A0 back: equal up to F32 rounding of that subtraction
        else assertClose(before, after, 3e-5f, row + ": rewritten base + adapter");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void mergedEqualsUnmergedAndUnmergeRestores(Row row) {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        float[] init = m.forward(input()).toFloatArray();
        perturb(lm, "default", 50);
        float[] adapted = m.forward(input()).toFloatArray();
        assertTrue(maxDiff(init, adapted) > 1e-3, row + ": perturbed adapter should change outputs");
        if (!lm.otherLayers("default").values().stream().allMatch(AdapterLayer::mergeable)) {
            // routed per input (mixtures): there is no single merged weight, and merge says so
            assertThrows(IllegalStateException.class, lm::merge, row + ": a routed adapter cannot be merged");
            assertArrayEquals(adapted, m.forward(input()).toFloatArray(), row + ": a refused merge changes nothing");
            return;
        }
        lm.merge();
        // W + delta is rounded to F32 once, where the adapter path rounds W x and the low-rank product separately
        assertClose(adapted, m.forward(input()).toFloatArray(), 3e-5f, row + " merged");
        lm.unmerge();
        assertArrayEquals(adapted, m.forward(input()).toFloatArray(), row + ": unmerged equals the adapter forward");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void trainableGradientsMatchFiniteDifferences(Row row) {
        ToyModel m = new ToyModel(1, 6, 7, 5, 1);
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", row.config().toBuilder().r(2).alpha(4).build(), row.methodConfig(), new ToyCalibration(m, 4, 6, 11), null);
        perturb(lm, "default", 70);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        assertFalse(params.isEmpty(), row + " trains something");
        Tensor x = Tensor.randn(8, 1f, 3, 6);
        GradCheck.defaults().step(3e-3).check(row.label(), in -> m.forward(x), params.toArray(new Tensor[0]));
    }

    @ParameterizedTest
    @MethodSource("rows")
    void saveLoadGivesIdenticalOutputsAndExportIsAPlainLora(Row row, @TempDir Path dir) throws IOException {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        perturb(lm, "default", 60);
        float[] adapted = m.forward(input()).toFloatArray();
        Map<String, Tensor> trainable = new LinkedHashMap<>(lm.parameters("default"));
        lm.save(dir.resolve("method"), "default");
        assertTrue(Files.exists(dir.resolve("method").resolve(MethodConfig.FILE)), "method adapters carry " + MethodConfig.FILE);

        ToyModel fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 99);
        List<String> warnings = new ArrayList<>();
        lm2.load(dir.resolve("method"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertArrayEquals(adapted, fresh.forward(input()).toFloatArray(), row + ": reloaded adapter gives identical outputs");
        assertEquals(trainable.keySet(), lm2.parameters("default").keySet(), row + ": the same factors are trainable after a reload");
        assertEquals(row.method(), lm2.method("default").method());

        boolean plainForm = lm.otherLayers("default").values().stream().allMatch(l -> l.mergeable() && l.lowRankFactors() != null);
        if (!plainForm) {
            // no exact plain-LoRA form (Kronecker products, routers): export refuses, the method's own format is the way
            var e = assertThrows(IllegalArgumentException.class, () -> lm.exportPlainLora("default"));
            assertTrue(e.getMessage().contains("own format"), e.getMessage());
            lm2.delete("default");
            assertArrayEquals(toy().forward(input()).toFloatArray(), fresh.forward(input()).toFloatArray(), row + ": deleting the adapter restores the base");
            return;
        }
        lm.exportPlainLora("default").save(dir.resolve("plain"));
        assertFalse(Files.exists(dir.resolve("plain").resolve(MethodConfig.FILE)));
        ToyModel original = toy();
        LoraModel lm3 = new LoraModel(original, 5);
        lm3.load(dir.resolve("plain"), "default", warnings::add);
        assertEquals(List.of(), warnings);
        // folded factors (B·gM·s) and the [B, -B0][A; A0] undo of a base rewrite round differently from the method's path
        assertClose(adapted, original.forward(input()).toFloatArray(), 3e-5f, row + ": exported plain LoRA on the unchanged base");
        lm3.delete("default");
        lm2.delete("default");
        assertArrayEquals(toy().forward(input()).toFloatArray(), fresh.forward(input()).toFloatArray(), row + ": deleting the adapter restores the base");
    }

    @ParameterizedTest
    @MethodSource("rows")
    void aGradientStepMovesExactlyTheTrainableTensors(Row row) {
        ToyModel m = toy();
        LoraModel lm = adapt(m, row);
        perturb(lm, "default", 80);                  // a zero B would leave A and M without gradient at step 0
        Map<String, Tensor> saved = new LinkedHashMap<>(lm.savedTensors("default"));
        saved.keySet().removeIf(k -> k.contains("peft4j_base_offset"));
        Map<String, float[]> before = new LinkedHashMap<>();
        saved.forEach((k, t) -> before.put(k, t.toFloatArray()));
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        for (Tensor p : params) p.clearGrad();
        try (io.peft4j.autograd.Tape tape = io.peft4j.autograd.Tape.record()) {
            tape.backward(io.peft4j.autograd.NnOps.crossEntropy(m.forward(input()), new int[] {1, 2, 3, 4, 5}, -100));
        }
        for (Tensor p : params) {
            float[] d = p.data(), g = p.grad().data();
            for (int i = 0; i < p.numel(); i++) d[p.dataOffset() + i] -= 0.1f * g[i];
        }
        java.util.Set<Tensor> trainable = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        trainable.addAll(params);
        saved.forEach((k, t) -> {
            boolean moved = maxDiff(before.get(k), t.toFloatArray()) > 0;
            assertEquals(trainable.contains(t), moved, row + ": " + k + (trainable.contains(t) ? " trains and must move" : " is frozen and must not move"));
        });
    }

    @Test
    void unknownOptionNamesTheMethodsOptions() {
        var e = assertThrows(IllegalArgumentException.class, () -> MethodConfig.of(FactoredTestMethod.NAME, Map.of("rnak", "3")));
        assertTrue(e.getMessage().contains("rnak") && e.getMessage().contains("a_scale"), e.getMessage());
        var u = assertThrows(IllegalArgumentException.class, () -> MethodConfig.of("no-such-method"));
        assertTrue(u.getMessage().contains("lora-ga"), u.getMessage());
    }

    /**
     * A method that exercises every feature of the framework at once: a frozen random A, a random B, a full (or
     * diagonal) middle factor, a gain, and a base rewrite so that outputs are unchanged at init.
     */
    static final class FactoredTestMethod implements AdapterMethod {
        static final String NAME = "test-factored", NAME_DIAG = "test-factored-diag";
        private final boolean diag;

        FactoredTestMethod(boolean diag) { this.diag = diag; }

        @Override public String name() { return diag ? NAME_DIAG : NAME; }
        @Override public String summary() { return "test method"; }
        @Override public String paper() { return "none"; }
        @Override public List<MethodOption> options() { return List.of(new MethodOption("a_scale", "0.5", "std of A")); }

        @Override
        public Initialised initialise(MethodContext ctx) {
            Map<String, LoraLayer> layers = new LinkedHashMap<>();
            double std = ctx.options().number("a_scale");
            for (var e : ctx.targets().entrySet()) {
                int r = ctx.config().rankFor(e.getKey()), in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
                Tensor a = ctx.gaussian(std, r, in);                     // frozen
                Tensor b = ctx.gaussian(0.3, out, r).requiresGrad(true);
                Tensor mid = (diag ? ctx.gaussian(1, r) : ctx.gaussian(1, r, r)).requiresGrad(true);
                Tensor gain = Tensor.of(new float[] {0.7f}, 1).requiresGrad(true);
                LoraLayer l = ctx.layer(e.getKey(), a, b, mid, gain);
                Tensor b0 = l.effectiveB();
                float[] bd = b0.data();
                for (int i = 0; i < bd.length; i++) bd[i] *= l.scaling();
                ctx.rewriteBase(e.getKey(), a, b0);
                layers.put(e.getKey(), l);
            }
            return new Initialised(ctx.config(), layers);
        }
    }
}
