package io.peft4j.adapters;

import io.peft4j.merge.AdapterCombination;
import io.peft4j.merge.AdapterCombination.Kind;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class AdapterCombinationTest {
    private static LoraModel twoAdapters(ToyModel m, int r1, int r2) {
        LoraModel lm = new LoraModel(m, 1);
        lm.add("a", LoraConfig.builder().r(r1).alpha(8).targets("q_proj", "down_proj").init("false").build());
        lm.add("b", LoraConfig.builder().r(r2).alpha(3).targets("q_proj", "up_proj").init("false").build());
        return lm;
    }

    /** sum over sources of w_i s_i B_i A_i for one module. */
    private static float[] expectedDelta(LoraModel lm, String module, double wa, double wb) {
        float[] sum = null;
        for (String[] s : new String[][] {{"a", Double.toString(wa)}, {"b", Double.toString(wb)}}) {
            LoraLayer l = lm.layers(s[0]).get(module);
            if (l == null) continue;
            float[] d = l.deltaWeight().toFloatArray();
            if (sum == null) sum = new float[d.length];
            for (int i = 0; i < d.length; i++) sum[i] += (float) (Double.parseDouble(s[1]) * d[i]);
        }
        return sum;
    }

    @Test
    void catIsExactAndSvdAtFullRankIsExact() {
        for (Kind kind : new Kind[] {Kind.CAT, Kind.SVD}) {
            ToyModel m = new ToyModel(3, 12, 20, 11, 2);
            LoraModel lm = twoAdapters(m, 4, 2);
            AdapterCombination.combine(lm, List.of("a", "b"), List.of(0.7, 1.3), kind, "ab", 6);
            for (String module : lm.layers("ab").keySet()) {
                float[] want = expectedDelta(lm, module, 0.7, 1.3);
                float[] got = lm.layers("ab").get(module).deltaWeight().toFloatArray();
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-4, kind + " " + module + " at " + i);
            }
            assertEquals(1f, lm.layers("ab").values().iterator().next().scaling(), "combined adapter has alpha = r");
        }
    }

    @Test
    void svdTruncatesToTheBestLowRankApproximation() {
        ToyModel m = new ToyModel(3, 12, 20, 11, 2);
        LoraModel lm = twoAdapters(m, 4, 4);
        AdapterCombination.combine(lm, List.of("a", "b"), List.of(1.0, 1.0), Kind.SVD, "ab", 4);
        LoraLayer q = lm.layers("ab").get("model.layers.0.self_attn.q_proj");
        assertEquals(4, q.rank());
        float[] want = expectedDelta(lm, "model.layers.0.self_attn.q_proj", 1, 1);
        float[] got = q.deltaWeight().toFloatArray();
        double err = 0, norm = 0;
        for (int i = 0; i < want.length; i++) { err += Math.pow(want[i] - got[i], 2); norm += want[i] * want[i]; }
        assertTrue(err > 1e-8 && err < norm, "rank-4 truncation of a rank-8 sum is approximate but close: " + err + " vs " + norm);
    }

    @Test
    void linearOfOneAdapterWithWeightOneReproducesIt(@TempDir Path dir) throws IOException {
        ToyModel m = new ToyModel(3, 12, 20, 11, 2);
        LoraModel lm = twoAdapters(m, 4, 4);
        lm.setActive("a");
        Tensor x = Tensor.randn(5, 1f, 3, 12);
        float[] withA = m.forward(x).toFloatArray();
        AdapterCombination.combine(lm, List.of("a"), List.of(1.0), Kind.LINEAR, "lin", 0);
        assertArrayEquals(withA, m.forward(x).toFloatArray(), 1e-5f);
        lm.save(dir, "lin");
        ToyModel fresh = new ToyModel(3, 12, 20, 11, 2);
        new LoraModel(fresh, 2).load(dir.resolve("lin"), "lin", w -> {});
        assertArrayEquals(withA, fresh.forward(x).toFloatArray(), 1e-5f);
    }

    @Test
    void linearRejectsUnequalRanks() {
        LoraModel lm = twoAdapters(new ToyModel(3, 12, 20, 11, 2), 4, 2);
        var e = assertThrows(IllegalArgumentException.class, () -> AdapterCombination.combine(lm, List.of("a", "b"), List.of(1.0, 1.0), Kind.LINEAR, "x", 0));
        assertTrue(e.getMessage().contains("equal ranks"), e.getMessage());
    }
}
