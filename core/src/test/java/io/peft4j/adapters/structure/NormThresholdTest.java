package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.models.CausalLM;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static io.peft4j.adapters.structure.StructureFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** The norm diagnostic of arXiv 2406.03136 against a direct dense computation, and its verdict. */
class NormThresholdTest {
    @Test
    void normsMatchADenseComputationAndTheVerdictFollowsSqrtLogL() {
        CausalLM m = tiny();
        LoraModel lm = adapt(m, config(4, 8), "lora", Map.of());
        DyLoraTest.perturbB(lm, 2);
        assertEquals(Math.sqrt(Math.log(1024)), NormThreshold.threshold(1024), 1e-15);
        List<NormThreshold.ModuleNorms> norms = NormThreshold.of(lm, "default", 1024, 0);
        assertEquals(lm.layers("default").size(), norms.size());
        for (NormThreshold.ModuleNorms n : norms) {
            LoraLayer l = lm.layers("default").get(n.module());
            int out = l.base().outFeatures(), in = l.base().inFeatures(), r = l.rank();
            float[] w = l.base().weight().toFloatArray(), a = l.loraA().toFloatArray(), b = l.loraB().toFloatArray();
            double wMax = 0, dMax = 0, row = 0;
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) {
                    double d = 0;
                    for (int j = 0; j < r; j++) d += (double) b[o * r + j] * a[j * in + i];
                    d *= l.scaling();
                    wMax = Math.max(wMax, Math.abs(w[o * in + i]));
                    dMax = Math.max(dMax, Math.abs(d));
                    s += (w[o * in + i] + d) * (w[o * in + i] + d);
                }
                row = Math.max(row, Math.sqrt(s));
            }
            assertEquals(wMax, n.weightMax(), 1e-6, n.module());
            assertEquals(dMax, n.deltaMax(), 1e-5 * (1 + dMax), n.module());
            assertEquals(row, n.rowNorm(), 1e-5 * row, n.module());
            assertEquals(Math.sqrt(in), n.inputNorm(), 1e-12);
            assertEquals(n.inputNorm() * n.rowNorm(), n.entryBound(), 1e-9);
            assertEquals(n.entryBound() < n.threshold(), n.below());
        }
        // a tiny input norm puts every module below the threshold, a huge one above it
        assertTrue(NormThreshold.of(lm, "default", 1024, 1e-6).stream().allMatch(NormThreshold.ModuleNorms::below));
        assertTrue(NormThreshold.of(lm, "default", 1024, 1e6).stream().noneMatch(NormThreshold.ModuleNorms::below));
        assertThrows(IllegalArgumentException.class, () -> NormThreshold.threshold(1));
    }
}
