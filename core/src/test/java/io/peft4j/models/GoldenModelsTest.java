package io.peft4j.models;

import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Each fixture directory (written by tools/golden_models.py from plain-torch transcriptions of HF's modeling code)
 * loads through {@link Models#load} and reproduces the reference outputs for its fixed input.
 */
class GoldenModelsTest {
    /** F32 compute on both sides; differences come from summation order only (values are O(1..10)). */
    static final double TOL = 1e-4;

    static Path fixture(String name) {
        try {
            return Path.of(GoldenModelsTest.class.getResource("/golden/models/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static int[] ints(Tensor t) {
        int[] r = new int[(int) t.numel()];
        for (int i = 0; i < r.length; i++) r[i] = (int) t.getFlat(i);
        return r;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_gqa", "llama3_bf16_tied", "mistral", "qwen2", "gpt2"})
    void causalLmLogitsMatchReference(String name) throws Exception {
        Path dir = fixture(name);
        try (CausalLM m = Models.loadCausalLM(dir); SafetensorsFile g = Safetensors.open(dir.resolve("golden.safetensors"))) {
            int[] ids = ints(g.get("input_ids"));
            Tensor expected = g.get("logits");
            Tensor got = m.forward(ids);
            assertArrayEquals(expected.shape(), got.shape(), name + " logits shape");
            assertClose(name + " logits", expected, got, TOL);
        }
    }

    @org.junit.jupiter.api.Test
    void bf16WeightsStayBf16AndMapped() throws Exception {
        try (CausalLM m = Models.loadCausalLM(fixture("llama3_bf16_tied"))) {
            Tensor q = m.linears().get("model.layers.0.self_attn.q_proj").weight();
            assertEquals(DType.BF16, q.dtype());
            assertFalse(q.storage().isHeap(), "weights must stay memory-mapped, not copied to the heap");
            // tied: the LM head reads the embedding's storage
            assertSame(m.parameters().get("model.embed_tokens.weight").storage(), m.linears().get("lm_head").weight().storage());
            assertFalse(m.parameters().containsKey("lm_head.weight"), "a tied head is listed once");
        }
    }

    @org.junit.jupiter.api.Test
    void bertClassifierMatchesReference() throws Exception {
        Path dir = fixture("bert_cls");
        try (Model model = Models.load(dir); SafetensorsFile g = Safetensors.open(dir.resolve("golden.safetensors"))) {
            BertModel bert = assertInstanceOf(BertModel.class, model);
            int[] ids = ints(g.get("input_ids"));
            BertModel.Output out = bert.forward(ids, ints(g.get("token_type_ids")), ints(g.get("attention_mask")), 1, ids.length);
            assertClose("bert hidden", g.get("hidden"), out.hidden(), TOL);
            assertClose("bert pooled", g.get("pooled").reshape(1, -1), out.pooled(), TOL);
            assertClose("bert logits", g.get("logits").reshape(1, -1), out.logits(), TOL);
            assertEquals(3, bert.numLabels());
        }
    }

    static void assertClose(String what, Tensor expected, Tensor got, double tol) {
        assertArrayEquals(expected.shape(), got.shape(), what + ": shape " + Arrays.toString(got.shape()) + " != " + Arrays.toString(expected.shape()));
        float[] e = expected.toFloatArray(), a = got.toFloatArray();
        int cols = expected.dim(-1);
        double worst = 0;
        int at = -1;
        for (int i = 0; i < e.length; i++) {
            double d = Math.abs(e[i] - a[i]);
            if (!(d <= worst)) { worst = d; at = i; }
        }
        if (!(worst <= tol))
            fail(String.format("%s: max abs diff %.3g > %.1g at row %d col %d (expected %.6f, got %.6f)", what, worst, tol, at / cols, at % cols, e[at], a[at]));
    }
}
