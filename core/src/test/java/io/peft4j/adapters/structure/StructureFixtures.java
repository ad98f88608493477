package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.Trainer;

import java.util.Map;

/** Shared fixtures of the structure-family tests: the tiny random Llama, learnable chain data, a quiet Trainer. */
final class StructureFixtures {
    private StructureFixtures() {}

    /** The tiny random Llama (d 64, 4 layers, q/o 64 x 64, k/v 32 x 64, MLP 176). */
    static CausalLM tiny() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 5); }

    static LoraConfig config(int r, double alpha) {
        return LoraConfig.builder().r(r).alpha(alpha).targets("q_proj", "v_proj", "o_proj", "down_proj").build();
    }

    static LoraModel adapt(CausalLM m, LoraConfig c, String method, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 11);
        lm.add("default", c, MethodConfig.of(method, options), null, null);
        return lm;
    }

    /** Token ids [2, 9] for forward checks. */
    static int[] ids() {
        int[] ids = new int[18];
        for (int i = 0; i < ids.length; i++) ids[i] = 3 + (i * 37) % 200;
        return ids;
    }

    static float[] logits(CausalLM m) { return m.forward(ids(), 2, 9, null).toFloatArray(); }

    static float[] copy(Tensor t) { return t.toFloatArray().clone(); }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        org.junit.jupiter.api.Assertions.assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            org.junit.jupiter.api.Assertions.assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }
}
