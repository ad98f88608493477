package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.models.CausalLM;
import io.peft4j.nn.Linear;
import io.peft4j.nn.Module;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.peft4j.testing.ToyData.chain;
import static io.peft4j.testing.ToyData.trainer;
import static io.peft4j.adapters.structure.StructureFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** ALLoRA: the gradient transform and the resulting AdamW update against hand-computed values; wiring in the Trainer. */
class AlloraTest {
    /** One 2 x 3 linear layer named like a projection, for hand-sized cases. */
    static Module oneLayer() {
        Map<String, Linear> lin = new LinkedHashMap<>();
        lin.put("proj", new Linear("proj", Tensor.of(new float[] {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, 2, 3), null));
        return new Module() {
            @Override public Map<String, Linear> linears() { return lin; }
            @Override public Map<String, Tensor> parameters() { return Map.of("proj.weight", lin.get("proj").weight()); }
        };
    }

    /** A = [[1, 2, 2], [0, 3, 4]] (row norms 3, 5), B = [[1, 0], [0, 0]] (column norms 1, 0), every gradient 1. */
    static LoraLayer handCase(LoraModel lm, String norms, String eta) {
        lm.add("default", LoraConfig.builder().r(2).alpha(16).dropout(0.1).targets("proj").build(),
                MethodConfig.of("allora", Map.of("eta", eta, "norm_groups", norms)), null, null);
        LoraLayer l = lm.layers("default").get("proj");
        System.arraycopy(new float[] {1, 2, 2, 0, 3, 4}, 0, l.loraA().data(), l.loraA().dataOffset(), 6);
        System.arraycopy(new float[] {1, 0, 0, 0}, 0, l.loraB().data(), l.loraB().dataOffset(), 4);
        java.util.Arrays.fill(l.loraA().gradBuffer().data(), 1f);
        java.util.Arrays.fill(l.loraB().gradBuffer().data(), 1f);
        return l;
    }

    @Test
    void gradientsAreScaledByOneOverSqrtOfInverseEtaSquaredPlusNormSquared() {
        // eta = 0.5: 1/eta^2 = 4. A rows: 1/sqrt(4 + 9), 1/sqrt(4 + 25); B columns: 1/sqrt(4 + 1), 1/sqrt(4 + 0) = eta
        double a0 = 0.27735009811261457, a1 = 0.18569533817705186, b0 = 0.4472135954999579, b1 = 0.5;
        LoraModel lm = new LoraModel(oneLayer(), 1);
        LoraLayer l = handCase(lm, "rank", "0.5");
        assertEquals(1f, l.scaling(), "no scaling: alpha = r");
        assertEquals(0.0, lm.config("default").loraDropout(), "no dropout");
        lm.beforeUpdate("default", 0);
        assertArrayEquals(new float[] {(float) a0, (float) a0, (float) a0, (float) a1, (float) a1, (float) a1}, l.loraA().grad().toFloatArray(), 1e-7f);
        assertArrayEquals(new float[] {(float) b0, (float) b1, (float) b0, (float) b1}, l.loraB().grad().toFloatArray(), 1e-7f);
        assertEquals(a0, Allora.coefficient(3, 0.5), 1e-15);

        // norm_groups=row: B's rows [1, 0] (norm 1) and [0, 0] (norm 0)
        LoraModel lm2 = new LoraModel(oneLayer(), 1);
        LoraLayer l2 = handCase(lm2, "row", "0.5");
        lm2.beforeUpdate("default", 0);
        assertArrayEquals(new float[] {(float) b0, (float) b0, (float) b1, (float) b1}, l2.loraB().grad().toFloatArray(), 1e-7f);
    }

    @Test
    void adamWUpdateAfterTheTransformEqualsTheFormulaByHand() {
        // with eps 0.5 the first AdamW step -lr · g / (|g| + eps) depends on the gradient's scale, so it sees c(theta)
        LoraModel lm = new LoraModel(oneLayer(), 1);
        LoraLayer l = handCase(lm, "rank", "0.5");
        AdamW opt = new AdamW(lm.parameters("default"), 0.9, 0.999, 0.5, 0.0);
        lm.beforeUpdate("default", 0);
        opt.step(0.1);
        double[] cA = {0.27735009811261457, 0.18569533817705186}, cB = {0.4472135954999579, 0.5};
        float[] a0 = {1, 2, 2, 0, 3, 4}, b0 = {1, 0, 0, 0};
        float[] wantA = new float[6], wantB = new float[4];
        for (int i = 0; i < 6; i++) { double c = cA[i / 3]; wantA[i] = (float) (a0[i] - 0.1 * c / (c + 0.5)); }
        for (int i = 0; i < 4; i++) { double c = cB[i % 2]; wantB[i] = (float) (b0[i] - 0.1 * c / (c + 0.5)); }
        assertArrayEquals(wantA, l.loraA().toFloatArray(), 1e-6f);
        assertArrayEquals(wantB, l.loraB().toFloatArray(), 1e-6f);
        // e.g. B[0, 1] (column norm 0, coefficient eta): 0 - 0.1 · 0.5 / 1.0
        assertEquals(-0.05f, l.loraB().toFloatArray()[1], 1e-6f);
    }

    @Test
    void theTrainerAppliesTheTransformAndUserHooksBeforeEveryUpdate(@TempDir Path o1, @TempDir Path o2, @TempDir Path o3) throws Exception {
        TrainingOptions opt = TrainingOptions.defaults(3).withLr(1e-2).withSchedule(LrSchedule.CONSTANT, 0).withMaxGradNorm(0);
        // eta 1e-9 shrinks every gradient below AdamW's eps (1e-8): the parameters barely move, unlike eta = 1
        double[] moved = new double[2];
        String[] etas = {"1", "1e-9"};
        Path[] outs = {o1, o2};
        for (int k = 0; k < 2; k++) {
            CausalLM m = tiny();
            LoraModel lm = adapt(m, config(4, 8), "allora", Map.of("eta", etas[k]));
            Map<String, float[]> before = new LinkedHashMap<>();
            lm.parameters("default").forEach((n, t) -> before.put(n, t.toFloatArray()));
            trainer(m, lm, chain(8, 9, 2), opt, outs[k]).run();
            for (Map.Entry<String, Tensor> e : lm.parameters("default").entrySet()) {
                float[] a = before.get(e.getKey()), b = e.getValue().toFloatArray();
                for (int i = 0; i < a.length; i++) moved[k] = Math.max(moved[k], Math.abs(a[i] - b[i]));
            }
        }
        assertTrue(moved[0] > 0.01, "eta 1 moves parameters: " + moved[0]);
        assertTrue(moved[1] < 0.01 * moved[0], "eta 1e-9 scales gradients below eps: " + moved[1] + " vs " + moved[0]);

        // the transform as an optimiser option on any method, through a user hook: called once per step, in order
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "dylora", Map.of());
        List<Integer> steps = new ArrayList<>();
        var t = trainer(m, lm, chain(8, 9, 2), opt, o3);
        t.withBeforeUpdate((step, lr) -> {
            steps.add(step);
            assertEquals(1e-2, lr, 1e-12);
            Allora.scaleGradients(lm.layers("default").values(), 1.0, true);
        });
        t.run();
        assertEquals(List.of(0, 1, 2), steps);
    }
}
