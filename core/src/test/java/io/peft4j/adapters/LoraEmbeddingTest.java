package io.peft4j.adapters;

import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** LoRA on embedding layers: the adapter invariants on the small golden Llama (untied embeddings). */
class LoraEmbeddingTest {
    static final int[] IDS = {3, 17, 42, 17, 90, 5};

    static CausalLM model() throws Exception {
        return Models.loadCausalLM(Path.of(LoraEmbeddingTest.class.getResource("/golden/models/llama_gqa").toURI()));
    }

    static LoraConfig config() { return LoraConfig.builder().r(4).alpha(8).targets("embed_tokens", "q_proj").build(); }

    static void perturb(LoraModel lm) {
        int i = 0;
        for (Tensor t : lm.parameters("default").values()) {
            float[] d = t.data(), n = Tensor.randn(100 + i++, 0.3f, t.shape()).data();
            for (int k = 0; k < n.length; k++) d[t.dataOffset() + k] += n[k];
        }
    }

    @Test
    void identityAtInitMergeUnmergeAndSaveLoad(@TempDir Path dir) throws Exception {
        try (CausalLM m = model()) {
            float[] base = m.forward(IDS).toFloatArray();
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", config());
            assertEquals(1, lm.embeddingLayers("default").size());
            assertArrayEquals(base, m.forward(IDS).toFloatArray(), "zero A: identity at init");
            perturb(lm);
            float[] adapted = m.forward(IDS).toFloatArray();
            assertTrue(LoraTest.maxDiff(base, adapted) > 1e-3);
            lm.merge();
            float[] merged = m.forward(IDS).toFloatArray();
            for (int i = 0; i < adapted.length; i++) assertEquals(adapted[i], merged[i], 2e-5 * (1 + Math.abs(adapted[i])));
            lm.unmerge();
            assertArrayEquals(adapted, m.forward(IDS).toFloatArray());
            lm.disableAdapters();
            assertArrayEquals(base, m.forward(IDS).toFloatArray(), "unmerge restores the embedding exactly");
            lm.enableAdapters();
            lm.save(dir, "default");
            long expected = 4L * (97 + 48) + lm.layers("default").values().stream().mapToLong(l -> 4L * (l.base().inFeatures() + l.base().outFeatures())).sum();
            assertEquals(expected, lm.trainableCount("default"), "r (V + d) for the embedding plus r (in + out) per linear");
        }
        float[] expected;
        try (CausalLM m = model()) {
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", config());
            perturb(lm);
            expected = m.forward(IDS).toFloatArray();
        }
        try (CausalLM fresh = model()) {
            LoraModel lm = new LoraModel(fresh, 2);
            lm.load(dir, "default", w -> {});
            assertEquals(1, lm.embeddingLayers("default").size());
            assertArrayEquals(expected, fresh.forward(IDS).toFloatArray(), "reloaded adapter gives identical logits");
        }
    }

    @Test
    void gradientsOfEmbeddingFactorsMatchFiniteDifferences() throws Exception {
        try (CausalLM m = model()) {
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", LoraConfig.builder().r(2).alpha(4).targets("embed_tokens").build());
            LoraEmbeddingLayer l = lm.embeddingLayers("default").values().iterator().next();
            // A starts at zero: give it small values, and shrink B (PEFT draws it N(0, 1)). The objective sums ~1000
            // logits of size ~10 in F32, so its rounding noise (~2e-5) swamps differences taken with h <= 1e-3; h = 3e-2
            // keeps the truncation error small here (probed: numeric -0.07025 at h = 3e-2 vs analytic -0.07027)
            float[] a = l.loraEmbeddingA().data(), an = Tensor.randn(7, 0.05f, l.loraEmbeddingA().shape()).data();
            System.arraycopy(an, 0, a, 0, an.length);
            float[] b = l.loraEmbeddingB().data();
            for (int i = 0; i < b.length; i++) b[i] *= 0.1f;
            GradCheck.defaults().step(3e-2).check("embedding lora", in -> m.forward(IDS), l.loraEmbeddingA(), l.loraEmbeddingB());
        }
    }
}
