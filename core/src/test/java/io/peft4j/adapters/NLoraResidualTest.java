package io.peft4j.adapters;

import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** NLoRA with {@code residual=false} keeps W and starts at W + the sketch (the authors' code); the other NLoRA, SLoRA,
 * IntTune and LoLDU option variants are rows of {@link MethodInvariantsTest}. */
class NLoraResidualTest {
    private static ToyModel toy() { return new ToyModel(1, 12, 20, 11, 2); }

    private static Tensor input() { return Tensor.randn(7, 1f, 5, 12); }

    @Test
    void nloraWithoutResidualStartsAtWPlusTheSketch() {
        ToyModel ref = toy(), m = toy();
        LoraModel lm = new LoraModel(m, 3);
        lm.add("default", LoraConfig.builder().r(3).alpha(6).targets("q_proj", "v_proj", "down_proj").rankPattern("down_proj", 2).build(),
                MethodConfig.of("nlora", Map.of("residual", "false")), null, null);
        assertTrue(lm.baseOffsets("default").isEmpty());
        // the same outputs as the base with W + s B M A merged by hand
        for (Map.Entry<String, LoraLayer> e : lm.layers("default").entrySet()) {
            Tensor w = ref.linears().get(e.getKey()).weight().copyToF32();
            float[] wd = w.data(), dd = e.getValue().deltaWeight().data();
            for (int i = 0; i < wd.length; i++) wd[i] += dd[i];
            ref.linears().get(e.getKey()).setWeight(w);
        }
        // merged by hand in F32 vs the adapter path: the same rounding bound as the invariants table
        MethodInvariantsTest.assertClose(ref.forward(input()).toFloatArray(), m.forward(input()).toFloatArray(), 3e-5f, "W + s B M A");
        assertTrue(MethodInvariantsTest.maxDiff(toy().forward(input()).toFloatArray(), m.forward(input()).toFloatArray()) > 1e-3, "not an identity, by design");
    }
}
