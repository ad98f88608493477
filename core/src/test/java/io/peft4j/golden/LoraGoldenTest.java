package io.peft4j.golden;

import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.tensor.Tensor;
import io.peft4j.train.AdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * PEFT-format adapters written by tools/golden_lora.py (random non-zero A and B, PEFT's key names) load onto the
 * fixture models of tools/golden_models.py and reproduce the reference logits; the llm.c-style check compares the
 * loss, every adapter gradient, and three AdamW steps against torch.
 */
class LoraGoldenTest {
    /** F32 on both sides; differences come from summation order only. */
    static final double TOL = 1e-4;

    static Path resource(String path) {
        try {
            return Path.of(LoraGoldenTest.class.getResource(path).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static int[] ints(Tensor t) {
        int[] r = new int[(int) t.numel()];
        for (int i = 0; i < r.length; i++) r[i] = (int) t.getFlat(i);
        return r;
    }

    static void assertClose(String what, Tensor expected, Tensor got, double tol) { assertClose(what, expected, got, tol, 0); }

    /** |e - g| <= atol + rtol |e| elementwise; reports the worst element. */
    static void assertClose(String what, Tensor expected, Tensor got, double atol, double rtol) {
        assertArrayEquals(expected.shape(), got.shape(), what + " shape");
        float[] e = expected.toFloatArray(), g = got.toFloatArray();
        double worst = 0;
        int at = -1;
        for (int i = 0; i < e.length; i++) {
            double excess = Math.abs(e[i] - g[i]) - (atol + rtol * Math.abs(e[i]));
            if (at < 0 || excess > worst) { worst = excess; at = i; }
        }
        assertTrue(worst <= 0, what + ": |diff| at " + at + " is " + Math.abs(e[at] - g[at]) + ", over atol " + atol + " + rtol " + rtol + " * |" + e[at] + "|");
    }

    @ParameterizedTest
    @CsvSource({"llama_gqa, llama_lora", "llama_gqa, llama_rslora_patterns", "llama_gqa, llama_dora", "gpt2, gpt2_lora", "llama_gqa, llama_embedding"})
    void adapterLogitsMatchReference(String model, String adapter, @TempDir Path tmp) throws Exception {
        Path adapterDir = resource("/golden/lora/" + adapter);
        try (CausalLM m = Models.loadCausalLM(resource("/golden/models/" + model));
             SafetensorsFile g = Safetensors.open(adapterDir.resolve("golden.safetensors"))) {
            LoraModel lm = new LoraModel(m, 0);
            List<String> warnings = new ArrayList<>();
            lm.load(adapterDir, "default", warnings::add);
            assertEquals(List.of(), warnings);
            int[] ids = ints(g.get("input_ids"));
            Tensor expected = g.get("logits");
            assertClose(adapter + " logits", expected, m.forward(ids), TOL);
            lm.merge();
            assertClose(adapter + " merged logits", expected, m.forward(ids), TOL);
            lm.unmerge();

            // re-saved by peft4j: the same keys, shapes and values as PEFT's file, and the same logits when reloaded
            lm.save(tmp, "default");
            try (SafetensorsFile original = Safetensors.open(adapterDir.resolve("adapter_model.safetensors"));
                 SafetensorsFile ours = Safetensors.open(tmp.resolve("adapter_model.safetensors"))) {
                assertEquals(original.names(), ours.names());
                for (String k : original.names()) assertArrayEquals(original.get(k).toFloatArray(), ours.get(k).toFloatArray(), k);
            }
            assertTrue(Files.readString(tmp.resolve("adapter_config.json")).contains("\"peft_type\" : \"LORA\""));
        }
    }

    @Test
    void lossGradientsAndAdamWStepsMatchTorch() throws Exception {
        Path adapterDir = resource("/golden/lora/llama_lora");
        try (CausalLM m = Models.loadCausalLM(resource("/golden/models/llama_gqa"));
             SafetensorsFile g = Safetensors.open(adapterDir.resolve("golden.safetensors"))) {
            LoraModel lm = new LoraModel(m, 0);
            lm.load(adapterDir, "default", w -> {});
            int[] ids = ints(g.get("input_ids"));
            int[] targets = ints(g.get("targets"));
            Map<String, Tensor> params = lm.parameters("default");
            // PEFT's saved key for each parameter: drop the ".default" adapter infix
            Map<String, Tensor> byPeftKey = new LinkedHashMap<>();
            params.forEach((k, v) -> byPeftKey.put(k.replace(".default", ""), v));

            try (Tape tape = Tape.record()) {
                Tensor loss = NnOps.crossEntropy(m.forward(ids), targets, -100);
                assertEquals(g.get("loss").getFlat(0), loss.getFlat(0), 1e-5, "loss");
                tape.backward(loss);
            }
            StringBuilder report = new StringBuilder();
            for (Map.Entry<String, Tensor> e : byPeftKey.entrySet()) {
                // gradients sum over positions and layers in a different order than torch's BLAS: F32 rounding
                // differences scale with the gradient's size, hence the relative term
                try { assertClose("grad " + e.getKey(), g.get("grad." + e.getKey()), e.getValue().grad(), 2e-5, 1e-4); }
                catch (AssertionError err) { report.append(err.getMessage()).append('\n'); }
            }
            assertEquals("", report.toString());

            AdamW opt = new AdamW(params, 0.9, 0.999, 1e-8, 0.01);
            Tensor expectedLosses = g.get("adamw_losses");
            for (int step = 0; step < 3; step++) {
                opt.zeroGrad();
                try (Tape tape = Tape.record()) {
                    Tensor loss = NnOps.crossEntropy(m.forward(ids), targets, -100);
                    assertEquals(expectedLosses.getFlat(step), loss.getFlat(0), 1e-4, "loss before AdamW step " + step);
                    tape.backward(loss);
                }
                opt.step(1e-2);
            }
            for (Map.Entry<String, Tensor> e : byPeftKey.entrySet())
                assertClose("after 3 steps " + e.getKey(), g.get("after." + e.getKey()), e.getValue(), 1e-4);
        }
    }
}
