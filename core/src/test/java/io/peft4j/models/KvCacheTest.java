package io.peft4j.models;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static io.peft4j.models.GoldenModelsTest.assertClose;
import static org.junit.jupiter.api.Assertions.*;

/** Incremental decoding and batching agree with the plain full-sequence forward. */
class KvCacheTest {
    /** Same F32 math in a different grouping (one query row at a time vs a block). */
    static final double TOL = 2e-4;

    static CausalLM model(String fixture) throws Exception {
        return Models.loadCausalLM(GoldenModelsTest.fixture(fixture));
    }

    static int[] randomIds(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "llama3_bf16_tied", "qwen2", "gpt2"})
    void decodeWithCacheEqualsFullForward(String fixture) throws Exception {
        try (CausalLM m = model(fixture)) {
            int vocab = m.config().vocabSize, n = 13;
            int[] ids = randomIds(n, vocab, 7);
            Tensor full = m.forward(ids);                          // [n, V]
            // prefill 5 positions, then one token at a time, then a block of 3
            KvCache cache = m.newCache(1, n);
            Tensor[] parts = new Tensor[4 + 5];
            int k = 0, pos = 0;
            parts[k++] = m.forward(java.util.Arrays.copyOfRange(ids, 0, 5), 1, 5, cache);
            pos = 5;
            for (; pos < 10; pos++) parts[k++] = m.forward(new int[] {ids[pos]}, 1, 1, cache);
            parts[k++] = m.forward(java.util.Arrays.copyOfRange(ids, 10, 13), 1, 3, cache);
            assertEquals(n, cache.length());
            Tensor stitched = io.peft4j.autograd.TensorOps.concat(java.util.Arrays.asList(parts).subList(0, k), 0);
            assertClose(fixture + " cached decode vs full forward", full, stitched, TOL);
            assertThrows(IllegalArgumentException.class, () -> m.forward(new int[] {1}, 1, 1, cache), "a full cache must refuse more positions");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "mistral", "gpt2"})
    void batchedPrefillEqualsEachSequenceAlone(String fixture) throws Exception {
        try (CausalLM m = model(fixture)) {
            int vocab = m.config().vocabSize, t = 9;
            int[] a = randomIds(t, vocab, 1), b = randomIds(t, vocab, 2);
            int[] both = new int[2 * t];
            System.arraycopy(a, 0, both, 0, t);
            System.arraycopy(b, 0, both, t, t);
            Tensor batched = m.forward(both, 2, t, null);           // [2t, V]
            assertClose(fixture + " batch row 0", m.forward(a), batched.slice(0, 0, t), TOL);
            assertClose(fixture + " batch row 1", m.forward(b), batched.slice(0, t, 2 * t), TOL);

            // the same through a batched cache: prefill 2 x 6, then 3 single steps
            KvCache cache = m.newCache(2, t);
            Tensor pre = m.forward(concatRows(a, b, 0, 6), 2, 6, cache);
            assertClose(fixture + " cached batch prefill row 1", m.forward(a).slice(0, 0, 6), pre.slice(0, 0, 6), TOL);
            for (int p = 6; p < t; p++) {
                Tensor step = m.forward(new int[] {a[p], b[p]}, 2, 1, cache);
                assertClose(fixture + " cached batch step " + p + " row 0", batched.slice(0, p, p + 1), step.slice(0, 0, 1), TOL);
                assertClose(fixture + " cached batch step " + p + " row 1", batched.slice(0, t + p, t + p + 1), step.slice(0, 1, 2), TOL);
            }
        }
    }

    static int[] concatRows(int[] a, int[] b, int from, int to) {
        int n = to - from;
        int[] r = new int[2 * n];
        System.arraycopy(a, from, r, 0, n);
        System.arraycopy(b, from, r, n, n);
        return r;
    }

    @org.junit.jupiter.api.Test
    void randomBf16ModelDecodesLikeItsFullForward() {
        // the bench's random model path: BF16 weights in off-heap segments
        CausalLM m = RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.BF16, 3);
        int[] ids = randomIds(8, m.config().vocabSize, 5);
        Tensor full = m.forward(ids);
        KvCache cache = m.newCache(1, 8);
        m.forward(java.util.Arrays.copyOfRange(ids, 0, 7), 1, 7, cache);
        Tensor last = m.forward(new int[] {ids[7]}, 1, 1, cache);
        assertClose("tiny bf16 last position", full.slice(0, 7, 8), last, TOL);
        assertEquals(DType.BF16, m.linears().get("model.layers.0.mlp.up_proj").weight().dtype());
    }
}
