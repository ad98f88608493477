package io.peft4j.adapters.init;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Qr;
import io.peft4j.linalg.Svd;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.peft4j.testing.ToyData.chain;
import static io.peft4j.testing.ToyData.trainer;
import static org.junit.jupiter.api.Assertions.*;

/**
 * LaMDA and LaMDA++: the spectral init (A, B = W's top singular vectors, S = their singular values, residual base),
 * the trainable count on the freezing schedule of B (before, during, after), a resumed schedule equal to the
 * continuous one, the real Trainer no longer updating a frozen B, LaMDA++'s rank allocation following the spectrum
 * under a fixed budget, and the adapter invariants (identity at init, merge, gradients, save/load, plain export).
 */
class LamdaTest {
    private static final String[] TARGETS = {"q_proj", "v_proj", "down_proj"};

    static CausalLM tiny() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    static LoraConfig config(int r) { return LoraConfig.builder().r(r).alpha(2.0 * r).targets(TARGETS).build(); }

    static LoraModel adapt(Module m, String method, LoraConfig c, Map<String, String> opts) {
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", c, MethodConfig.of(method, opts), null, null);
        return lm;
    }

    static final int[] IDS = {5, 17, 3, 200, 42, 7, 99, 11};

    static float[] logits(CausalLM m) { return m.forward(IDS, 2, 4, null).toFloatArray(); }

    /** The expected number of frozen columns, written out independently of the implementation. */
    static int expectedFrozen(int step, int r, int freezeSteps) { return step >= freezeSteps ? r : step * r / freezeSteps; }

    // ------------------------------------------------------------------------------------------------ init

    @Test
    void initIsTheTopSpectrumOfWWithTheResidualAsBase() {
        CausalLM m = tiny();
        Map<String, float[]> before = new LinkedHashMap<>();
        m.linears().forEach((k, v) -> before.put(k, v.weight().toFloatArray()));
        int r = 4;
        LoraModel lm = adapt(m, "lamda", config(r), Map.of("svd_niter", "-1"));
        assertEquals(12, lm.layers("default").size());
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            LoraLayer l = e.getValue();
            Linear lin = l.base();
            int out = lin.outFeatures(), in = lin.inFeatures();
            float[] w0 = before.get(e.getKey());
            Svd.Result exact = Svd.thin(Tensor.of(w0, out, in));
            // A = V_r^T frozen, B = U_r trainable, S = diag(σ) / s trainable
            assertFalse(l.loraA().requiresGrad(), "PMA is frozen");
            assertTrue(l.loraB().requiresGrad() && l.mid().requiresGrad(), "PMB and S train at first");
            float[] mid = l.mid().toFloatArray();
            for (int i = 0; i < r; i++)
                for (int j = 0; j < r; j++)
                    assertEquals(i == j ? exact.s()[i] / l.scaling() : 0, mid[i * r + j], 1e-4 * (1 + Math.abs(mid[i * r + j])), e.getKey() + " S");
            assertOrthonormalRows(l.loraA().toFloatArray(), r, in, e.getKey() + " A");
            assertOrthonormalRows(Dense.transpose(toDouble(l.loraB().toFloatArray()), out, r), r, out, e.getKey() + " B^T");
            // the adapter holds U_r Σ_r V_r^T and the base the residual: W - base = the best rank-r approximation
            double[] topR = exact.truncate(r).reconstruct();
            float[] w1 = lin.weight().toFloatArray(), delta = l.deltaWeight().toFloatArray();
            for (int i = 0; i < w0.length; i++) {
                assertEquals(topR[i], w0[i] - w1[i], 1e-5, e.getKey() + " base residual at " + i);
                assertEquals(topR[i], delta[i], 1e-5, e.getKey() + " adapter delta at " + i);
            }
        }
    }

    @Test
    void modelIsUnchangedAtInitWithEitherStart() {
        CausalLM m = tiny();
        float[] want = logits(m);
        LoraModel lm = adapt(m, "lamda", config(4), Map.of());
        assertEquals(12, lm.baseOffsets("default").size(), "s_init=singular rewrites every targeted base");
        assertClose(want, logits(m), 2e-4f, "rewritten base + adapter");

        CausalLM z = tiny();
        LoraModel lz = adapt(z, "lamda", config(4), Map.of("s_init", "zero"));
        assertTrue(lz.baseOffsets("default").isEmpty(), "s_init=zero leaves W alone");
        assertArrayEquals(want, logits(z), "S = 0: the adapter adds nothing");
        for (LoraLayer l : lz.layers("default").values()) for (float v : l.mid().toFloatArray()) assertEquals(0f, v);

        CausalLM p = tiny();
        adapt(p, "lamda++", config(4), Map.of());
        assertClose(want, logits(p), 2e-4f, "lamda++ rewritten base + adapter");
    }

    // ------------------------------------------------------------------------------------------------ schedule

    @Test
    void trainableCountFallsOnTheSchedule() {
        int r = 4, k = 6;
        CausalLM m = tiny();
        LoraModel lm = adapt(m, "lamda", config(r), Map.of("freeze_steps", Integer.toString(k)));
        List<LoraLayer> layers = new ArrayList<>(lm.layers("default").values());
        long loraCount = 0;
        for (LoraLayer l : layers) loraCount += (long) r * (l.base().inFeatures() + l.base().outFeatures());
        long[] seen = new long[k + 3];
        for (int step = 0; step < k + 3; step++) {
            lm.beforeStep("default", step);
            long want = 0;
            for (LoraLayer l : layers) want += (long) r * r + (long) l.base().outFeatures() * (r - expectedFrozen(step, r, k));
            assertEquals(want, lm.trainableCount("default"), "step " + step);
            seen[step] = want;
            for (LoraLayer l : layers) {
                int f = expectedFrozen(step, r, k);
                if (f == r) {
                    assertFalse(l.loraB().requiresGrad(), "B frozen whole from step " + k);
                    assertNull(l.frozenBColumns());
                } else {
                    boolean[] mask = l.frozenBColumns();
                    for (int j = 0; j < r; j++) assertEquals(j < f, mask != null && mask[j], "step " + step + " column " + j + " (largest first)");
                }
            }
            assertTrue(lm.parameters("default").keySet().stream().noneMatch(n -> n.contains("lora_A")), "A never trains");
        }
        assertTrue(seen[0] < loraCount, "fewer trainables than LoRA from the start (A frozen)");
        for (int s = 1; s < seen.length; s++) assertTrue(seen[s] <= seen[s - 1], "the count never rises");
        assertEquals(12L * r * r, seen[k], "after the freezing only S trains: r^2 per layer");
        assertTrue(seen[k / 2] < seen[0] && seen[k / 2] > seen[k], "partly frozen half way");
    }

    @Test
    void smallestFirstFreezesTheLastColumnsAndZeroFreezesAtOnce() {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, "lamda", config(4), Map.of("freeze_steps", "4", "freeze_order", "smallest_first"));
        lm.beforeStep("default", 2);
        for (LoraLayer l : lm.layers("default").values()) assertArrayEquals(new boolean[] {false, false, true, true}, l.frozenBColumns());
        LoraModel now = adapt(tiny(), "lamda", config(4), Map.of("freeze_steps", "0"));
        now.beforeStep("default", 0);
        assertEquals(12L * 16, now.trainableCount("default"), "freeze_steps=0: only S from the first step");
        var e = assertThrows(IllegalArgumentException.class, () -> adapt(tiny(), "lamda", config(4), Map.of("freeze_order", "random")).beforeStep("default", 0));
        assertTrue(e.getMessage().contains("freeze_order"), e.getMessage());
    }

    @Test
    void resumedScheduleGivesTheSameTrainablesAsTheContinuousOne(@TempDir Path dir) throws IOException {
        int k = 5;
        Map<String, String> opts = Map.of("freeze_steps", Integer.toString(k));
        for (String method : List.of("lamda", "lamda++")) {
            LoraModel continuous = adapt(tiny(), method, config(4), opts);
            for (int step = 0; step <= k + 1; step++) {
                continuous.beforeStep("default", step);
                // a new process resuming at this step: a fresh adapter and one call of the schedule
                LoraModel resumed = adapt(tiny(), method, config(4), opts);
                resumed.beforeStep("default", step);
                assertSameTrainables(continuous, resumed, method + " step " + step);
                // or the adapter as saved at this step, loaded and resumed
                Path saved = dir.resolve(method + "-" + step);
                continuous.save(saved, "default");
                CausalLM fresh = tiny();
                LoraModel loaded = new LoraModel(fresh, 9);
                loaded.load(saved, "default", w -> fail(w));
                loaded.beforeStep("default", step);
                assertSameTrainables(continuous, loaded, method + " reloaded at step " + step);
            }
        }
    }

    private static void assertSameTrainables(LoraModel a, LoraModel b, String what) {
        assertEquals(a.parameters("default").keySet(), b.parameters("default").keySet(), what);
        assertEquals(a.trainableCount("default"), b.trainableCount("default"), what);
        for (String module : a.layers("default").keySet())
            assertArrayEquals(a.layers("default").get(module).frozenBColumns(), b.layers("default").get(module).frozenBColumns(), what + " " + module);
    }

    @Test
    void frozenColumnsTakeNoGradientAndTheOthersTheirFullOne() {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, "lamda", config(4), Map.of("freeze_steps", "8"));
        perturbFactors(lm, 3);
        lm.beforeStep("default", 0);
        Map<String, float[]> full = bGradients(m, lm);
        lm.beforeStep("default", 5);                 // floor(5 * 4 / 8) = 2 columns frozen
        Map<String, float[]> masked = bGradients(m, lm);
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            int out = e.getValue().base().outFeatures(), r = 4;
            float[] f = full.get(e.getKey()), g = masked.get(e.getKey());
            boolean anyNonZero = false;
            for (int o = 0; o < out; o++)
                for (int j = 0; j < r; j++) {
                    if (j < 2) assertEquals(0f, g[o * r + j], e.getKey() + " frozen column " + j);
                    else assertEquals(f[o * r + j], g[o * r + j], 1e-6f * (1 + Math.abs(f[o * r + j])), e.getKey() + " trainable column " + j);
                    anyNonZero |= f[o * r + j] != 0;
                }
            assertTrue(anyNonZero, e.getKey() + ": B has a gradient at all");
        }
    }

    private static Map<String, float[]> bGradients(CausalLM m, LoraModel lm) {
        for (Tensor t : lm.parameters("default").values()) t.clearGrad();
        try (Tape tape = Tape.record()) {
            Tensor logits = m.forward(IDS, 2, 4, null);
            tape.backward(NnOps.crossEntropy(logits, new int[] {17, 3, 200, 42, 7, 99, 11, 5}, Example.IGNORE));
        }
        Map<String, float[]> g = new LinkedHashMap<>();
        lm.layers("default").forEach((k, l) -> g.put(k, l.loraB().grad().toFloatArray()));
        return g;
    }

    // ------------------------------------------------------------------------------------------------ with the Trainer


    @Test
    void trainerStopsUpdatingBOnceItIsFrozen(@TempDir Path out) throws IOException {
        int k = 3;
        CausalLM m = tiny();
        LoraModel lm = adapt(m, "lamda", config(4), Map.of("freeze_steps", Integer.toString(k)));
        Map<String, float[]> a0 = factor(lm, "A"), b0 = factor(lm, "B");
        TrainingOptions opt = TrainingOptions.defaults(7).withLr(1e-2).withSchedule(LrSchedule.CONSTANT, 0);
        Trainer t = trainer(m, lm, chain(16, 9, 1), opt, out);
        t.run(k);                                   // steps 0..k-1: B (partly) trains
        Map<String, float[]> bAtK = factor(lm, "B"), sAtK = factor(lm, "M");
        assertNotEquals(0, maxDiff(b0, bAtK), "B trains during the first steps");
        t.run();                                    // steps k..6: B frozen whole, only S trains
        assertEquals(7, t.step());
        assertEquals(0, maxDiff(bAtK, factor(lm, "B")), "AdamW must not touch B once it is frozen");
        assertEquals(0, maxDiff(a0, factor(lm, "A")), "A never changes");
        assertTrue(maxDiff(sAtK, factor(lm, "M")) > 1e-4, "S keeps training");
        assertEquals(12L * 16, lm.trainableCount("default"));
        assertTrue(Files.exists(out.resolve("default").resolve(MethodConfig.FILE)) || Files.exists(out.resolve(MethodConfig.FILE)));
    }

    @Test
    void aColumnFrozenMidScheduleStaysExactlyWhereItWasFrozen(@TempDir Path out) throws IOException {
        int r = 4;
        CausalLM m = tiny();
        // freeze_steps 8, r 4: column 0 freezes before step 2, columns 0..2 before step 6
        LoraModel lm = adapt(m, "lamda", config(r), Map.of("freeze_steps", "8"));
        TrainingOptions opt = TrainingOptions.defaults(7).withLr(1e-2).withSchedule(LrSchedule.CONSTANT, 0);
        Trainer t = trainer(m, lm, chain(16, 9, 1), opt, out);
        t.run(2);                                   // steps 0, 1: every column trains
        Map<String, float[]> atFreeze = factor(lm, "B");
        t.run();                                    // steps 2..6: column 0 frozen (AdamW still has its momentum)
        Map<String, float[]> end = factor(lm, "B");
        for (String module : atFreeze.keySet()) {
            float[] before = atFreeze.get(module), after = end.get(module);
            double col0 = 0, col3 = 0;
            for (int o = 0; o < before.length / r; o++) {
                col0 = Math.max(col0, Math.abs(before[o * r] - after[o * r]));
                col3 = Math.max(col3, Math.abs(before[o * r + 3] - after[o * r + 3]));
            }
            assertEquals(0, col0, module + ": column 0 must not move after it froze");
            assertTrue(col3 > 0, module + ": column 3 still trains");
        }
    }

    @Test
    void resumedTrainingReproducesTheUninterruptedLossCurve(@TempDir Path straight, @TempDir Path resumed) throws IOException {
        Map<String, String> opts = Map.of("freeze_steps", "6");
        Dataset data = chain(24, 11, 2);
        TrainingOptions opt = TrainingOptions.defaults(9).withLr(5e-3).withSaveEvery(4).withSchedule(LrSchedule.LINEAR, 2);
        CausalLM m1 = tiny();
        trainer(m1, adapt(m1, "lamda", config(4), opts), data, opt, straight).run();
        CausalLM m2 = tiny();
        trainer(m2, adapt(m2, "lamda", config(4), opts), data, opt, resumed).run(4);    // interrupted mid-freeze
        CausalLM m3 = tiny();
        trainer(m3, adapt(m3, "lamda", config(4), opts), data, opt.withResume(true), resumed).run();
        List<Double> a = losses(straight), b = losses(resumed);
        assertEquals(9, a.size());
        assertEquals(a, b, "a resumed LaMDA run must reproduce the uninterrupted loss curve exactly");
    }

    static List<Double> losses(Path out) throws IOException {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<Double> l = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            var n = json.readTree(line);
            if (n.has("loss")) l.add(n.get("loss").asDouble());
        }
        return l;
    }

    // ------------------------------------------------------------------------------------------------ LaMDA++

    @Test
    void rankAllocationFollowsTheSpectrumAndMeetsTheBudget() {
        // three 16 x 16 layers with known spectra: flat (energy spread), geometric 0.8^i, steep 0.3^i
        double[][] spectra = {new double[16], new double[16], new double[16]};
        for (int i = 0; i < 16; i++) { spectra[0][i] = 1; spectra[1][i] = Math.pow(0.8, i); spectra[2][i] = Math.pow(0.3, i); }
        SpectralModel m = new SpectralModel(spectra, 16, 16);
        int r = 4;
        LoraConfig c = LoraConfig.builder().r(r).alpha(8).targets("l0", "l1", "l2").build();
        LoraModel lm = adapt(m, "lamda++", c, Map.of("svd_niter", "-1"));
        int[] ranks = new int[3];
        double[] topEnergy = new double[3];
        for (int i = 0; i < 3; i++) {
            ranks[i] = lm.layers("default").get("l" + i).rank();
            double top = 0, all = 0;
            for (int j = 0; j < 16; j++) { all += spectra[i][j] * spectra[i][j]; if (j < r) top += spectra[i][j] * spectra[i][j]; }
            topEnergy[i] = top / all;
        }
        assertEquals(3 * r, ranks[0] + ranks[1] + ranks[2], "ranks sum to the budget r x modules");
        assertTrue(topEnergy[0] < topEnergy[1] && topEnergy[1] < topEnergy[2], "the test spectra are ordered");
        assertTrue(ranks[0] > ranks[1] && ranks[1] > ranks[2], "more spread energy, more rank: " + java.util.Arrays.toString(ranks));
        assertEquals(8, ranks[0], "capped at 2r");
        assertEquals(1, ranks[2], "a layer its top r nearly spans gets the minimum");
        // the final config carries the ranks, so a reload rebuilds the same shapes
        LoraConfig fin = lm.config("default");
        for (int i = 0; i < 3; i++) assertEquals(ranks[i], fin.rankFor("l" + i));
        // each layer is a LaMDA layer of its rank: the base lost exactly its top r_l singular values
        for (int i = 0; i < 3; i++) {
            double[] left = Svd.values(Dense.fromTensor(m.linears().get("l" + i).weight()), 16, 16);
            for (int j = 0; j < 16 - ranks[i]; j++) assertEquals(spectra[i][j + ranks[i]], left[j], 1e-5, "l" + i + " residual σ_" + j);
        }
    }

    @Test
    void allocationIsProportionalWithinBoundsAndUniformWithoutSignal() {
        assertArrayEquals(new int[] {6, 3, 3}, LamdaSupport.allocate(new double[] {2, 1, 1}, 12, 1, new int[] {8, 8, 8}));
        assertArrayEquals(new int[] {4, 4, 4}, LamdaSupport.allocate(new double[] {0, 0, 0}, 12, 1, new int[] {8, 8, 8}));
        assertArrayEquals(new int[] {5, 6, 1}, LamdaSupport.allocate(new double[] {10, 10, 0}, 12, 1, new int[] {5, 8, 8}));
        assertThrows(IllegalArgumentException.class, () -> LamdaSupport.allocate(new double[] {1, 1}, 12, 1, new int[] {4, 4}));
        assertEquals(0.5, LamdaSupport.topEnergy(new double[] {1, 1, 1, 1}, 2, 4), 1e-12);
        assertEquals(0, LamdaSupport.frozenColumns(0, 8, 100));
        assertEquals(4, LamdaSupport.frozenColumns(50, 8, 100));
        assertEquals(8, LamdaSupport.frozenColumns(100, 8, 100));
    }

    // ------------------------------------------------------------------------------------------------ invariants

    @Test
    void gradientsOfTheTrainableFactorsMatchFiniteDifferences() {
        for (String method : List.of("lamda", "lamda++")) {
            double[][] spectra = {{3, 2, 1.5, 1, 0.5, 0.2}, {2, 2, 2, 1, 1, 1}};
            SpectralModel m = new SpectralModel(spectra, 6, 6);
            LoraModel lm = adapt(m, method, LoraConfig.builder().r(2).alpha(3).targets("l0", "l1").build(), Map.of());
            perturbFactors(lm, 8);
            List<Tensor> params = new ArrayList<>(lm.parameters("default").values());
            assertEquals(4, params.size(), method + ": B and S of both layers train");
            Tensor x = Tensor.randn(4, 1f, 3, 6);
            GradCheck.defaults().step(3e-3).check(method, in -> m.forward(x), params.toArray(new Tensor[0]));
        }
    }

    @Test
    void mergeSaveLoadAndPlainExportKeepTheOutputs(@TempDir Path dir) throws IOException {
        for (String method : List.of("lamda", "lamda++")) {
            CausalLM m = tiny();
            LoraModel lm = adapt(m, method, config(4), Map.of("freeze_steps", "4"));
            float[] init = logits(m);
            perturbFactors(lm, 21);
            lm.beforeStep("default", 2);                        // save mid-schedule
            float[] adapted = logits(m);
            assertTrue(maxDiff(init, adapted) > 1e-3, method + ": the perturbed adapter changes outputs");
            lm.merge();
            assertClose(adapted, logits(m), 2e-4f, method + " merged");
            lm.unmerge();
            assertArrayEquals(adapted, logits(m), method + ": unmerge restores");

            Path saved = dir.resolve(method);
            lm.save(saved, "default");
            CausalLM fresh = tiny();
            LoraModel lm2 = new LoraModel(fresh, 99);
            List<String> warnings = new ArrayList<>();
            LoraConfig loadedConfig = lm2.load(saved, "default", warnings::add);
            assertEquals(List.of(), warnings);
            assertEquals(lm.config("default").rankPattern(), loadedConfig.rankPattern(), method + ": rank_pattern round-trips");
            assertArrayEquals(adapted, logits(fresh), method + ": reloaded adapter gives identical outputs");
            assertEquals(method, lm2.method("default").method());

            lm.exportPlainLora("default").save(dir.resolve(method + "-plain"));
            CausalLM original = tiny();
            LoraModel lm3 = new LoraModel(original, 5);
            lm3.load(dir.resolve(method + "-plain"), "default", warnings::add);
            assertEquals(List.of(), warnings);
            assertFalse(Files.exists(dir.resolve(method + "-plain").resolve(MethodConfig.FILE)));
            assertClose(adapted, logits(original), 2e-4f, method + ": plain LoRA on the unchanged base");
        }
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** Linears with prescribed singular values (random orthogonal U, V), chained x -> silu(l0 x) -> l1 ... */
    static final class SpectralModel implements Module {
        final Map<String, Linear> linears = new LinkedHashMap<>();

        SpectralModel(double[][] spectra, int out, int in) {
            for (int i = 0; i < spectra.length; i++) {
                int k = spectra[i].length;
                double[] u = Qr.thin(Tensor.randn(100 + i, 1f, out, k)).q(), v = Qr.thin(Tensor.randn(200 + i, 1f, in, k)).q();
                double[] w = Dense.scaleProduct(u, out, spectra[i], v, in);
                float[] wf = new float[w.length];
                for (int j = 0; j < w.length; j++) wf[j] = (float) w[j];
                linears.put("l" + i, new Linear("l" + i, Tensor.of(wf, out, in), null));
            }
        }

        Tensor forward(Tensor x) {
            Tensor h = x;
            int i = 0;
            for (Linear l : linears.values()) h = i++ == 0 ? l.forward(h) : l.forward(NnOps.silu(h));
            return h;
        }

        @Override public Map<String, Linear> linears() { return linears; }

        @Override
        public Map<String, Tensor> parameters() {
            Map<String, Tensor> p = new LinkedHashMap<>();
            linears.forEach((k, v) -> p.put(k + ".weight", v.weight()));
            return p;
        }
    }

    /** Adds noise to every factor (frozen or not) so the adapter contributes for real. */
    static void perturbFactors(LoraModel lm, long seed) {
        int i = 0;
        for (LoraLayer l : lm.layers("default").values())
            for (Tensor t : new Tensor[] {l.loraA(), l.loraB(), l.mid()}) {
                float[] d = t.data(), n = Tensor.randn(seed + i++, 0.2f, t.shape()).data();
                for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
            }
    }

    static Map<String, float[]> factor(LoraModel lm, String which) {
        Map<String, float[]> out = new LinkedHashMap<>();
        lm.layers("default").forEach((k, l) -> out.put(k, (switch (which) {
            case "A" -> l.loraA();
            case "B" -> l.loraB();
            default -> l.mid();
        }).toFloatArray()));
        return out;
    }

    static double maxDiff(Map<String, float[]> a, Map<String, float[]> b) {
        double m = 0;
        for (String k : a.keySet()) m = Math.max(m, maxDiff(a.get(k), b.get(k)));
        return m;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static void assertClose(float[] want, float[] got, float tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    static void assertOrthonormalRows(float[] rows, int r, int n, String what) { assertOrthonormalRows(toDouble(rows), r, n, what); }

    static void assertOrthonormalRows(double[] rows, int r, int n, String what) {
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                double dot = 0;
                for (int c = 0; c < n; c++) dot += rows[i * n + c] * rows[j * n + c];
                assertEquals(i == j ? 1 : 0, dot, 1e-5, what + " rows " + i + "," + j);
            }
    }
}
