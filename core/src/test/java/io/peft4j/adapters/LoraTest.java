package io.peft4j.adapters;

import io.peft4j.autograd.Tape;
import io.peft4j.testing.Assets;
import io.peft4j.testing.GradCheck;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** DESIGN.md's adapter invariants for LoRA and its variants, one row per variant, on a toy model. */
class LoraTest {
    record Variant(String label, LoraConfig config) {
        @Override public String toString() { return label; }
    }

    static Stream<Variant> variants() {
        LoraConfig.Builder base = LoraConfig.builder().r(4).alpha(8).targets("q_proj", "v_proj", "down_proj");
        return Stream.of(
                new Variant("lora", base.build()),
                new Variant("lora-gaussian", base.toBuilderCopy().init("gaussian").build()),
                new Variant("rslora", base.toBuilderCopy().rslora(true).build()),
                new Variant("lora-bias-all", base.toBuilderCopy().bias("all").build()),
                new Variant("lora_bias", base.toBuilderCopy().loraBias(true).build()),
                new Variant("dora", base.toBuilderCopy().dora(true).build()),
                new Variant("pissa", base.toBuilderCopy().init("pissa").build()),
                new Variant("pissa_niter_4", base.toBuilderCopy().init("pissa_niter_4").build()),
                new Variant("olora", base.toBuilderCopy().init("olora").build()),
                new Variant("pissa-dora", base.toBuilderCopy().init("pissa").dora(true).build()),
                new Variant("rank-pattern", base.toBuilderCopy().rankPattern("v_proj", 2).alphaPattern("layers.1.self_attn.q_proj", 3).build()),
                new Variant("all-linear", base.toBuilderCopy().targetRegex("all-linear").build()));
    }

    private static Tensor input() { return Tensor.randn(7, 1f, 5, 12); }

    private static ToyModel toy() { return new ToyModel(1, 12, 20, 11, 2); }

    /** Perturbs every trainable tensor so B != 0 and the adapter really contributes. */
    private static void perturb(LoraModel lm, String adapter, long seed) {
        int i = 0;
        for (Tensor t : lm.parameters(adapter).values()) {
            float[] d = t.data();
            Tensor noise = Tensor.randn(seed + i++, 0.2f, t.shape());
            float[] n = noise.data();
            for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
        }
    }

    private static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }

    @ParameterizedTest
    @MethodSource("variants")
    void identityAtInit(Variant v) {
        ToyModel m = toy();
        float[] before = m.forward(input()).toFloatArray();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", v.config());
        if (WeightRewritingInit.rewritesBase(v.config().initLoraWeights())) {
            // W is rewritten to W - sBA and the adapter adds sBA back: equal up to F32 rounding of that subtraction
            assertClose(before, m.forward(input()).toFloatArray(), 2e-5f, v + ": rewritten base + adapter");
            lm.disableAdapters();
            assertTrue(maxDiff(before, m.forward(input()).toFloatArray()) > 1e-3, v + ": the base itself was rewritten");
        } else {
            assertArrayEquals(before, m.forward(input()).toFloatArray(), v + ": adapter at init must not change outputs");
        }
    }

    @ParameterizedTest
    @MethodSource("variants")
    void mergedEqualsUnmergedAndUnmergeRestoresTheBase(Variant v) {
        ToyModel m = toy();
        float[] base = m.forward(input()).toFloatArray();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", v.config());
        perturb(lm, "default", 50);
        float[] adapted = m.forward(input()).toFloatArray();
        assertTrue(maxDiff(base, adapted) > 1e-3, v + ": perturbed adapter should change outputs");
        lm.merge();
        assertClose(adapted, m.forward(input()).toFloatArray(), 2e-5f, v + " merged");
        lm.unmerge();
        assertArrayEquals(adapted, m.forward(input()).toFloatArray(), v + ": unmerged forward equals the adapter forward");
        lm.disableAdapters();
        // bias=all trains the base biases themselves (perturbed ones stay); PiSSA/OLoRA rewrote the base
        if (!v.config().bias().equals("all") && !WeightRewritingInit.rewritesBase(v.config().initLoraWeights()))
            assertArrayEquals(base, m.forward(input()).toFloatArray(), v + ": disabled adapter gives the base exactly");
        lm.enableAdapters();
        lm.merge();
        assertClose(adapted, m.forward(input()).toFloatArray(), 2e-5f, v + " re-merged");
    }

    @ParameterizedTest
    @MethodSource("variants")
    void saveLoadRoundTripGivesIdenticalOutputs(Variant v, @TempDir Path dir) throws IOException {
        ToyModel m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", v.config());
        perturb(lm, "default", 60);
        float[] adapted = m.forward(input()).toFloatArray();
        lm.save(dir, "default");
        assertTrue(Files.exists(dir.resolve("adapter_config.json")));
        assertTrue(Files.exists(dir.resolve("adapter_model.safetensors")));

        ToyModel fresh = toy();
        LoraModel lm2 = new LoraModel(fresh, 99);
        List<String> warnings = new ArrayList<>();
        LoraConfig read = lm2.load(dir, "default", warnings::add);
        assertEquals(List.of(), warnings);
        assertEquals(v.config(), read, v + ": config round trip");
        assertArrayEquals(adapted, fresh.forward(input()).toFloatArray(), v + ": reloaded adapter gives identical outputs");
    }

    @ParameterizedTest
    @MethodSource("variants")
    void gradientsOfAdapterParametersMatchFiniteDifferences(Variant v) {
        ToyModel m = new ToyModel(1, 6, 7, 5, 1);
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", v.config().toBuilder().r(2).clearRankPattern().build());
        perturb(lm, "default", 70);
        List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
        Tensor x = Tensor.randn(8, 1f, 3, 6);
        // DoRA treats the row norm ||W + sBA|| as a constant in backward (as PEFT does): hold it fixed for the check
        for (LoraLayer l : lm.layers("default").values()) if (l.isDora()) l.freezeNorm();
        // h = 3e-3: the toy's SiLU chain has enough curvature that h = 1e-2 leaves ~3% truncation error on some elements
        GradCheck.defaults().step(3e-3).check(v.label(), in -> m.forward(x), params.toArray(new Tensor[0]));
    }

    @ParameterizedTest
    @MethodSource("variants")
    void trainableCountFollowsTheFormula(Variant v) {
        ToyModel m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", v.config());
        long expected = 0;
        for (var e : lm.layers("default").entrySet()) {
            var lin = e.getValue().base();
            int r = v.config().rankFor(e.getKey());
            expected += (long) r * (lin.inFeatures() + lin.outFeatures());   // A [r, in] + B [out, r]
            if (v.config().loraBias()) expected += lin.outFeatures();
            if (v.config().useDora()) expected += lin.outFeatures();
        }
        if (v.config().bias().equals("all"))
            for (var lin : m.linears().values()) if (lin.bias() != null) expected += lin.bias().numel();
        assertEquals(expected, lm.trainableCount("default"), v.label());
    }

    @Test
    void frozenBaseWeightsGetNoGradient() {
        ToyModel m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", LoraConfig.builder().r(4).targets("q_proj").build());
        perturb(lm, "default", 80);
        try (Tape tape = Tape.record()) {
            Tensor out = m.forward(input());
            tape.backward(out, Tensor.full(1f, out.shape()));
        }
        for (var lin : m.linears().values()) assertNull(lin.weight().grad(), lin.name() + " is frozen");
        for (Tensor p : lm.parameters("default").values()) assertNotNull(p.grad());
    }

    @Test
    void severalNamedAdaptersCanBeActivatedDisabledAndDeleted(@TempDir Path dir) throws IOException {
        ToyModel m = toy();
        float[] base = m.forward(input()).toFloatArray();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", LoraConfig.builder().r(4).targets("q_proj").build());
        perturb(lm, "default", 1);
        float[] first = m.forward(input()).toFloatArray();
        lm.add("other", LoraConfig.builder().r(2).targets("down_proj").build());
        perturb(lm, "other", 2);
        assertEquals(List.of("other"), lm.activeAdapters());
        float[] second = m.forward(input()).toFloatArray();
        lm.setActive("default", "other");
        float[] both = m.forward(input()).toFloatArray();
        assertTrue(maxDiff(both, first) > 1e-3 && maxDiff(both, second) > 1e-3);
        lm.setActive("default");
        assertArrayEquals(first, m.forward(input()).toFloatArray());
        lm.save(dir, "other");
        assertTrue(Files.exists(dir.resolve("other").resolve("adapter_model.safetensors")), "non-default adapters save in a subfolder");
        lm.delete("other");
        assertEquals(Set.of("default"), lm.adapters());
        lm.setActive("default", "default");
        lm.delete("default");
        assertArrayEquals(base, m.forward(input()).toFloatArray());
    }

    @Test
    void mergeAndUnloadLeavesAPlainModelWithTheAdaptedOutputs() {
        ToyModel m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", LoraConfig.builder().r(4).dora(true).targets("q_proj", "up_proj").build());
        perturb(lm, "default", 5);
        float[] adapted = m.forward(input()).toFloatArray();
        lm.mergeAndUnload();
        assertTrue(lm.adapters().isEmpty());
        for (var lin : m.linears().values()) assertTrue(lin.hooks().isEmpty());
        assertClose(adapted, m.forward(input()).toFloatArray(), 2e-5f, "merge-and-unload");
    }

    @Test
    void targetThatMatchesNothingListsTheModules() {
        LoraModel lm = new LoraModel(toy(), 3);
        var e = assertThrows(IllegalArgumentException.class, () -> lm.add("default", LoraConfig.builder().targets("c_attn").build()));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj"), e.getMessage());
    }

    @Test
    void rankLargerThanTheLayerIsAClearError() {
        LoraModel lm = new LoraModel(toy(), 3);
        var e = assertThrows(IllegalArgumentException.class, () -> lm.add("default", LoraConfig.builder().r(7).targets("v_proj").build()));
        assertTrue(e.getMessage().contains("v_proj") && e.getMessage().contains("r=7"), e.getMessage());
    }

    @Test
    void modulesToSaveTrainsAFullCopyOfTheHead(@TempDir Path dir) throws IOException {
        ToyModel m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", LoraConfig.builder().r(4).targets("q_proj").modulesToSave(List.of("lm_head")).build());
        assertTrue(lm.parameters("default").containsKey("base_model.model.lm_head.weight"));
        perturb(lm, "default", 9);
        float[] adapted = m.forward(input()).toFloatArray();
        lm.save(dir, "default");
        ToyModel fresh = toy();
        new LoraModel(fresh, 4).load(dir, "default", w -> {});
        assertArrayEquals(adapted, fresh.forward(input()).toFloatArray());
    }

    @Test
    void adapterForAnotherArchitectureFailsNamingTheKey() {
        Path gpt2 = Assets.require("adapters/gpt2-lora-r8");
        LoraModel lm = new LoraModel(toy(), 3);
        var e = assertThrows(IOException.class, () -> lm.load(gpt2, "default", w -> {}));
        assertTrue(e.getMessage().contains("transformer.h.0.attn.c_attn"), e.getMessage());
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
