package io.peft4j.cli;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.structure.NormThreshold;
import io.peft4j.models.Model;
import io.peft4j.models.Models;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/** {@code peft4j inspect --adapter}: the per-module norm diagnostic of arXiv 2406.03136. */
class InspectAdapterNormsTest {
    @Test
    void printsEveryAdaptedModulesNormsAndVerdict(@TempDir Path dir) throws Exception {
        Path bin = CliRun.asset("models/stories260K/stories260K.bin");
        List<NormThreshold.ModuleNorms> expected;
        try (Model m = Models.load(bin)) {
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", LoraConfig.builder().r(4).alpha(8).targets("q_proj", "k_proj").build());
            int i = 0;
            for (LoraLayer l : lm.layers("default").values()) {
                float[] n = Tensor.randn(10 + i++, 0.2f, l.loraB().shape()).data();
                System.arraycopy(n, 0, l.loraB().data(), l.loraB().dataOffset(), n.length);
            }
            lm.save(dir, "default");
            expected = NormThreshold.of(lm, "default", 256, 0);
        }
        CliRun r = CliRun.of("inspect", bin.toString(), "--adapter", dir.toString(), "--seq-len", "256");
        assertEquals(0, r.code(), r.err());
        String out = r.out();
        assertTrue(out.contains(String.format(Locale.ROOT, "sqrt(ln L) = %.3f for L = 256", Math.sqrt(Math.log(256)))), out);
        assertEquals(10, expected.size(), "5 layers x {q, k}");
        int below = 0;
        for (NormThreshold.ModuleNorms n : expected) {
            String line = out.lines().filter(l -> l.contains(n.module() + " ")).findFirst().orElse(null);
            assertNotNull(line, n.module() + " listed:\n" + out);
            assertTrue(line.endsWith(n.below() ? "below" : "above"), line);
            assertTrue(line.contains(String.format("%10.4g", n.rowNorm())), line);
            if (n.below()) below++;
        }
        assertTrue(out.contains(below + " of 10 modules below the threshold"), out);
    }
}
