package io.peft4j.adapters.structure;

import io.peft4j.adapters.LoraModel;
import io.peft4j.tensor.Tensor;

import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Helpers shared by the MoLA, SMoRA and MM-LoRA tests. */
final class MixtureTesting {
    private MixtureTesting() {}

    /** Adds N(0, std) noise to every saved tensor of the adapter (routers, experts, biases) so it contributes for real. */
    static void perturb(LoraModel lm, long seed, float std) {
        int i = 0;
        for (Map.Entry<String, Tensor> e : lm.savedTensors("default").entrySet()) {
            Tensor t = e.getValue();
            float[] d = t.data(), n = Tensor.randn(seed + i++, std, t.shape()).data();
            for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
        }
    }

    /**
     * Wraps a forward so every evaluation asserts that the routers chose the same experts as at the first call: a
     * finite-difference check is only valid while the (piecewise) top-k selection stays fixed.
     */
    static <T> java.util.function.Function<Tensor[], T> withFixedSelection(Supplier<T> forward, Supplier<boolean[]> selection) {
        forward.get();
        boolean[] base = selection.get().clone();
        return in -> {
            T out = forward.get();
            assertArrayEquals(base, selection.get(), "a perturbation flipped the top-k selection: the finite differences would be invalid");
            return out;
        };
    }

    static boolean[] concat(Iterable<boolean[]> parts) {
        int n = 0;
        for (boolean[] p : parts) n += p.length;
        boolean[] all = new boolean[n];
        int o = 0;
        for (boolean[] p : parts) { System.arraycopy(p, 0, all, o, p.length); o += p.length; }
        return all;
    }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), what + " at " + i);
    }
}
